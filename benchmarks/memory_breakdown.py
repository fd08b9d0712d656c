"""Where a train step's memory goes, keras-seg beside its PyTorch peer: the pairs and sides of
``compare_peers.py`` (same models, same step), each side in its own process.

Per side: *held* (resident set between steps after the warm-up and glibc's
``malloc_trim``: weights, optimizer state, the runtime's caches and compiled programs),
*step* (the largest resident set during one train step minus held), and, for the sides
PyTorch executes eagerly (keras-torch, peer), *forward* (resident set after the forward
pass, before the backward, minus held) and the tensors autograd saved for the backward pass
(unique storages: *activations*, the 4-D tensors of the batch, and *other*: weights or
their copies, statistics). TensorFlow and JAX run a compiled step: no forward column.

Usage (writes the table)::

    python benchmarks/memory_breakdown.py --output benchmarks/memory_breakdown.md
"""

import argparse
import datetime
import json
import os
import platform
import subprocess
import sys

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)

import compare_peers as cp  # noqa: E402  (the sides and their models)

SIDES = ("keras-tensorflow", "keras-jax", "keras-torch", cp.PEER)


def _saved_tensor_bytes(run, batch):
    """Run ``run()`` recording what autograd saves: (activation bytes, other bytes)."""
    import torch

    seen, sizes = set(), {"activations": 0, "other": 0}

    def pack(tensor):
        storage = tensor.untyped_storage()
        if storage.data_ptr() not in seen:
            seen.add(storage.data_ptr())
            kind = "activations" if tensor.dim() == 4 and tensor.shape[0] == batch else "other"
            sizes[kind] += storage.nbytes()
        return tensor

    with torch.autograd.graph.saved_tensors_hooks(pack, lambda tensor: tensor):
        result = run()
    return result, sizes


def _worker(args):
    os.sched_setaffinity(0, set(sorted(os.sched_getaffinity(0))[:args.threads]))
    cp._import_framework(args.worker)
    eager = args.worker in ("keras-torch", cp.PEER)  # PyTorch runs the step op by op
    if eager:
        import torch

        torch.set_num_threads(args.threads)
    base = cp._rss_mb()
    arch, options = cp.PAIRS[args.pair]
    side = (cp._PeerSide if args.worker == cp.PEER else cp._KerasSide)(arch, options, args)
    for _ in range(args.warmup):
        side.train()
    cp._trim()
    held = cp._rss_mb()
    _, peak = cp._Sampler().run(side.train, 1)
    row = {"held": held - base, "step": peak - held}
    if eager:
        cp._trim()
        before = cp._rss_mb()
        if args.worker == cp.PEER:
            side.model.train()
            output, saved = _saved_tensor_bytes(lambda: side._logits(side.x), args.batch)
        else:
            x = torch.tensor(side.x)
            output, saved = _saved_tensor_bytes(lambda: side.model(x, training=True),
                                                args.batch)
        cp._trim()
        row["forward"] = cp._rss_mb() - before
        row.update({f"saved_{k}": v / 2**20 for k, v in saved.items()})
        del output
    print(json.dumps(row), flush=True)


def measure(pair, side, args):
    """One side's row, measured in its own process."""
    env = dict(os.environ, OMP_WAIT_POLICY="PASSIVE", TF_CPP_MIN_LOG_LEVEL="2")
    if side in cp.KERAS_SIDES:
        env["KERAS_BACKEND"] = side.split("-", 1)[1]
    argv = [sys.executable, os.path.abspath(__file__), "--worker", side, "--pair", pair,
            "--batch", str(args.batch), "--size", str(args.size), "--classes",
            str(args.classes), "--warmup", str(args.warmup), "--threads", str(args.threads)]
    proc = subprocess.run(argv, env=env, capture_output=True, text=True, check=False)
    if proc.returncode != 0:
        raise RuntimeError(f"{pair} / {side} failed:\n{proc.stderr[-3000:]}")
    return json.loads(proc.stdout.strip().splitlines()[-1])


def report(rows, args, command):
    def cell(row, key):
        return "-" if key not in row else f"{row[key]:.0f}"

    lines = [
        "# Where a train step's memory goes",
        "",
        f"Measured {datetime.date.today().isoformat()} with `{command}` on "
        f"{platform.machine()} ({os.cpu_count()} CPUs), Python {platform.python_version()}: "
        f"batch {args.batch} x {args.size} x {args.size}, {args.classes} classes, the models "
        "and step of `compare_peers.py` (SGD momentum 0.9), one process per side, "
        f"{args.warmup} warm-up steps. MB of resident set (see the script's docstring); "
        "saved: the storages autograd keeps for the backward pass during the forward.",
        "",
        "| pair | side | held MB | step MB | forward MB | saved activations MB | "
        "saved other MB |",
        "|---|---|---:|---:|---:|---:|---:|",
    ]
    for (pair, side), row in rows.items():
        lines.append(f"| {pair} | {side} | {cell(row, 'held')} | {cell(row, 'step')} | "
                     f"{cell(row, 'forward')} | {cell(row, 'saved_activations')} | "
                     f"{cell(row, 'saved_other')} |")
    return "\n".join(lines) + "\n"


def parse_args(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--pairs", nargs="+", choices=list(cp.PAIRS), default=list(cp.PAIRS))
    parser.add_argument("--sides", nargs="+", choices=SIDES, default=list(SIDES))
    parser.add_argument("--batch", type=int, default=4)
    parser.add_argument("--size", type=int, default=256)
    parser.add_argument("--classes", type=int, default=21)
    parser.add_argument("--warmup", type=int, default=2)
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--output", help="write the Markdown table here (atomically)")
    parser.add_argument("--worker", choices=SIDES, help=argparse.SUPPRESS)
    parser.add_argument("--pair", choices=list(cp.PAIRS), help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if min(args.batch, args.size, args.classes, args.warmup, args.threads) < 1:
        parser.error("--batch, --size, --classes, --warmup and --threads must be >= 1")
    return args


def main(argv=None):
    args = parse_args(argv)
    if args.worker:
        return _worker(args)
    rows = {}
    for pair in args.pairs:
        for side in args.sides:
            rows[(pair, side)] = measure(pair, side, args)
            print(f"{pair} / {side}: " + ", ".join(
                f"{k} {v:.0f}" for k, v in rows[(pair, side)].items()), flush=True)
    text = report(rows, args, "python benchmarks/memory_breakdown.py " + " ".join(
        sys.argv[1:] if argv is None else argv))
    print(text)
    if args.output:
        from keras_seg.visualize import write_text_atomic

        write_text_atomic(args.output, text)
    return rows


if __name__ == "__main__":
    main()

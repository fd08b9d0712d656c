"""keras-seg against its PyTorch peers, side by side: train-step and inference time, memory.

Each pair is one architecture built twice with the same weights layout: the keras-seg model
that ``keras_seg.convert`` maps a PyTorch checkpoint into (so the two compute the same
function, parameter for parameter) and the PyTorch original (segmentation_models.pytorch or
torchvision, eager mode). Every side runs in its own long-lived process (one per Keras
backend, one for native PyTorch, optionally one for the ONNX export in onnxruntime); the
parent interleaves them round by round (side A, side B, ... then again), so a slow moment
of the machine hits every side of a round alike, and reports each side's ratio to the peer
within the same round (median over the rounds).

Conditions: every process gets ``OMP_WAIT_POLICY=PASSIVE`` (with PyTorch's default
busy-waiting OpenMP threads, steps were 10-20x slower on a busy 2-core machine), the same
``--threads`` (OMP / MKL / TensorFlow intra-op threads, and CPU affinity to that many
cores), batch ``--batch`` of ``--size`` x ``--size`` random images, ``--classes`` classes,
SGD with momentum 0.9 and sparse cross-entropy (keras-seg's ``SegmentationCrossEntropy``;
``torch.nn.CrossEntropyLoss`` on the peer). Keras compiles with its defaults
(``jit_compile="auto"``). Build, compilation and ``--warmup`` steps are excluded. Peak
memory: the largest resident set sampled (every 2 ms, by a thread) during the timed train
steps (inference steps for the ONNX side), minus the process's size after its framework
was imported and before the model was built (CPU memory). The ONNX file is exported by a
separate process first, so the export's own memory is not counted.

Usage (writes benchmarks/compare_peers.md)::

    OMP_WAIT_POLICY=PASSIVE python benchmarks/compare_peers.py
    python benchmarks/compare_peers.py --pairs linknet-resnet18 --sides keras-jax peer \\
        --rounds 5 --output /tmp/linknet.md

Needs torch, segmentation-models-pytorch and torchvision (``pip install -e .[test]``) and,
for the ``onnxruntime`` side, ``.[export]``.
"""

import argparse
import datetime
import json
import os
import platform
import statistics
import subprocess
import sys
import time

#: pair name -> (keras_seg.convert architecture, options the checkpoint would decide)
PAIRS = {
    "unet-resnet34": ("smp/Unet-resnet34", {}),
    "linknet-resnet18": ("smp/Linknet-resnet18", {}),
    "deeplabv3-resnet50-os8": ("torchvision/deeplabv3_resnet50", {"aux": False}),
    "deeplabv3plus-resnet50-os16": ("smp/DeepLabV3Plus-resnet50", {}),
    "pspnet-resnet50": ("smp/PSPNet-resnet50", {}),
}
KERAS_SIDES = ("keras-tensorflow", "keras-jax", "keras-torch")
SIDES = (*KERAS_SIDES, "peer", "onnxruntime")
PEER = "peer"
PARAM_MISMATCH = 0.03


# --------------------------------------------------------------------------- worker side

def _rss_mb():
    with open("/proc/self/statm") as f:
        return int(f.read().split()[1]) * os.sysconf("SC_PAGE_SIZE") / 2**20


def _trim():
    """Give freed heap memory back to the system (glibc's ``malloc_trim``), so that the
    resident set counts memory in use, not what the allocator kept from earlier steps."""
    import ctypes

    try:
        ctypes.CDLL("libc.so.6").malloc_trim(0)
    except (OSError, AttributeError):
        pass


class _KerasSide:
    def __init__(self, arch, options, args):
        import keras
        import numpy as np

        from keras_seg import convert
        from keras_seg.losses import SegmentationCrossEntropy

        entry = convert.get(arch)
        self.model = entry.build(num_classes=args.classes, **options)
        self.model.compile(optimizer=keras.optimizers.SGD(0.01, momentum=0.9),
                           loss=SegmentationCrossEntropy())
        rng = np.random.default_rng(0)
        self.x = rng.random((args.batch, args.size, args.size, 3), dtype=np.float32)
        self.y = rng.integers(0, args.classes, (args.batch, args.size, args.size))
        self.params = sum(int(np.prod(w.shape)) for w in self.model.trainable_weights)

    def train(self):
        self.model.train_on_batch(self.x, self.y)

    def infer(self):
        self.model.predict_on_batch(self.x)


class _PeerSide:
    def __init__(self, arch, options, args):
        import torch

        from keras_seg import convert

        self.torch = torch
        self.entry = convert.get(arch)
        self.model = self.entry.torch_model(num_classes=args.classes, **options)
        self.opt = torch.optim.SGD(self.model.parameters(), lr=0.01, momentum=0.9)
        self.loss = torch.nn.CrossEntropyLoss()
        gen = torch.Generator().manual_seed(0)
        self.x = torch.rand((args.batch, 3, args.size, args.size), generator=gen)
        self.y = torch.randint(0, args.classes, (args.batch, args.size, args.size),
                               generator=gen)
        self.params = None  # counted after the first step: see params_used

    def params_used(self):
        """Parameters that received a gradient: segmentation_models.pytorch builds the whole
        encoder even when a model uses part of it (PSPNet's encoder_depth=3 leaves
        layer3 / layer4 idle), and an idle parameter is neither computed nor trained."""
        return sum(p.numel() for p in self.model.parameters() if p.grad is not None)

    def _logits(self, x):
        return self.entry.torch_outputs(self.model, x)["logits"]

    def train(self):
        self.model.train()
        self.opt.zero_grad(set_to_none=True)
        self.loss(self._logits(self.x), self.y).backward()
        self.opt.step()

    def infer(self):
        self.model.eval()
        with self.torch.inference_mode():
            self._logits(self.x)


def _export_onnx(args):
    """Build the pair's keras-seg model and export it to ``args.export_onnx`` (its own
    process, so that the export's memory is not the ONNX side's); print the parameters."""
    import numpy as np

    from keras_seg import convert
    from keras_seg.export import export

    arch, options = PAIRS[args.pair]
    model = convert.get(arch).build(num_classes=args.classes, **options)
    export(model, args.export_onnx, "onnx", check=False)
    print(json.dumps({"params": sum(int(np.prod(w.shape)) for w in model.trainable_weights)}))


class _OnnxSide:
    def __init__(self, arch, options, args):
        import numpy as np
        import onnxruntime

        self.params = args.onnx_params
        path = args.onnx_path
        opts = onnxruntime.SessionOptions()
        opts.intra_op_num_threads = args.threads
        opts.inter_op_num_threads = 1
        self.session = onnxruntime.InferenceSession(path, opts,
                                                    providers=["CPUExecutionProvider"])
        self.x = np.random.default_rng(0).random((args.batch, args.size, args.size, 3),
                                                 dtype=np.float32)

    def train(self):
        raise RuntimeError("the ONNX side only runs inference")

    def infer(self):
        self.session.run(None, {"image": self.x})


class _Sampler:
    """The largest resident set seen while :meth:`run` runs a function (a polling thread)."""

    def __init__(self):
        import threading

        self.threading = threading

    def run(self, fn, count):
        peak, done = [0.0], self.threading.Event()

        def poll():
            while not done.is_set():
                peak[0] = max(peak[0], _rss_mb())
                time.sleep(0.002)

        thread = self.threading.Thread(target=poll, daemon=True)
        thread.start()
        times = []
        try:
            for _ in range(count):
                t = time.perf_counter()
                fn()
                times.append(time.perf_counter() - t)
        finally:
            done.set()
            thread.join()
        return times, max(peak[0], _rss_mb())


def _import_framework(side):
    """Import what the side runs on before the baseline memory is taken."""
    if side == PEER:
        import torch

        from keras_seg.convert import _torch

        _torch.import_smp()
        return torch
    if side == "onnxruntime":
        import onnxruntime  # noqa: F401

        return None
    import keras  # noqa: F401

    import keras_seg.convert  # noqa: F401
    import keras_seg.losses  # noqa: F401

    return None


def _worker(args):
    """Build the side's model, then answer ``train K`` / ``infer K`` / ``memory`` lines."""
    if args.threads:
        os.sched_setaffinity(0, set(sorted(os.sched_getaffinity(0))[:args.threads]))
    arch, options = PAIRS[args.pair]
    side_class = {PEER: _PeerSide, "onnxruntime": _OnnxSide}.get(args.worker, _KerasSide)
    torch = _import_framework(args.worker)
    if torch is not None:
        torch.set_num_threads(args.threads)
    base = _rss_mb()
    start = time.perf_counter()
    side = side_class(arch, options, args)
    can_train = args.worker != "onnxruntime"
    for _ in range(args.warmup):  # compilation and first-call costs, not timed
        if can_train:
            side.train()
        side.infer()
    params = side.params_used() if args.worker == PEER else side.params
    ready = {"params": params, "setup_s": time.perf_counter() - start}
    if args.worker in KERAS_SIDES:
        import keras

        ready["jit_compile"] = bool(getattr(side.model, "jit_compile", False))
        ready["backend"] = keras.backend.backend()
    print(json.dumps(ready), flush=True)
    _trim()
    held = _rss_mb()  # weights, optimizer state, runtime caches, compiled programs
    sampler, peaks = _Sampler(), {"train": 0.0, "infer": 0.0}
    for line in sys.stdin:
        command, *rest = line.split()
        if command == "quit":
            break
        if command == "memory":
            print(json.dumps({"held": held - base,
                              **{k: (v - base if v else None) for k, v in peaks.items()}}),
                  flush=True)
            continue
        step = side.train if command == "train" else side.infer
        _trim()
        times, peak = sampler.run(step, int(rest[0]))
        peaks[command] = max(peaks[command], peak)
        print(json.dumps({"times": times}), flush=True)


# --------------------------------------------------------------------------- parent side

class _Process:
    def __init__(self, side, pair, args, extra=()):
        env = dict(os.environ)
        env.update(OMP_WAIT_POLICY="PASSIVE", OMP_NUM_THREADS=str(args.threads),
                   MKL_NUM_THREADS=str(args.threads), TF_NUM_INTRAOP_THREADS=str(args.threads),
                   TF_NUM_INTEROP_THREADS="1", TF_CPP_MIN_LOG_LEVEL="2")
        if side in KERAS_SIDES:
            env["KERAS_BACKEND"] = side.split("-", 1)[1]
        elif side == "onnxruntime":
            env["KERAS_BACKEND"] = "tensorflow"
        cmd = [sys.executable, os.path.abspath(__file__), "--worker", side, "--pair", pair,
               "--batch", str(args.batch), "--size", str(args.size), "--classes",
               str(args.classes), "--threads", str(args.threads), "--warmup", str(args.warmup),
               *extra]
        self.side = side
        self.proc = subprocess.Popen(cmd, stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                                     stderr=subprocess.DEVNULL if not args.verbose else None,
                                     text=True, env=env)
        self.ready = self._read()

    def _read(self):
        line = self.proc.stdout.readline()
        if not line:
            raise RuntimeError(f"the {self.side} worker stopped (rerun with --verbose to see "
                               "its output)")
        return json.loads(line)

    def ask(self, command):
        self.proc.stdin.write(command + "\n")
        self.proc.stdin.flush()
        return self._read()

    def close(self):
        try:
            self.proc.stdin.write("quit\n")
            self.proc.stdin.flush()
        except BrokenPipeError:
            pass
        self.proc.wait(timeout=120)


def measure_pair(pair, sides, args, log=print):
    """Run the interleaved rounds of one pair; return its result dict."""
    import tempfile

    procs, extra = [], {}
    folder = tempfile.mkdtemp(prefix="compare_peers_")
    if "onnxruntime" in sides:
        log(f"  {pair}: exporting to ONNX")
        path = os.path.join(folder, "model.onnx")
        env = dict(os.environ, KERAS_BACKEND="tensorflow", TF_CPP_MIN_LOG_LEVEL="2")
        out = subprocess.run([sys.executable, os.path.abspath(__file__), "--export-onnx", path,
                              "--pair", pair, "--classes", str(args.classes)], env=env,
                             check=True, capture_output=True, text=True).stdout
        params = json.loads(out.strip().splitlines()[-1])["params"]
        extra["onnxruntime"] = ("--onnx-path", path, "--onnx-params", str(params))
    try:
        for side in sides:  # one at a time: building and compiling are not measured
            log(f"  {pair}: starting {side}")
            procs.append(_Process(side, pair, args, extra.get(side, ())))
        rounds = {"train": [], "infer": []}
        for kind in ("train", "infer"):
            for r in range(args.rounds):
                row = {}
                for proc in procs:
                    if kind == "train" and proc.side == "onnxruntime":
                        continue
                    row[proc.side] = statistics.median(
                        proc.ask(f"{kind} {args.steps}")["times"])
                rounds[kind].append(row)
                log(f"  {pair} {kind} round {r + 1}: " + ", ".join(
                    f"{s} {t * 1000:.0f} ms" for s, t in row.items()))
        memory, held = {}, {}
        for proc in procs:
            peaks = proc.ask("memory")
            memory[proc.side] = peaks["infer" if proc.side == "onnxruntime" else "train"]
            held[proc.side] = peaks["held"]
        ready = {proc.side: proc.ready for proc in procs}
    finally:
        for proc in procs:
            proc.close()
        import shutil

        shutil.rmtree(folder, ignore_errors=True)
    return {"pair": pair, "arch": PAIRS[pair][0], "ready": ready, "rounds": rounds,
            "memory_mb": memory, "held_mb": held, "date": datetime.date.today().isoformat(),
            "command": args.command}


def merge(earlier, fresh, sides):
    """The results of an earlier run (``--json``) with this run's: a pair measured now
    replaces the earlier measurement of the sides measured now; the earlier entry keeps
    its other sides (shown with their own ratios to the peer of their own run, date and
    command). ``fresh``: pair -> result of this run; ``sides``: the sides measured now."""
    results = []
    for entry in earlier:
        if entry["pair"] in fresh:
            kept = [side for side in entry.get("sides_only", entry["ready"])
                    if side not in sides and side != PEER]
            if kept:
                results.append({**entry, "sides_only": kept})
        else:
            results.append(entry)
    results += list(fresh.values())
    order = {pair: k for k, pair in enumerate(PAIRS)}
    return sorted(results, key=lambda r: order.get(r["pair"], len(order)))


def summarize(result):
    """Per side: median time of each kind, median within-round ratio to the peer."""
    out = {}
    for kind, rows in result["rounds"].items():
        for side in rows[0]:
            times = [row[side] for row in rows]
            ratios = [row[side] / row[PEER] for row in rows if PEER in row]
            entry = out.setdefault(side, {})
            entry[f"{kind}_ms"] = statistics.median(times) * 1000
            entry[f"{kind}_ratio"] = statistics.median(ratios) if ratios else None
    for side, mb in result["memory_mb"].items():
        out.setdefault(side, {})["peak_mb"] = mb
        peer_mb = result["memory_mb"].get(PEER)
        out[side]["memory_ratio"] = mb / peer_mb if peer_mb else None
    for side, mb in result.get("held_mb", {}).items():  # (not in runs before 2026-12-01)
        out.setdefault(side, {})["held_mb"] = mb
    return out


def _fmt(value, pattern):
    return "-" if value is None else pattern.format(value)


def report(results, args, command):
    """The Markdown page: conditions, then one table row per pair and side."""
    runs = []  # (date, command) in order of appearance; each row names its run
    for r in results:
        run = (r.get("date", "?"), r.get("command", command))
        if run not in runs:
            runs.append(run)
    measured = "; ".join(f"run {k} on {date} with `{cmd}`"
                         for k, (date, cmd) in enumerate(runs, 1))
    lines = [
        "# keras-seg against its PyTorch peers",
        "",
        f"Measured {measured} on {platform.machine()} ({os.cpu_count()} CPUs, "
        f"{args.threads} threads per side), Python {platform.python_version()}.",
        "",
        f"Batch {args.batch} x {args.size} x {args.size} x 3, {args.classes} classes, SGD "
        "momentum 0.9, sparse cross-entropy; each side in its own process with "
        "`OMP_WAIT_POLICY=PASSIVE`, interleaved round by round "
        f"({args.rounds} rounds of {args.steps} steps after {args.warmup} warm-up steps; "
        "build and compilation excluded). Ratio: keras-seg side / PyTorch peer within the "
        "same round, median over rounds (below 1: faster). Peak MB: the largest resident set "
        "sampled during the timed train steps (inference for onnxruntime) minus the "
        "process's size before the model was built; the ONNX file is exported by another "
        "process. Held MB: the resident set between steps after the warm-up (weights, "
        "optimizer state, the runtime's caches and compiled programs), so peak - held is "
        "the step's own working memory; glibc's `malloc_trim` runs before each timed batch "
        "on every side (runs before it have no held column). Rows of several runs "
        "(`--merge`): each ratio is to the peer of its own run (column run).",
        "",
        "| pair | side | trainable params (peer) | train step ms | train ratio | "
        "inference ms | inference ratio | peak MB | held MB | memory ratio | run |",
        "|---|---|---|---:|---:|---:|---:|---:|---:|---:|---:|",
    ]
    for result in results:
        summary = summarize(result)
        peer_params = result["ready"].get(PEER, {}).get("params")
        for side, entry in summary.items():
            if side not in result.get("sides_only", summary):
                continue
            params = result["ready"][side]["params"]
            flag = ""
            if peer_params and abs(params - peer_params) / peer_params > PARAM_MISMATCH:
                flag = " **mismatch**"
            label = side
            if result["ready"][side].get("jit_compile"):
                label += " (XLA)"
            lines.append(
                f"| {result['pair']} | {label} | {params / 1e6:.2f}M "
                f"({_fmt(peer_params and peer_params / 1e6, '{:.2f}M')}){flag} | "
                f"{_fmt(entry.get('train_ms'), '{:.0f}')} | "
                f"{_fmt(entry.get('train_ratio'), '{:.2f}x')} | "
                f"{_fmt(entry.get('infer_ms'), '{:.0f}')} | "
                f"{_fmt(entry.get('infer_ratio'), '{:.2f}x')} | "
                f"{_fmt(entry.get('peak_mb'), '{:.0f}')} | "
                f"{_fmt(entry.get('held_mb'), '{:.0f}')} | "
                f"{_fmt(entry.get('memory_ratio'), '{:.2f}x')} | "
                f"{runs.index((result.get('date', '?'), result.get('command', command))) + 1} |")
    return "\n".join(lines) + "\n"


def parse_args(argv=None):
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--pairs", nargs="+", choices=sorted(PAIRS), default=list(PAIRS))
    p.add_argument("--sides", nargs="+", choices=SIDES,
                   default=["keras-tensorflow", "keras-jax", "keras-torch", PEER])
    p.add_argument("--batch", type=int, default=4)
    p.add_argument("--size", type=int, default=256)
    p.add_argument("--classes", type=int, default=21)
    p.add_argument("--rounds", type=int, default=3)
    p.add_argument("--steps", type=int, default=3, help="timed steps per side and round")
    p.add_argument("--warmup", type=int, default=2)
    p.add_argument("--threads", type=int, default=2)
    p.add_argument("--output", default=os.path.join(os.path.dirname(__file__),
                                                    "compare_peers.md"))
    p.add_argument("--json", default=None, help="also write the raw results here")
    p.add_argument("--merge", default=None, metavar="JSON",
                   help="raw results of an earlier run (--json): its pairs not measured now "
                   "are kept in the table (with their own date and command)")
    p.add_argument("--verbose", action="store_true", help="show the workers' output")
    p.add_argument("--worker", choices=SIDES, help=argparse.SUPPRESS)
    p.set_defaults(command="python benchmarks/compare_peers.py")
    p.add_argument("--pair", choices=sorted(PAIRS), help=argparse.SUPPRESS)
    p.add_argument("--export-onnx", help=argparse.SUPPRESS)
    p.add_argument("--onnx-path", help=argparse.SUPPRESS)
    p.add_argument("--onnx-params", type=int, help=argparse.SUPPRESS)
    args = p.parse_args(argv)
    for name in ("batch", "size", "classes", "rounds", "steps", "threads"):
        if getattr(args, name) < 1:
            p.error(f"--{name} must be >= 1")
    if args.warmup < 1:
        p.error("--warmup must be >= 1 (the first step compiles)")
    if args.worker is None and args.export_onnx is None and PEER not in args.sides:
        p.error("--sides must include 'peer': the ratios are to the PyTorch peer")
    return args


def main(argv=None):
    args = parse_args(argv)
    if args.export_onnx:
        _export_onnx(args)
        return 0
    if args.worker:
        _worker(args)
        return 0
    args.command = ("python benchmarks/compare_peers.py " + " ".join(
        sys.argv[1:] if argv is None else argv)).strip()
    fresh = {pair: measure_pair(pair, args.sides, args) for pair in args.pairs}
    results = []
    if args.merge:
        with open(args.merge, encoding="utf-8") as f:
            earlier = json.load(f)
        results = merge(earlier, fresh, args.sides)
    else:
        results = list(fresh.values())
    text = report(results, args, args.command)
    from keras_seg.visualize import write_text_atomic

    write_text_atomic(args.output, text)
    if args.json:
        write_text_atomic(args.json, json.dumps(results, indent=1))
    print(text)
    return 0


if __name__ == "__main__":
    sys.exit(main())

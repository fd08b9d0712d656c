"""``keras-seg demo`` on every backend and several seeds: test mIoU and time per backend.

Runs the README's demo command (``keras-seg demo --seed S``, its defaults otherwise; no
export and no pictures, which do not change the model) once per backend and seed, each in
its own process with ``KERAS_BACKEND`` set, one after the other, seed-major (every backend
gets seed 0 before any gets seed 1, so a run cut short still compares the backends).
After each run it appends the run's figures to ``--results`` (JSON, written atomically),
and at the end prints a Markdown table: per backend, the test mIoU of each seed, their mean
and spread (sample standard deviation, min-max), and the training time. The table in
``benchmarks/demo.md`` was made with::

    python benchmarks/demo_backends.py --seeds 0 1 2 --results benchmarks/demo_backends.json

``--results`` of an earlier, interrupted sweep is read back and its finished runs are not
repeated. ``--table-only`` prints the table of an existing results file.
"""

import argparse
import json
import os
import re
import statistics
import subprocess
import sys
import tempfile
import time

BACKENDS = ("tensorflow", "jax", "torch")
_FINAL = re.compile(r"demo: test mIoU ([0-9.]+) \(validation ([0-9.]+)\); "
                    r"training ([0-9.]+) s, total ([0-9.]+) s")


def parse_args(argv=None):
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--backends", nargs="+", default=list(BACKENDS), choices=BACKENDS)
    p.add_argument("--seeds", nargs="+", type=int, default=[0, 1, 2])
    p.add_argument("--results", default="demo_backends.json",
                   help="JSON file collecting the runs (read back to skip finished runs)")
    p.add_argument("--workdir", default=None,
                   help="folder for the demo outputs (default: a temporary folder)")
    p.add_argument("--demo-args", nargs=argparse.REMAINDER, default=[],
                   help="further keras-seg demo flags, e.g. --demo-args --epochs 1 "
                   "--steps-per-epoch 4 (a smoke run)")
    p.add_argument("--table-only", action="store_true")
    return p.parse_args(argv)


def parse_demo_output(text):
    """The demo's closing line as a dict (test / val mIoU, training / total seconds).

    Raises ValueError naming the missing line when the output has none."""
    match = _FINAL.search(text)
    if match is None:
        raise ValueError("the demo output has no closing 'demo: test mIoU ...' line; "
                         "last lines:\n" + "\n".join(text.splitlines()[-15:]))
    test, val, train_s, total_s = (float(g) for g in match.groups())
    return {"test_miou": test, "val_miou": val, "train_s": train_s, "total_s": total_s}


def _load(path):
    if os.path.exists(path):
        with open(path) as f:
            return json.load(f)
    return {"runs": []}


def _save(path, data):
    from keras_seg.visualize import write_text_atomic

    write_text_atomic(path, json.dumps(data, indent=1) + "\n")


def run_one(backend, seed, workdir, extra):
    """One demo run in a fresh process; returns its figures plus backend, seed, load."""
    out = os.path.join(workdir, f"{backend}_seed{seed}")
    cmd = [sys.executable, "-m", "keras_seg", "demo", "--seed", str(seed), "--output", out,
           "--export", "none", "--pictures", "0", "--verbose", "2", *extra]
    env = dict(os.environ, KERAS_BACKEND=backend)
    load_before = os.getloadavg()[0]
    start = time.time()
    proc = subprocess.run(cmd, env=env, capture_output=True, text=True)
    wall = time.time() - start
    if proc.returncode != 0:
        raise RuntimeError(f"{backend} seed {seed}: keras-seg demo exited {proc.returncode}:\n"
                           + (proc.stdout + proc.stderr)[-3000:])
    row = parse_demo_output(proc.stdout)
    row.update(backend=backend, seed=seed, wall_s=round(wall, 1),
               load_before=round(load_before, 2), load_after=round(os.getloadavg()[0], 2),
               args=extra)
    return row


def table(runs, backends=BACKENDS):
    """Markdown table: per backend, test mIoU per seed, mean, spread, training time."""
    lines = ["| backend | seeds | test mIoU per seed | mean | std | min - max | "
             "training s per run (mean) |",
             "|---|---|---|---|---|---|---|"]
    for backend in backends:
        rows = sorted((r for r in runs if r["backend"] == backend), key=lambda r: r["seed"])
        if not rows:
            continue
        scores = [r["test_miou"] for r in rows]
        std = statistics.stdev(scores) if len(scores) > 1 else float("nan")
        per_seed = ", ".join(f"{r['test_miou']:.4f} (s{r['seed']})" for r in rows)
        times = [r["train_s"] for r in rows]
        lines.append(f"| {backend} | {len(rows)} | {per_seed} | {statistics.mean(scores):.4f} "
                     f"| {std:.4f} | {min(scores):.4f} - {max(scores):.4f} | "
                     f"{', '.join(f'{t:.0f}' for t in times)} ({statistics.mean(times):.0f}) |")
    return "\n".join(lines)


def main(argv=None):
    args = parse_args(argv)
    data = _load(args.results)
    if not args.table_only:
        workdir = args.workdir or tempfile.mkdtemp(prefix="demo_backends_")
        for seed in args.seeds:
            for backend in args.backends:
                done = any(r["backend"] == backend and r["seed"] == seed
                           and r.get("args", []) == args.demo_args for r in data["runs"])
                if done:
                    continue
                row = run_one(backend, seed, workdir, args.demo_args)
                data["runs"].append(row)
                _save(args.results, data)
                print(f"{backend} seed {seed}: test mIoU {row['test_miou']:.4f}, "
                      f"training {row['train_s']:.0f} s (load {row['load_before']} -> "
                      f"{row['load_after']})", flush=True)
    print(table(data["runs"], args.backends))
    return 0


if __name__ == "__main__":
    sys.exit(main())

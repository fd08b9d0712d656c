"""benchmarks/demo_backends.py: a tiny sweep runs ``keras-seg demo`` as a user does, records
each run's figures, skips finished runs when rerun, and its table computes mean and spread."""

import json
import os
import statistics
import subprocess
import sys

import keras
import pytest
from support.paths import BENCHMARKS, load_script

PATH = os.path.join(BENCHMARKS, "demo_backends.py")
TINY = ["--epochs", "1", "--steps-per-epoch", "2", "--train-images", "32", "--val-images",
        "8", "--size", "32", "--filters", "4", "--depth", "2"]


@pytest.fixture(scope="module")
def sweep():
    return load_script(PATH, "benchmark_demo_backends")


def test_script_runs_the_demo_and_skips_finished_runs(tmp_path):
    backend = keras.backend.backend()
    results = tmp_path / "runs.json"
    argv = [sys.executable, PATH, "--backends", backend, "--seeds", "3", "--results",
            str(results), "--workdir", str(tmp_path / "work"), "--demo-args", *TINY]
    proc = subprocess.run(argv, capture_output=True, text=True, timeout=600)
    assert proc.returncode == 0, proc.stderr[-3000:]
    with open(results) as f:
        runs = json.load(f)["runs"]
    assert len(runs) == 1 and runs[0]["backend"] == backend and runs[0]["seed"] == 3
    assert 0.0 <= runs[0]["test_miou"] <= 1.0 and runs[0]["train_s"] > 0
    assert runs[0]["args"] == TINY
    # the run's own folder holds what the demo wrote (checkpoint, log), not the pictures
    run_dir = tmp_path / "work" / f"{backend}_seed3"
    assert (run_dir / "run" / "best.keras").exists()
    assert f"| {backend} | 1 | {runs[0]['test_miou']:.4f} (s3)" in proc.stdout
    # a second call finds the run done: nothing trains, the same table
    again = subprocess.run(argv, capture_output=True, text=True, timeout=600)
    assert again.returncode == 0 and "test mIoU" not in again.stdout.split("| backend")[0]
    with open(results) as f:
        assert len(json.load(f)["runs"]) == 1


def test_table_mean_and_spread(sweep):
    runs = [{"backend": "jax", "seed": s, "test_miou": m, "train_s": t}
            for s, m, t in ((0, 0.80, 600), (1, 0.84, 620), (2, 0.82, 640))]
    row = sweep.table(runs).splitlines()[2]
    std = statistics.stdev([0.80, 0.84, 0.82])
    assert row == (f"| jax | 3 | 0.8000 (s0), 0.8400 (s1), 0.8200 (s2) | 0.8200 | {std:.4f} | "
                   "0.8000 - 0.8400 | 600, 620, 640 (620) |")


def test_demo_output_parsing(sweep):
    text = "...\ndemo: test mIoU 0.8309 (validation 0.8355); training 486 s, total 499 s\n"
    assert sweep.parse_demo_output(text) == {"test_miou": 0.8309, "val_miou": 0.8355,
                                             "train_s": 486.0, "total_s": 499.0}
    with pytest.raises(ValueError, match="no closing 'demo: test mIoU"):
        sweep.parse_demo_output("Traceback ...")

"""benchmarks/compare_peers.py: a tiny run drives every side in its own process and writes
its table; the within-round ratios and the parameter-mismatch flag are computed right."""

import os
import subprocess
import sys

import keras
import pytest
from support.paths import BENCHMARKS, load_script

PATH = os.path.join(BENCHMARKS, "compare_peers.py")


@pytest.fixture(scope="module")
def bench():
    return load_script(PATH, "benchmark_compare_peers")


@pytest.mark.skipif(keras.backend.backend() != "tensorflow",
                    reason="the script starts one process per backend itself")
def test_tiny_run_writes_the_table(tmp_path):
    output = tmp_path / "peers.md"
    argv = [sys.executable, PATH, "--pairs", "linknet-resnet18", "--sides", "keras-torch",
            "peer", "onnxruntime", "--batch", "1", "--size", "64", "--rounds", "2",
            "--steps", "1", "--warmup", "1", "--output", str(output), "--json",
            str(tmp_path / "raw.json")]
    proc = subprocess.run(argv, capture_output=True, text=True, timeout=600)
    assert proc.returncode == 0, proc.stderr[-3000:]
    text = output.read_text()
    assert "OMP_WAIT_POLICY=PASSIVE" in text and "`python benchmarks/compare_peers.py" in text
    rows = [line for line in text.splitlines() if line.startswith("| linknet-resnet18")]
    assert [row.split("|")[2].strip() for row in rows] == ["keras-torch", "peer",
                                                           "onnxruntime"]
    for row in rows:  # exactly the same architecture on both sides: 11.66M parameters
        assert "| 11.66M (11.66M) |" in row and "mismatch" not in row
    assert rows[1].split("|")[5].strip() == "1.00x"   # the peer against itself
    assert rows[2].split("|")[4].strip() == "-"       # ONNX: inference only
    for row in rows:  # memory held between steps: at least the weights (11.66M floats)
        assert 40 <= float(row.split("|")[9]) <= float(row.split("|")[8])
    assert (tmp_path / "raw.json").stat().st_size > 0


def test_ratios_are_taken_within_each_round(bench):
    result = {
        "pair": "p", "arch": "a",
        "ready": {"keras-jax": {"params": 100, "jit_compile": True},
                  "peer": {"params": 110}},
        "rounds": {"train": [{"keras-jax": 2.0, "peer": 1.0}, {"keras-jax": 3.0, "peer": 6.0},
                             {"keras-jax": 4.0, "peer": 4.0}],
                   "infer": [{"keras-jax": 1.0, "peer": 2.0}]},
        "memory_mb": {"keras-jax": 300.0, "peer": 200.0},
        "held_mb": {"keras-jax": 120.0, "peer": 90.0},
    }
    summary = bench.summarize(result)
    # medians of the per-round ratios (2, 0.5, 1), not the ratio of the medians (3 / 4)
    assert summary["keras-jax"]["train_ratio"] == 1.0
    assert summary["keras-jax"]["train_ms"] == 3000.0
    assert summary["keras-jax"]["infer_ratio"] == 0.5
    assert summary["keras-jax"]["memory_ratio"] == 1.5
    args = bench.parse_args(["--rounds", "3"])
    table = bench.report([result], args, "cmd")
    # 100 vs 110 parameters: more than 3% apart is flagged
    assert "| p | keras-jax (XLA) | 0.00M (0.00M) **mismatch** | 3000 | 1.00x | 1000 | 0.50x | " \
           "300 | 120 | 1.50x | 1 |" in table
    del result["held_mb"]  # a run before the held column: "-"
    assert "| 300 | - | 1.50x | 1 |" in bench.report([result], args, "cmd")


def test_bad_arguments_are_refused(bench, capsys):
    for argv, message in [(["--sides", "keras-jax"], "must include 'peer'"),
                          (["--warmup", "0"], "--warmup must be >= 1"),
                          (["--steps", "0"], "--steps must be >= 1")]:
        with pytest.raises(SystemExit):
            bench.parse_args(argv)
        assert message in capsys.readouterr().err


def test_merge_keeps_the_sides_not_measured_again(bench):
    def result(pair, sides, date):
        return {"pair": pair, "arch": "a", "date": date, "command": f"run {date}",
                "ready": {side: {"params": 100} for side in sides},
                "rounds": {"train": [{side: 1.0 for side in sides}]},
                "memory_mb": {side: 1.0 for side in sides}}

    earlier = [result("unet-resnet34", ["keras-tensorflow", "keras-torch", "peer",
                                        "onnxruntime"], "d1"),
               result("linknet-resnet18", ["keras-torch", "peer"], "d1")]
    fresh = {"unet-resnet34": result("unet-resnet34", ["keras-torch", "peer"], "d2")}
    merged = bench.merge(earlier, fresh, ["keras-torch", "peer"])
    # linknet untouched; unet: the earlier TF and ONNX rows, then this run's torch and peer
    assert [(r["pair"], r["date"], r.get("sides_only")) for r in merged] == [
        ("unet-resnet34", "d1", ["keras-tensorflow", "onnxruntime"]),
        ("unet-resnet34", "d2", None), ("linknet-resnet18", "d1", None)]
    table = bench.report(merged, bench.parse_args([]), "cmd")
    unet = [row.split("|")[2].strip() for row in table.splitlines()
            if row.startswith("| unet-resnet34")]
    assert unet == ["keras-tensorflow", "onnxruntime", "keras-torch", "peer"]
    assert "run 1 on d1 with `run d1`; run 2 on d2 with `run d2`" in table
    runs = [row.split("|")[-2].strip() for row in table.splitlines()
            if row.startswith("| unet-resnet34")]
    assert runs == ["1", "1", "2", "2"]
    # merged again with a later run of the same sides: the d1 rows stay, d2's are replaced
    again = bench.merge(merged, {"unet-resnet34": result("unet-resnet34",
                                                         ["keras-torch", "peer"], "d3")},
                        ["keras-torch", "peer"])
    assert [(r["pair"], r["date"]) for r in again] == [
        ("unet-resnet34", "d1"), ("unet-resnet34", "d3"), ("linknet-resnet18", "d1")]

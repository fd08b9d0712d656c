"""benchmarks/profile_dilated.py, unpooling_speed.py and jax_kernels.py run in a tiny setting and
write their tables (each starts its own process per backend)."""

import os
import subprocess
import sys

import keras
import pytest
from support.paths import BENCHMARKS, load_script

pytestmark = pytest.mark.skipif(keras.backend.backend() != "tensorflow",
                                reason="the scripts start one process per backend themselves")


def _run(script, *args):
    proc = subprocess.run([sys.executable, os.path.join(BENCHMARKS, script), *args],
                          capture_output=True, text=True, timeout=900)
    assert proc.returncode == 0, proc.stderr[-3000:]
    return proc.stdout


def test_unpooling_speed_writes_its_table(tmp_path):
    output = tmp_path / "unpool.md"
    _run("unpooling_speed.py", "--backends", "torch", "jax", "--batch", "1", "--size", "16",
         "--channels", "4", "--steps", "1", "--output", str(output))
    rows = [line.split("|") for line in output.read_text().splitlines()
            if line.startswith(("| torch", "| jax"))]
    assert [row[1].strip() for row in rows] == ["torch", "jax"]
    for row in rows:
        a, b, ratio = float(row[2]), float(row[3]), float(row[4].strip().rstrip("x"))
        # the times are printed to 0.1 ms and the ratio to 0.01
        assert a > 0 and b > 0
        assert abs(ratio - a / b) <= 0.005 + 0.05 / b * (1 + a / b) + 1e-9


def test_profile_dilated_writes_every_part(tmp_path):
    output = tmp_path / "profile.md"
    _run("profile_dilated.py", "--backends", "torch", "--batch", "1", "--size", "32",
         "--steps", "1", "--output", str(output))
    text = output.read_text()
    for part in ("| full |", "| full, keras conv |", "| full, frozen BN |", "| backbone |",
                 "| ASPP + head |", "| ASPP + head, keras conv |", "| upsample + loss |"):
        row = next(line for line in text.splitlines() if line.startswith(part))
        assert float(row.split("|")[2]) > 0


def test_jax_kernels_writes_every_case(tmp_path):
    """Every case measured on the three forms; keras-seg's JAX form computes what Keras'
    computes (the difference column; the tests of keras_seg.ops check the gradients)."""
    output = tmp_path / "kernels.md"
    _run("jax_kernels.py", "--batch", "1", "--scale", "0.125", "--repeats", "1",
         "--output", str(output))
    rows = [line.split("|") for line in output.read_text().splitlines()
            if line.startswith("| ") and not line.startswith("| operation")]
    assert len(rows) == 7
    for row in rows:
        keras_ms, seg_ms, torch_ms = (float(row[k]) for k in (2, 3, 4))
        assert keras_ms > 0 and seg_ms > 0 and torch_ms > 0
        assert float(row[6]) < 1e-5
    assert "`python benchmarks/jax_kernels.py --batch 1" in output.read_text()


def test_memory_breakdown_writes_every_side(tmp_path):
    """A tiny LinkNet on the PyTorch backend and the peer: every column; the two eager sides
    save the same activations for the backward pass (same architecture, same batch) within
    25%; a compiled side (TensorFlow, JAX) has no forward or saved columns."""
    output = tmp_path / "memory.md"
    _run("memory_breakdown.py", "--pairs", "linknet-resnet18", "--sides", "keras-torch",
         "peer", "--batch", "1", "--size", "64", "--warmup", "1", "--output", str(output))
    rows = {line.split("|")[2].strip(): [c.strip() for c in line.split("|")[3:8]]
            for line in output.read_text().splitlines() if line.startswith("| linknet")}
    assert list(rows) == ["keras-torch", "peer"]
    ours, peer = (float(rows[side][3]) for side in ("keras-torch", "peer"))
    assert peer > 0 and abs(ours - peer) <= 0.25 * peer
    for side in ("keras-torch", "peer"):
        assert float(rows[side][0]) > 40  # held: at least the weights (11.66M floats)
        assert float(rows[side][1]) > 0 and float(rows[side][2]) > 0
    bench = load_script(os.path.join(BENCHMARKS, "memory_breakdown.py"), "memory_breakdown")
    table = bench.report({("p", "keras-jax"): {"held": 500.0, "step": 400.0}},
                         bench.parse_args([]), "cmd")
    assert "| p | keras-jax | 500 | 400 | - | - | - |" in table


def test_jax_kernels_cases_and_bad_arguments(tmp_path):
    output = tmp_path / "one.md"
    case = "3x3 max pooling, stride 2, 128x128x64"
    _run("jax_kernels.py", "--batch", "1", "--scale", "0.125", "--repeats", "1", "--cases",
         case, "--output", str(output))
    rows = [line for line in output.read_text().splitlines() if line.startswith("| 3x3")]
    assert len(rows) == 1 and rows[0].startswith(f"| {case} |")
    proc = subprocess.run([sys.executable, os.path.join(BENCHMARKS, "jax_kernels.py"),
                           "--scale", "0"], capture_output=True, text=True, timeout=120)
    assert proc.returncode == 2 and "--scale > 0" in proc.stderr

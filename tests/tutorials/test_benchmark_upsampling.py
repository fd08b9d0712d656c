"""benchmarks/upsampling_comparison.py: its --fast mode writes the table and the figure
with the tutorial's numbers, its worker runs as a script, and its measuring helpers
measure what they claim."""

import mmap
import os

import keras
import numpy as np
import pytest
from PIL import Image
from support.paths import BENCHMARKS, load_script

PATH = os.path.join(BENCHMARKS, "upsampling_comparison.py")


@pytest.fixture(scope="module")
def benchmark():
    return load_script(PATH, "benchmark_upsampling_comparison")


def test_fast_mode_table_and_figure(benchmark, tmp_path):
    out = benchmark.main(["--fast", "--out", str(tmp_path)])
    rows = {r["method"]: r for r in out["results"]}
    assert list(rows) == ["nearest", "bilinear", "unpool", "transpose"]
    cfg = {**benchmark.tutorial.CONFIGS["fast"], **benchmark.MEASURE["fast"]}
    # the benchmark trains through the tutorial's functions: the same numbers
    for r in benchmark.tutorial.main(["--fast", "--methods", "transpose"]):
        for key in ("val_mean_iou", "border_mean_iou", "params", "final_loss"):
            assert rows[r["method"]][key] == pytest.approx(r[key], abs=1e-6), key
    # forward tensors per image, elements: nearest resizes (16x16x16, 32x32x8) then
    # projects (16x16x8, 32x32x4); unpool projects at low resolution (8x8x8, 16x16x4),
    # unpools (16x16x8, 32x32x4) and keeps the indices (8x8x8, 16x16x4); transpose
    # outputs (16x16x8, 32x32x4) only. float32 / int32: 4 bytes each.
    per_image = {"nearest": 16 * 16 * 16 + 16 * 16 * 8 + 32 * 32 * 8 + 32 * 32 * 4,
                 "unpool": 2 * (8 * 8 * 8 + 16 * 16 * 4) + 16 * 16 * 8 + 32 * 32 * 4,
                 "transpose": 16 * 16 * 8 + 32 * 32 * 4}
    batch = cfg["batch_size"]
    for method in ("unpool", "transpose"):
        saved = rows["nearest"]["forward_mib"] - rows[method]["forward_mib"]
        expected = (per_image["nearest"] - per_image[method]) * 4 * batch / 2**20
        assert saved == pytest.approx(expected), method
    assert rows["bilinear"]["forward_mib"] == rows["nearest"]["forward_mib"]
    for r in rows.values():
        assert r["train_step_ms"] > 0 and r["inference_ms"] > 0
        assert r["peak_rss_mib"] is None  # one process: not comparable, reported n/a

    with open(out["markdown"]) as f:
        text = f.read()
    assert "`KERAS_BACKEND=" in text and "python benchmarks/upsampling_comparison.py --fast" in text
    measured = [line for line in text.splitlines()
                if line.startswith("| ") and line.split("|")[1].strip() in rows]
    assert len(measured) == 4 and "| method | family | learned | val mIoU | border mIoU |" in text
    assert "| unpooling | the pooling records" in text  # the notes' table beside it
    assert f"| transpose | deconvolution | yes | {rows['transpose']['val_mean_iou']:.3f} |" in text
    assert all(line.split("|")[-3].strip() == "n/a" for line in measured)

    size, zoom = cfg["crop_size"], cfg["zoom"]
    cell = size * zoom
    image = np.asarray(Image.open(out["figure"]).convert("RGB"))
    assert image.shape == (14 + cfg["crops"] * (cell + 4), 6 * (cell + 4), 3)
    # the truth column holds palette colors only
    from keras_seg.data import default_palette

    truth = image[14:14 + cell, cell + 4:2 * cell + 4].reshape(-1, 3)
    palette = {tuple(c) for c in default_palette(7)}
    assert {tuple(c) for c in np.unique(truth, axis=0)} <= palette


def test_worker_runs_the_script_in_a_fresh_process(benchmark, tmp_path):
    """The full mode's path: one method in a subprocess, JSON back, peak RSS measured."""
    cfg = {**benchmark.tutorial.CONFIGS["fast"], **benchmark.MEASURE["fast"]}
    pred_path = str(tmp_path / "unpool.npy")
    result = benchmark._run_isolated("unpool", cfg, "unet", 0, pred_path)
    assert result["method"] == "unpool" and 0.0 <= result["val_mean_iou"] <= 1.0
    if benchmark.reset_peak_rss() is not None:  # measured where /proc/self/clear_refs is
        assert result["peak_rss_mib"] > 0
    predictions = np.load(pred_path)
    assert predictions.shape == (cfg["crops"], 32, 32) and predictions.max() <= 1


def test_peak_rss_rise_sees_an_array_allocation(benchmark):
    rss0 = benchmark.reset_peak_rss()
    if rss0 is None:
        pytest.skip("no /proc/self/clear_refs on this system")
    # 64 MiB of fresh anonymous pages, each touched: an mmap of its own, so that no
    # allocator can serve it from memory that is already resident
    block = mmap.mmap(-1, 64 * 2**20)
    page = b"\1" * mmap.PAGESIZE
    for offset in range(0, len(block), mmap.PAGESIZE):
        block[offset:offset + mmap.PAGESIZE] = page
    rise = benchmark.peak_rss_rise_mib(rss0)
    block.close()
    assert 60 <= rise < 200
    rss1 = benchmark.reset_peak_rss()  # the mark goes back down after a reset
    assert benchmark.peak_rss_rise_mib(rss1) < 30


def test_forward_tensor_mib_counts_every_layer_output(benchmark):
    image = keras.Input((8, 6, 2))
    x = keras.layers.Conv2D(3, 1, name="a")(image)  # 8*6*3 float32
    y = keras.layers.MaxPooling2D(2, name="b")(x)  # 4*3*3 float32
    model = keras.Model(image, y)
    assert benchmark.forward_tensor_mib(model, 5) == pytest.approx(
        5 * (8 * 6 * 3 + 4 * 3 * 3) * 4 / 2**20)


def test_median_ms_warms_up_then_takes_the_median(benchmark, monkeypatch):
    ticks = iter([0.0, 0.001, 1.0, 1.005, 2.0, 2.100])  # 1, 5 and 100 ms
    monkeypatch.setattr(benchmark.time, "perf_counter", lambda: next(ticks))
    calls = []
    assert benchmark.median_ms(lambda: calls.append(1), 3) == pytest.approx(5.0)
    assert len(calls) == 4  # one warm-up call, untimed

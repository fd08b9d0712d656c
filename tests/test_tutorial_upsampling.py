"""tutorials/upsampling_comparison.py: its --fast mode runs end to end, and its measuring
helpers measure what they claim."""

import importlib.util
import os

import keras
import numpy as np
import pytest
from PIL import Image

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
PATH = os.path.join(ROOT, "tutorials", "upsampling_comparison.py")


@pytest.fixture(scope="module")
def tutorial():
    spec = importlib.util.spec_from_file_location("upsampling_comparison", PATH)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_fast_mode_table_and_figure(tutorial, tmp_path):
    out = tutorial.main(["--fast", "--out", str(tmp_path)])
    rows = {r["method"]: r for r in out["results"]}
    assert list(rows) == ["nearest", "bilinear", "unpool", "transpose"]
    cfg = tutorial.CONFIGS["fast"]
    widths = cfg["filters"]
    # SegNet(filters=(4, 8)): only the transposed conv adds parameters, 4 w^2 + w per stage
    base = rows["nearest"]["params"]
    assert rows["bilinear"]["params"] == rows["unpool"]["params"] == base
    assert rows["transpose"]["params"] - base == sum(4 * w * w + w for w in widths)
    # unpooling keeps one int32 index per pooled value: (16*16*4 + 8*8*8) * 4 bytes * batch
    batch = cfg["batch_size"]
    extra = rows["unpool"]["forward_mib"] - rows["nearest"]["forward_mib"]
    assert extra == pytest.approx((16 * 16 * 4 + 8 * 8 * 8) * 4 * batch / 2**20)
    for r in rows.values():
        assert 0.0 <= r["border_miou"] <= 1.0 and 0.0 <= r["val_miou"] <= 1.0
        assert r["train_step_ms"] > 0 and r["inference_ms"] > 0
        assert r["peak_rss_mib"] is None  # one process: not comparable, reported n/a
        assert np.isfinite(r["final_loss"])

    with open(out["markdown"]) as f:
        text = f.read()
    measured = [line for line in text.splitlines()
                if line.startswith("| ") and line.split("|")[1].strip() in rows]
    assert len(measured) == 4 and "| method | family | learned | val mIoU | border mIoU |" in text
    assert "| unpooling | the pooling records" in text  # the notes' table beside it
    assert f"| transpose | deconvolution | yes | {rows['transpose']['val_miou']:.3f} |" in text

    size, zoom = cfg["crop_size"], cfg["zoom"]
    cell = size * zoom
    image = np.asarray(Image.open(out["figure"]).convert("RGB"))
    assert image.shape == (14 + cfg["crops"] * (cell + 4), 6 * (cell + 4), 3)
    # the truth column holds palette colors only
    from keras_seg.data import default_palette

    truth = image[14:14 + cell, cell + 4:2 * cell + 4].reshape(-1, 3)
    palette = {tuple(c) for c in default_palette(7)}
    assert {tuple(c) for c in np.unique(truth, axis=0)} <= palette


def test_peak_rss_rise_sees_an_array_allocation(tutorial):
    rss0 = tutorial.reset_peak_rss()
    if rss0 is None:
        pytest.skip("no /proc/self/clear_refs on this system")
    block = np.ones(64 * 2**20, dtype=np.uint8)  # 64 MiB, touched
    del block
    rise = tutorial.peak_rss_rise_mib(rss0)
    assert 60 <= rise < 200
    rss1 = tutorial.reset_peak_rss()  # the mark goes back down after a reset
    assert tutorial.peak_rss_rise_mib(rss1) < 30


def test_border_band(tutorial):
    mask = np.zeros((1, 7, 7), dtype=np.int32)
    mask[0, :, 4:] = 1  # one vertical boundary between columns 3 and 4
    assert np.array_equal(np.nonzero(tutorial.border_band(mask, 1)[0].any(0))[0], [3, 4])
    assert np.array_equal(np.nonzero(tutorial.border_band(mask, 2)[0].any(0))[0], [2, 3, 4, 5])
    band = tutorial.border_band(mask, 2)[0]
    assert band[:, 2:6].all() and not band[:, [0, 1, 6]].any()


def test_forward_tensor_mib_counts_every_layer_output(tutorial):
    image = keras.Input((8, 6, 2))
    x = keras.layers.Conv2D(3, 1, name="a")(image)  # 8*6*3 float32
    y = keras.layers.MaxPooling2D(2, name="b")(x)  # 4*3*3 float32
    model = keras.Model(image, y)
    assert tutorial.forward_tensor_mib(model, 5) == pytest.approx(
        5 * (8 * 6 * 3 + 4 * 3 * 3) * 4 / 2**20)

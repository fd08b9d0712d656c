"""tutorials/upsampling_comparison.py: its --fast mode runs end to end, and its measuring
helpers measure what they claim."""

import importlib.util
import mmap
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
    assert (cfg["unet_filters"], cfg["unet_depth"], cfg["image_size"]) == (4, 2, 32)
    # UNet(filters=4, depth=2): the up-conv 2 * 2 * c * c/2 + c/2 against the 1x1 conv's
    # c * c/2 + c/2, from c = 16 and c = 8
    base = rows["nearest"]["params"]
    assert rows["bilinear"]["params"] == rows["unpool"]["params"] == base
    assert rows["transpose"]["params"] - base == 3 * (16 * 8 + 8 * 4)
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
    # 64 MiB of fresh anonymous pages, each touched: an mmap of its own, so that no
    # allocator can serve it from memory that is already resident
    block = mmap.mmap(-1, 64 * 2**20)
    page = b"\1" * mmap.PAGESIZE
    for offset in range(0, len(block), mmap.PAGESIZE):
        block[offset:offset + mmap.PAGESIZE] = page
    rise = tutorial.peak_rss_rise_mib(rss0)
    block.close()
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

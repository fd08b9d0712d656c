"""``keras-seg predict``: index-mask PNGs and overlays from a saved model, and its errors."""

import os

import keras
import numpy as np
import pytest
from PIL import Image

from keras_seg import cli, inference, visualize
from keras_seg.commands import predict as predict_cmd
from keras_seg.data.base import default_palette


@pytest.fixture
def saved_model(tmp_path):
    inputs = keras.Input((None, None, 3))
    x = keras.layers.Conv2D(4, 3, padding="same", activation="relu")(inputs)
    x = keras.layers.Conv2D(3, 3, padding="same", bias_initializer="random_normal")(x)
    path = str(tmp_path / "tiny.keras")
    keras.Model(inputs, x).save(path)
    return path


def _png(path, height, width, seed):
    rgb = np.random.default_rng(seed).integers(0, 256, (height, width, 3), dtype=np.uint8)
    Image.fromarray(rgb).save(path)
    return str(path), rgb


def test_predict_writes_palette_masks_and_overlays(tmp_path, saved_model, capsys):
    a, rgb_a = _png(tmp_path / "first.png", 20, 24, 0)
    b, rgb_b = _png(tmp_path / "second.png", 17, 13, 1)
    out = tmp_path / "out"
    assert cli.main(["predict", saved_model, a, b, "--output", str(out)]) == 0
    assert "first.png" in capsys.readouterr().out
    model = keras.saving.load_model(saved_model)
    palette = default_palette(3)
    for stem, rgb in (("first", rgb_a), ("second", rgb_b)):
        with Image.open(out / f"{stem}.png") as im:
            assert im.mode == "P" and im.size == (rgb.shape[1], rgb.shape[0])
            mask = np.asarray(im)
            colors = np.asarray(im.getpalette()[:9]).reshape(3, 3)
        np.testing.assert_array_equal(colors, palette)
        np.testing.assert_array_equal(mask, inference.predict(model, rgb))
        overlay = np.asarray(Image.open(out / f"{stem}_overlay.png"))
        np.testing.assert_array_equal(overlay, visualize.overlay(rgb, mask, palette))
    # sliding window + scales + flip reach inference.predict and give its result
    c, rgb_c = _png(tmp_path / "third.png", 40, 36, 2)
    assert cli.main(["predict", saved_model, c, "--output", str(out), "--tile", "32",
                     "--overlap", "0.5", "--scales", "0.5", "1.0", "--flip"]) == 0
    expected = inference.predict(model, rgb_c, tile=32, overlap=0.5, scales=(0.5, 1.0),
                                 flip=True)
    np.testing.assert_array_equal(np.asarray(Image.open(out / "third.png")), expected)


def test_tta_and_crf_flags_reach_predict(tmp_path, saved_model, monkeypatch):
    a, _ = _png(tmp_path / "a.png", 9, 11, 0)
    calls = []

    def fake_predict(predictor, images):
        calls.append(predictor)
        return [np.zeros(im.shape[:2], np.int32) for im in images]

    monkeypatch.setattr(inference.Predictor, "predict", fake_predict)
    assert cli.main(["predict", saved_model, a, "--output", str(tmp_path / "o"), "--tta",
                     "--crf", "--batch-size", "2", "--stride", "16"]) == 0
    assert len(calls) == 1  # the command predicts through an inference.Predictor
    assert calls[0].scales == inference.TTA_SCALES and calls[0].flip is True
    assert calls[0].crf is True and calls[0].batch_size == 2 and calls[0].tile is None
    assert calls[0].stride == 16


def test_bad_input_gives_clear_errors(tmp_path, saved_model, capsys):
    good, _ = _png(tmp_path / "good.png", 8, 8, 0)
    out = str(tmp_path / "out")

    def fails(argv, *needles):
        assert cli.main(["predict", *argv, "--output", out]) == predict_cmd.EXIT_BAD_INPUT
        err = capsys.readouterr().err
        for needle in needles:
            assert needle in err, err

    fails([str(tmp_path / "missing.keras"), good], "missing.keras", "does not exist")
    garbage = tmp_path / "garbage.keras"
    garbage.write_text("not a model")
    fails([str(garbage), good], "garbage.keras", "Could not load")
    inputs = keras.Input((8, 8, 3))
    classifier = str(tmp_path / "classifier.keras")
    keras.Model(inputs, keras.layers.Dense(2)(keras.layers.Flatten()(inputs))).save(classifier)
    fails([classifier, good], "not a segmentation model", "(None, 2)")
    bad = tmp_path / "bad.png"
    bad.write_text("this is not a PNG")
    fails([saved_model, good, str(bad)], "Cannot read image", "bad.png")
    fails([saved_model, str(tmp_path / "nope.png")], "nope.png", "does not exist")
    os.makedirs(tmp_path / "sub")
    twin, _ = _png(tmp_path / "sub" / "good.jpg", 8, 8, 1)
    fails([saved_model, good, twin], "would both write good.png")
    assert not os.path.exists(out)  # nothing written on bad input

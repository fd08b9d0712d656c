import json
import os
import subprocess
import sys

import keras
import numpy as np
import pytest

import keras_seg
from keras_seg import cli
from keras_seg.commands.demo import DEMO_DATA


def test_version_is_exposed():
    assert keras_seg.__version__.count(".") == 2


def test_models_lists_architectures_and_backbones(capsys):
    assert cli.main(["models"]) == 0
    out = capsys.readouterr().out
    assert "unet" in out and "UNet" in out
    for name in keras_seg.backbones.available():
        assert name in out


def test_help_lists_commands(capsys):
    assert cli.main([]) == 0
    out = capsys.readouterr().out
    assert "models" in out and "demo" in out


def test_demo_trains_reports_and_saves_pictures(tmp_path, capsys):
    # the TF backend exports in-process; elsewhere export goes through a TF subprocess,
    # which tests/test_export.py covers, so the demo skips it there
    export = "auto" if keras.backend.backend() == "tensorflow" else "none"
    assert cli.main(["demo", "--epochs", "1", "--size", "48", "--train-images", "8",
                     "--val-images", "4", "--filters", "4", "--depth", "2", "--pictures", "2",
                     "--dropout", "0.25", "--export", export, "--verbose", "0",
                     "--output", str(tmp_path)]) == 0
    out = capsys.readouterr().out
    assert "mean IoU" in out and "demo: test mIoU" in out
    pictures = sorted(os.listdir(tmp_path / "pictures"))
    assert pictures == ["test_000.png", "test_001.png"]
    from PIL import Image

    # image / truth / prediction / overlay columns, the 48 px images enlarged to 256 px,
    # titles above and a legend below (tests/visualize/test_pictures.py checks the figure)
    with Image.open(tmp_path / "pictures" / "test_000.png") as picture:
        assert picture.size[0] >= 4 * 256 and picture.size[1] > 256 + 50
    assert (tmp_path / "confusion_matrix.png").exists()
    model = keras.saving.load_model(str(tmp_path / "run" / "best.keras"))
    classes = 1 + len(DEMO_DATA["shapes"])  # the demo's subset of the built-in classes
    assert model.predict(np.zeros((1, 48, 48, 3), "float32"), verbose=0).shape == \
        (1, 48, 48, classes)
    with open(tmp_path / "run" / "config.json") as f:
        stored = json.load(f)
    assert stored["synthetic_options"] == DEMO_DATA
    assert stored["model_options"] == {"filters": 4, "depth": 2, "batch_norm": True,
                                       "dropout": 0.25}
    assert model.get_layer("bottom_dropout").rate == 0.25
    if export != "none":
        assert (tmp_path / "unet_demo.onnx").exists()  # tf2onnx is in the test extras


def test_demo_without_pictures_or_export(tmp_path, capsys):
    """``--pictures 0 --export none`` (what benchmarks/demo_backends.py runs) trains and
    reports, writes no test picture and no export; a negative count is refused."""
    args = ["demo", "--epochs", "1", "--size", "32", "--train-images", "8", "--val-images", "4",
            "--filters", "4", "--depth", "2", "--export", "none", "--verbose", "0",
            "--output", str(tmp_path)]
    assert cli.main(args + ["--pictures", "-1"]) == 2
    assert "--pictures must be >= 0" in capsys.readouterr().err
    assert cli.main(args + ["--pictures", "0"]) == 0
    assert "demo: test mIoU" in capsys.readouterr().out
    assert not (tmp_path / "pictures").exists() or not os.listdir(tmp_path / "pictures")
    assert (tmp_path / "confusion_matrix.png").exists()
    assert not [name for name in os.listdir(tmp_path) if name.startswith("unet_demo")]


def test_console_script_entry_point_runs():
    env = dict(os.environ)
    proc = subprocess.run([sys.executable, "-m", "keras_seg", "--help"], capture_output=True,
                          text=True, env=env, timeout=300)
    assert proc.returncode == 0, proc.stderr
    assert "keras-seg" in proc.stdout


def test_side_by_side_zoom_keeps_exact_label_pixels():
    from keras_seg import visualize

    rng = np.random.default_rng(0)
    image = rng.integers(0, 256, (5, 7, 3), dtype=np.uint8)
    truth, pred = rng.integers(0, 3, (5, 7)), rng.integers(0, 3, (5, 7))
    palette = np.array([[0, 0, 0], [255, 0, 0], [0, 255, 0]], dtype=np.uint8)
    one = visualize.side_by_side(image, truth, pred, palette, gap=2)
    three = visualize.side_by_side(image, truth, pred, palette, gap=2, zoom=3)
    assert one.shape == (5, 3 * 7 + 4, 3) and three.shape == (15, 3 * 21 + 4, 3)
    np.testing.assert_array_equal(three[::3, 0:21:3], image)
    np.testing.assert_array_equal(three[1::3, 23:44][:, 1::3], palette[truth])
    np.testing.assert_array_equal(three[2::3, 46:67][:, 2::3], palette[pred])
    for bad in (0, 1.5):
        with pytest.raises(ValueError, match="zoom"):
            visualize.side_by_side(image, truth, pred, palette, zoom=bad)

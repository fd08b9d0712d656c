import os
import subprocess
import sys

import keras
import numpy as np

import keras_seg
from keras_seg import cli


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


def test_demo_trains_and_saves(tmp_path, capsys):
    assert cli.main(["demo", "--epochs", "2", "--size", "32", "--filters", "4",
                     "--output", str(tmp_path)]) == 0
    out = capsys.readouterr().out
    assert "loss" in out and "unet_demo.keras" in out
    model = keras.saving.load_model(str(tmp_path / "unet_demo.keras"))
    assert model.predict(np.zeros((1, 32, 32, 3), "float32"), verbose=0).shape == (1, 32, 32, 3)


def test_console_script_entry_point_runs():
    env = dict(os.environ)
    proc = subprocess.run([sys.executable, "-m", "keras_seg", "--help"], capture_output=True,
                          text=True, env=env, timeout=300)
    assert proc.returncode == 0, proc.stderr
    assert "keras-seg" in proc.stdout

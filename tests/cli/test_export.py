"""`keras-seg export`, in process through keras_seg.cli.main."""

import keras
import numpy as np
import onnxruntime
import pytest

from keras_seg import cli
from keras_seg.applications import UNet


@pytest.fixture
def keras_file(tmp_path):
    model = UNet(2, filters=4, depth=2)
    path = tmp_path / "unet.keras"
    model.save(path)
    return model, path


@pytest.mark.skipif(keras.backend.backend() != "tensorflow",
                    reason="on JAX / PyTorch the export runs the TensorFlow-backend "
                    "subprocess tested in test_export.py; the command's code is the same")
def test_export_command_writes_a_checked_onnx(keras_file, tmp_path, capsys):
    model, path = keras_file
    output = tmp_path / "out" / "model.onnx"
    assert cli.main(["export", str(path), "--format", "onnx", "--output", str(output),
                     "--check-sizes", "37x45", "29x30"]) == 0
    out = capsys.readouterr().out
    assert f"exported onnx to {output}" in out
    assert "parity vs keras" in out and "37x45 (batch 1)" in out and "29x30 (batch 2)" in out
    session = onnxruntime.InferenceSession(str(output), providers=["CPUExecutionProvider"])
    x = np.random.default_rng(3).uniform(0, 1, (2, 21, 50, 3)).astype("float32")
    (logits,) = session.run(None, {"image": x})
    np.testing.assert_allclose(logits, keras.ops.convert_to_numpy(model(x)), rtol=1e-4,
                               atol=1e-5)


def test_missing_model_file(tmp_path, capsys):
    missing = tmp_path / "nope.keras"
    assert cli.main(["export", str(missing), "--format", "onnx", "--output",
                     str(tmp_path / "m.onnx")]) == 2
    err = capsys.readouterr().err
    assert "does not exist" in err and "nope.keras" in err
    assert not (tmp_path / "m.onnx").exists()


def test_not_a_keras_file(tmp_path, capsys):
    bogus = tmp_path / "notes.keras"
    bogus.write_text("not a model")
    assert cli.main(["export", str(bogus), "--output", str(tmp_path / "m.onnx")]) == 2
    assert "Could not load" in capsys.readouterr().err
    assert not (tmp_path / "m.onnx").exists()


def test_litert_without_input_size_and_format_from_suffix(keras_file, tmp_path, capsys):
    _, path = keras_file
    # the format comes from the .tflite suffix; LiteRT needs a fixed size
    assert cli.main(["export", str(path), "--output", str(tmp_path / "m.tflite")]) == 2
    assert "fixed input_size" in capsys.readouterr().err
    assert sorted(p.name for p in tmp_path.iterdir()) == ["unet.keras"]


def test_bad_size_argument(keras_file):
    _, path = keras_file
    with pytest.raises(SystemExit):
        cli.main(["export", str(path), "--input-size", "big"])

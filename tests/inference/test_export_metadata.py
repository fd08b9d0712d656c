"""What an export says about its inputs and outputs, and what it leaves behind.

The ONNX / SavedModel artifacts carry keras-seg's metadata (input scale, output,
classes, declared stride); `keras-seg export` prints the input scale; a killed export's
hidden temporary is removed by the next export to the same target, and nothing else is.
On JAX / PyTorch each export runs a TensorFlow-backend subprocess (a few seconds).
"""

import json
import os
import re
import subprocess
import sys

import keras
import numpy as np
import onnx
import onnxruntime
import pytest

from keras_seg import cli, export
from keras_seg.applications import UNet

SIZES = ((37, 45),)


@pytest.fixture(scope="module")
def unet():
    return UNet(3, filters=4, depth=2)  # declares output_stride 4, padding "same"


def _expected_metadata():
    return {"keras_seg.num_classes": "3", "keras_seg.output_stride": "4",
            "keras_seg.padding": "same", "keras_seg.input_scale": export.INPUT_SCALE,
            "keras_seg.output": export.OUTPUT_DESCRIPTION}


def test_onnx_metadata_props(unet, tmp_path):
    path = tmp_path / "unet.onnx"
    report = export.export(unet, path, "onnx", sizes=SIZES)
    entries = onnx.load(str(path)).metadata_props
    props = {p.key: p.value for p in entries}
    assert len(props) == len(entries)  # each key once
    for key, value in _expected_metadata().items():
        assert props[key] == value, key
    assert "[0, 1]" in props["keras_seg.input_scale"] and "255" in props["keras_seg.input_scale"]
    assert "logits" in props["keras_seg.output"]
    assert props["keras_seg.input"] == "image: (batch, height, width, 3), channels last"
    session = onnxruntime.InferenceSession(str(path), providers=["CPUExecutionProvider"])
    assert session.get_modelmeta().custom_metadata_map["keras_seg.num_classes"] == "3"
    x = np.random.default_rng(1).uniform(0, 1, (1, 21, 30, 3)).astype("float32")
    np.testing.assert_allclose(session.run(None, {"image": x})[0],
                               keras.ops.convert_to_numpy(unet(x)), rtol=1e-4, atol=1e-5)
    assert export.read_metadata(path, "onnx") == report.metadata == props


def test_saved_model_metadata_json(unet, tmp_path):
    path = tmp_path / "unet_saved_model"
    report = export.export(unet, path, "saved_model", sizes=SIZES)
    with open(path / "assets.extra" / "keras_seg.json") as f:
        stored = json.load(f)
    for key, value in _expected_metadata().items():
        assert stored[key] == value, key
    assert export.read_metadata(path, "saved_model") == report.metadata == stored
    assert report.checked  # TensorFlow loaded and ran the SavedModel with the extra folder


def test_metadata_of_other_models():
    # a deep-supervision model: the declared geometry of the model, the main output's classes
    metadata = export.export_metadata(UNet(5, filters=4, depth=2, deep_supervision=True))
    assert metadata["keras_seg.num_classes"] == "5"
    assert metadata["keras_seg.output_stride"] == "4"
    # a model from elsewhere declares no geometry: no stride is claimed
    inputs = keras.Input((None, None, 1))
    plain = keras.Model(inputs, keras.layers.Conv2D(2, 3, padding="same")(inputs))
    metadata = export.export_metadata(plain)
    assert "keras_seg.output_stride" not in metadata and "keras_seg.padding" not in metadata
    assert metadata["keras_seg.input"] == "image: (batch, height, width, 1), channels last"
    with pytest.raises(ValueError, match="LiteRT artifacts carry no keras-seg metadata"):
        export.read_metadata("x.tflite", "litert")


def test_export_command_prints_the_input_scale(unet, tmp_path, capsys):
    source = tmp_path / "unet.keras"
    unet.save(source)
    output = tmp_path / "unet.onnx"
    assert cli.main(["export", str(source), "--output", str(output), "--check-sizes",
                     "37x45"]) == 0
    out = capsys.readouterr().out
    assert f"exported onnx to {output}" in out
    assert export.INPUT_SCALE in out and "float32 in [0, 1]" in out
    assert "num_classes=3, output_stride=4" in out


def _dead_pid():
    proc = subprocess.Popen([sys.executable, "-c", "pass"])
    proc.wait()
    return proc.pid


def test_leftovers_of_killed_exports_are_removed_and_nothing_else(tmp_path):
    target = tmp_path / "model.onnx"
    dead, alive = _dead_pid(), os.getpid()
    leftovers = [f".model.onnx.partial-{dead}-0123abcd", ".model.onnx.partial-deadbeef",
                 f".model.onnx.partial-{dead}-89abcdef.tflite"]
    kept = [
        f".model.onnx.partial-{alive}-0123abcd",      # an export running now
        ".model.onnx.partial-deadbee",                # not 8 hex digits
        ".model.onnx.partial-DEADBEEF",               # not the lower-case hex written
        ".model.onnx.partial-deadbeef.bak",           # another suffix
        "model.onnx.partial-deadbeef",                # not hidden
        ".other.onnx.partial-deadbeef",               # another target
        ".model.onnx.partial-deadbeef~",
        "model.onnx.old-deadbeef",
        "notes.txt",
    ]
    for name in leftovers[1:] + kept:
        (tmp_path / name).write_text("x")
    os.mkdir(tmp_path / leftovers[0])  # a SavedModel-style temporary directory
    (tmp_path / leftovers[0] / "saved_model.pb").write_text("x")
    removed = export.remove_leftovers(target)
    assert sorted(removed) == sorted(str(tmp_path / n) for n in leftovers)
    assert sorted(os.listdir(tmp_path)) == sorted(kept)
    assert export.remove_leftovers(tmp_path / "missing" / "model.onnx") == []


def test_next_export_removes_a_killed_exports_temporary(unet, tmp_path):
    target = tmp_path / "model.onnx"
    stale = tmp_path / f".model.onnx.partial-{_dead_pid()}-0123abcd"
    stale.write_bytes(b"half an onnx file")
    other = tmp_path / ".other.onnx.partial-0123abcd"
    other.write_bytes(b"not ours")
    export.export(unet, target, "onnx", check=False)
    assert sorted(os.listdir(tmp_path)) == [".other.onnx.partial-0123abcd", "model.onnx"]
    assert onnx.load(str(target)).graph.input[0].name == "image"


def test_temporary_names_match_the_cleanup_pattern(unet, tmp_path, monkeypatch):
    # what export writes is what remove_leftovers recognizes (once its process is gone)
    seen = []

    def fake_write(model, tmp, format, input_shape, opset, verbose):
        seen.append(os.path.basename(tmp))
        raise KeyboardInterrupt  # as if killed mid-export

    monkeypatch.setattr(export, "_write_artifact", fake_write)
    for fmt, name in (("onnx", "m.onnx"), ("litert", "m.tflite"), ("saved_model", "m_sm")):
        with pytest.raises(KeyboardInterrupt):
            export.export(unet, tmp_path / name, fmt, input_size=(32, 32), check=False)
    pid = os.getpid()
    for name, target, suffix in zip(seen, ("m.onnx", "m.tflite", "m_sm"), ("", ".tflite", ""),
                                    strict=True):
        assert re.fullmatch(rf"\.{re.escape(target)}\.partial-{pid}-[0-9a-f]{{8}}"
                            rf"{re.escape(suffix)}", name), name
    monkeypatch.setattr(export, "_process_running", lambda pid: False)
    for target, name in zip(("m.onnx", "m.tflite", "m_sm"), seen, strict=True):
        (tmp_path / name).write_text("x")  # what a killed export leaves
        assert export.remove_leftovers(tmp_path / target) == [str(tmp_path / name)]
    assert os.listdir(tmp_path) == []

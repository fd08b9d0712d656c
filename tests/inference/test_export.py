"""keras_seg.export from the current backend: one tiny U-Net to ONNX (on JAX / PyTorch
through the one TensorFlow-backend subprocess of this file), SavedModel on TensorFlow,
and the failure cases (unknown format, missing TensorFlow, not a segmentation model,
no half-written or unchecked file at the target)."""

import json
import os
import shutil

import keras
import numpy as np
import onnx
import onnxruntime
import pytest

from keras_seg import export as export_module
from keras_seg.applications import UNet
from keras_seg.export import FORMATS, INSTALL_HINT, ParityError, check, export

BACKEND = keras.backend.backend()


def tiny_unet(seed):
    keras.utils.set_random_seed(seed)
    # deep supervision: export must keep the "logits" output only
    return UNet(3, filters=4, depth=2, deep_supervision=True)


def keras_logits(model, x):
    return keras.ops.convert_to_numpy(model(x)["logits"])


@pytest.fixture(scope="module")
def exported(tmp_path_factory):
    """(model, path, report) of the ONNX export of a tiny U-Net from this backend."""
    model = tiny_unet(0)
    path = tmp_path_factory.mktemp("onnx") / "unet.onnx"
    report = export(model, path, "onnx")
    return model, path, report


def test_onnx_export_from_this_backend_has_parity_at_two_sizes(exported):
    model, path, report = exported
    assert report.format == "onnx" and report.path == str(path) and path.is_file()
    assert report.backend == BACKEND
    expected_route = "in process" if BACKEND == "tensorflow" else f"subprocess from a .keras " \
        f"file (caller: {BACKEND})"
    assert expected_route in report.route
    assert report.checked and report.input_shape == (None, None, None, 3)
    assert list(report.max_abs_diff) == ["67x93 (batch 1)", "45x71 (batch 2)"]
    assert report.max_rel_diff <= 1e-4 and report.rtol == 1e-4
    # the artifact: dynamic batch / height / width, one output (the deep-supervision
    # heads are not exported)
    graph = onnx.load(str(path)).graph
    dims = graph.input[0].type.tensor_type.shape.dim
    assert [d.HasField("dim_param") for d in dims] == [True, True, True, False]
    assert dims[3].dim_value == 3 and len(graph.output) == 1
    # run it at a third size, batch 3, independently of export's own check
    session = onnxruntime.InferenceSession(str(path), providers=["CPUExecutionProvider"])
    x = np.random.default_rng(7).uniform(0, 1, (3, 29, 38, 3)).astype("float32")
    (out,) = session.run(None, {session.get_inputs()[0].name: x})
    ref = keras_logits(model, x)
    assert out.shape == (3, 29, 38, 3)
    np.testing.assert_allclose(out, ref, rtol=1e-4, atol=1e-5)
    assert "parity vs keras" in str(report)


def test_check_catches_an_artifact_of_other_weights(exported):
    model, path, _ = exported
    diffs, rel = check(model, path, "onnx", sizes=((33, 41),))
    assert list(diffs) == ["33x41 (batch 1)"] and rel <= 1e-4
    other = tiny_unet(1)  # same architecture, other weights
    with pytest.raises(ParityError, match="differs from the Keras model"):
        check(other, path, "onnx")


def test_unknown_format_lists_the_formats(tmp_path):
    with pytest.raises(ValueError, match="'saved_model', 'onnx', 'litert'"):
        export(tiny_unet(0), tmp_path / "m.pb", "torchscript")
    assert FORMATS == ("saved_model", "onnx", "litert")
    assert not os.listdir(tmp_path)


def test_missing_tensorflow_says_what_to_install(tmp_path, monkeypatch):
    real = export_module._module_available
    monkeypatch.setattr(export_module, "_module_available",
                        lambda name: name != "tensorflow" and real(name))
    with pytest.raises(ImportError, match=r"tensorflow.*pip install keras-seg\[tensorflow,"
                                          r"export\]"):
        export(tiny_unet(0), tmp_path / "m.onnx", "onnx")
    assert INSTALL_HINT == "pip install keras-seg[tensorflow,export]"
    assert not os.listdir(tmp_path)


def test_not_a_segmentation_model(tmp_path):
    inputs = keras.Input((None, None, 3))
    pooled = keras.layers.GlobalAveragePooling2D()(keras.layers.Conv2D(4, 3)(inputs))
    classifier = keras.Model(inputs, keras.layers.Dense(5)(pooled))
    with pytest.raises(ValueError, match=r"not a segmentation model.*\(None, 5\)"):
        export(classifier, tmp_path / "m.onnx", "onnx")
    vector_in = keras.Input((8,))
    with pytest.raises(ValueError, match="one image input"):
        export(keras.Model(vector_in, keras.layers.Dense(2)(vector_in)), tmp_path / "v", "onnx")
    assert not os.listdir(tmp_path)


def test_bad_arguments(tmp_path):
    model = tiny_unet(0)
    with pytest.raises(ValueError, match="fixed input_size"):
        export(model, tmp_path / "m.tflite", "litert")
    with pytest.raises(ValueError, match="sizes"):
        export(model, tmp_path / "m.onnx", "onnx", sizes=((0, 5),))
    (tmp_path / "dir.onnx").mkdir()
    with pytest.raises(ValueError, match="is a directory"):
        export(model, tmp_path / "dir.onnx", "onnx")
    (tmp_path / "file").write_bytes(b"x")
    with pytest.raises(ValueError, match="SavedModel is a directory"):
        export(model, tmp_path / "file", "saved_model")
    with pytest.raises(FileExistsError, match="overwrite"):
        export(model, tmp_path / "file", "onnx", overwrite=False)
    assert sorted(os.listdir(tmp_path)) == ["dir.onnx", "file"]


def test_a_failing_export_leaves_nothing_at_the_target(tmp_path, monkeypatch):
    def write_half_then_fail(model, tmp, *args):
        with open(tmp, "wb") as f:
            f.write(b"half an onnx file")
        raise RuntimeError("converter crashed")

    monkeypatch.setattr(export_module, "_write_artifact", write_half_then_fail)
    target = tmp_path / "m.onnx"
    with pytest.raises(RuntimeError, match="converter crashed"):
        export(tiny_unet(0), target, "onnx")
    assert not os.listdir(tmp_path)  # no target, no temporary file
    target.write_bytes(b"previous export")
    with pytest.raises(RuntimeError, match="converter crashed"):
        export(tiny_unet(0), target, "onnx")
    assert os.listdir(tmp_path) == ["m.onnx"] and target.read_bytes() == b"previous export"


def test_an_artifact_failing_the_check_is_not_moved_into_place(exported, tmp_path,
                                                               monkeypatch):
    model, good, _ = exported

    def copy_the_good_artifact(model, tmp, *args):  # a stand-in exporter, no TensorFlow
        shutil.copy(good, tmp)
        return "copy"

    monkeypatch.setattr(export_module, "_write_artifact", copy_the_good_artifact)
    target = tmp_path / "m.onnx"
    target.write_bytes(b"previous export")
    with pytest.raises(ParityError):
        export(tiny_unet(1), target, "onnx")  # other weights than the artifact's
    assert os.listdir(tmp_path) == ["m.onnx"] and target.read_bytes() == b"previous export"
    report = export(model, target, "onnx", sizes=((20, 30),))  # the right model: replaced
    assert report.route == "copy" and target.read_bytes() == good.read_bytes()
    assert os.listdir(tmp_path) == ["m.onnx"]


def test_directory_artifacts_replace_an_existing_directory(tmp_path):
    new, target = tmp_path / ".partial", tmp_path / "saved"
    new.mkdir()
    (new / "saved_model.pb").write_bytes(b"new")
    target.mkdir()
    (target / "old.pb").write_bytes(b"old")
    export_module._move_into_place(str(new), str(target))
    assert os.listdir(target) == ["saved_model.pb"] and os.listdir(tmp_path) == ["saved"]


def test_export_worker_refuses_another_backend(tmp_path, capsys):
    """The subprocess entry exports on the TensorFlow backend only (run here in-process)."""
    job = json.dumps({"source": str(tmp_path / "m.keras"), "path": str(tmp_path / "m.onnx"),
                      "format": "onnx", "input_shape": [None, None, None, 3], "opset": None,
                      "verbose": False})
    if BACKEND == "tensorflow":
        tiny_unet(0).save(tmp_path / "m.keras")
        assert export_module._worker_main([job]) == 0
        assert (tmp_path / "m.onnx").is_file()
    else:
        assert export_module._worker_main([job]) == 2
        assert "KERAS_BACKEND=tensorflow" in capsys.readouterr().err
        assert not (tmp_path / "m.onnx").exists()


@pytest.mark.skipif(BACKEND != "tensorflow", reason="on JAX / PyTorch every format goes "
                    "through the same subprocess as ONNX (tested above); one subprocess "
                    "per run keeps this file fast")
def test_saved_model_on_tensorflow(tmp_path):
    import tensorflow as tf

    model = tiny_unet(0)
    report = export(model, tmp_path / "saved", "saved_model")
    assert report.checked and report.max_rel_diff <= 1e-4
    loaded = tf.saved_model.load(str(tmp_path / "saved"))
    x = np.random.default_rng(8).uniform(0, 1, (3, 29, 38, 3)).astype("float32")
    out = loaded.signatures["serving_default"](image=tf.constant(x))
    (out,) = out.values()
    np.testing.assert_allclose(out.numpy(), keras_logits(model, x), rtol=1e-4, atol=1e-5)
    np.testing.assert_allclose(loaded.serve(x).numpy(), out.numpy(), rtol=0, atol=0)

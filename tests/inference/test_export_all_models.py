"""Every architecture in keras_seg.applications.MODELS exports to SavedModel and ONNX.

Each model is built tiny and exported with :func:`keras_seg.export.export`, whose
parity check runs the artifact (TensorFlow for the SavedModel, onnxruntime for
ONNX) at two input sizes that are not multiples of 32, at batch 1 and 2, and
raises beyond 1e-4 relative difference to Keras. Runs on the TensorFlow backend
only: export always goes through TensorFlow (the JAX / PyTorch route is a
subprocess round trip of the same code, covered in test_export.py), and CI runs
the suite once per backend, so this runs once per CI run.

The models are the cases of the one table of tiny models (``support/tiny_models.py``)
marked ``export=True``, one per registered name: a model registered in MODELS without
one fails here (and in tests/models/test_all_models.py).
"""

import keras
import numpy as np
import onnx
import pytest
from support.tiny_models import export_case

from keras_seg import applications
from keras_seg.export import export

pytestmark = pytest.mark.skipif(
    keras.backend.backend() != "tensorflow",
    reason="export always goes through the TensorFlow backend; this runs once per CI run, "
    "in the TensorFlow pass (the JAX / PyTorch subprocess route is in test_export.py)")

SIZES = ((45, 71), (37, 29))  # not multiples of 32 (nor of 8 or 16)


def _onnx_input_dims(path):
    dims = onnx.load(path).graph.input[0].type.tensor_type.shape.dim
    return [d.dim_value if d.HasField("dim_value") else d.dim_param for d in dims]


@pytest.mark.parametrize("name", sorted(applications.MODELS))
def test_exports_to_saved_model_and_onnx_with_parity(name, tmp_path):
    case = export_case(name)
    if case is None:
        pytest.fail(f"applications.MODELS has {name!r} but tests/support/tiny_models.py has "
                    "no case of it with export=True: add one so that its export is tested.")
    model = case.build()
    for fmt, target in (("saved_model", tmp_path / "saved_model"),
                        ("onnx", tmp_path / "model.onnx")):
        report = export(model, target, fmt, sizes=SIZES)
        assert report.checked and report.input_shape == (None, None, None, case.channels)
        # both sizes at their own batch were compared, and the numbers agree
        assert list(report.max_abs_diff) == ["45x71 (batch 1)", "37x29 (batch 2)"]
        assert report.max_rel_diff <= 1e-4
        assert target.exists()
    dims = _onnx_input_dims(str(tmp_path / "model.onnx"))
    # dynamic N, H, W
    assert dims[3] == case.channels and all(isinstance(d, str) for d in dims[:3]), dims
    assert sorted(p.name for p in tmp_path.iterdir()) == ["model.onnx", "saved_model"]


@pytest.mark.filterwarnings("ignore:.*tf.lite.Interpreter is deprecated:UserWarning")
def test_litert_export_of_segnet_max_unpooling(tmp_path):
    """LiteRT (builtin ops, fixed 45x71 spatial size, dynamic batch) for the model whose
    max unpooling is the least standard graph."""
    model = export_case("segnet").build()
    path = tmp_path / "segnet.tflite"
    report = export(model, path, "litert", input_size=(45, 71))
    assert report.input_shape == (None, 45, 71, 3)
    assert list(report.max_abs_diff) == ["45x71 (batch 1)", "45x71 (batch 2)"]
    assert report.max_rel_diff <= 1e-4
    # and the artifact itself, run independently of the check
    import tensorflow as tf

    interpreter = tf.lite.Interpreter(model_path=str(path))
    details = interpreter.get_input_details()[0]
    assert list(details["shape_signature"]) == [-1, 45, 71, 3]
    x = np.random.default_rng(5).uniform(0, 1, (1, 45, 71, 3)).astype("float32")
    interpreter.allocate_tensors()
    interpreter.set_tensor(details["index"], x)
    interpreter.invoke()
    out = interpreter.get_tensor(interpreter.get_output_details()[0]["index"])
    np.testing.assert_allclose(out, keras.ops.convert_to_numpy(model(x)), rtol=1e-4, atol=1e-5)

"""Every architecture in keras_seg.applications.MODELS exports to SavedModel and ONNX.

Each model is built tiny and exported with :func:`keras_seg.export.export`, whose
parity check runs the artifact (TensorFlow for the SavedModel, onnxruntime for
ONNX) at two input sizes that are not multiples of 32, at batch 1 and 2, and
raises beyond 1e-4 relative difference to Keras. Runs on the TensorFlow backend
only: export always goes through TensorFlow (the JAX / PyTorch route is a
subprocess round trip of the same code, covered in test_export.py), and CI runs
the suite once per backend, so this runs once per CI run.

A model registered in MODELS without an entry in TINY fails here: add a tiny
configuration for it.
"""

import keras
import numpy as np
import onnx
import pytest
from tiny_pyramid import tiny_pyramid

from keras_seg import applications
from keras_seg.export import export

pytestmark = pytest.mark.skipif(
    keras.backend.backend() != "tensorflow",
    reason="export always goes through the TensorFlow backend; this runs once per CI run, "
    "in the TensorFlow pass (the JAX / PyTorch subprocess route is in test_export.py)")

SIZES = ((45, 71), (37, 29))  # not multiples of 32 (nor of 8 or 16)
W = {"width_multiplier": 0.125}


# name in MODELS -> a zero-argument builder of a tiny 3-class model (the builder is
# only called for names in MODELS, so an entry may precede its model). The paper's
# VGG-16 stays for FCN, DeepLab v1, DilatedNet and G-FRNet and ResNet-18 for LinkNet;
# the heads on deep backbones (DeepLab v2/v3/v3+, PSPNet, RefineNet, DANet, APCNet)
# run on the five-conv stand-in of tiny_pyramid.py (dilated, like theirs); v3+ keeps
# its separable convolutions. Auxiliary / deep-supervision heads are switched on
# where a model has them, since export must drop them.
TINY = {
    "fcn32s": lambda: applications.FCN32s(3, backbone_options={**W, "fc_filters": 32}),
    "fcn16s": lambda: applications.FCN16s(3, backbone_options={**W, "fc_filters": 32}),
    "fcn8s": lambda: applications.FCN8s(3, backbone_options={**W, "fc_filters": 32}),
    "segnet": lambda: applications.SegNet(3, filters=(4, 8, 8), convs=(1, 1, 1)),
    "linknet": lambda: applications.LinkNet(3, backbone_options=W),
    "enet": lambda: applications.ENet(3, filters=(8, 16, 16), encoder_blocks=(0, 0, 0)),
    "unet": lambda: applications.UNet(3, filters=4, depth=3, deep_supervision=True),
    "dilatednet": lambda: applications.DilatedNet(3, context="basic", backbone_options=W,
                                                  fc_filters=32),
    "deeplabv1": lambda: applications.DeepLabV1(3, backbone_options=W, fc_filters=32,
                                                multi_scale=True, multi_scale_filters=8),
    "deeplabv2": lambda: applications.DeepLabV2(3, backbone=tiny_pyramid(8), aspp="S",
                                                fc_filters=16),
    "deeplabv3": lambda: applications.DeepLabV3(3, backbone=tiny_pyramid(16), filters=16),
    "deeplabv3plus": lambda: applications.DeepLabV3Plus(
        3, backbone=tiny_pyramid(16), separable=True, filters=16, low_level_filters=8,
        decoder_filters=16),
    "pspnet": lambda: applications.PSPNet(3, backbone=tiny_pyramid(8), bins=(1, 6), filters=16,
                                          aux=True, aux_filters=8),
    "refinenet": lambda: applications.RefineNet(3, backbone=tiny_pyramid(32),
                                                filters=(16, 8, 8, 8)),
    "gfrnet": lambda: applications.GFRNet(3, backbone_options=W),
    "danet": lambda: applications.DANet(3, backbone=tiny_pyramid(8), filters=16, aux=True),
    "apcnet": lambda: applications.APCNet(3, backbone=tiny_pyramid(8), scales=(1, 6),
                                          filters=8),
}


def _onnx_input_dims(path):
    dims = onnx.load(path).graph.input[0].type.tensor_type.shape.dim
    return [d.dim_value if d.HasField("dim_value") else d.dim_param for d in dims]


@pytest.mark.parametrize("name", sorted(applications.MODELS))
def test_exports_to_saved_model_and_onnx_with_parity(name, tmp_path):
    if name not in TINY:
        pytest.fail(f"applications.MODELS has {name!r} but test_export_all_models.TINY has no "
                    "tiny configuration for it: add one so that its export is tested.")
    model = TINY[name]()
    for fmt, target in (("saved_model", tmp_path / "saved_model"),
                        ("onnx", tmp_path / "model.onnx")):
        report = export(model, target, fmt, sizes=SIZES)
        assert report.checked and report.input_shape == (None, None, None, 3)
        # both sizes at their own batch were compared, and the numbers agree
        assert list(report.max_abs_diff) == ["45x71 (batch 1)", "37x29 (batch 2)"]
        assert report.max_rel_diff <= 1e-4
        assert target.exists()
    dims = _onnx_input_dims(str(tmp_path / "model.onnx"))
    assert dims[3] == 3 and all(isinstance(d, str) for d in dims[:3]), dims  # dynamic N, H, W
    assert sorted(p.name for p in tmp_path.iterdir()) == ["model.onnx", "saved_model"]


@pytest.mark.filterwarnings("ignore:.*tf.lite.Interpreter is deprecated:UserWarning")
def test_litert_export_of_segnet_max_unpooling(tmp_path):
    """LiteRT (builtin ops, fixed 45x71 spatial size, dynamic batch) for the model whose
    max unpooling is the least standard graph."""
    model = TINY["segnet"]()
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

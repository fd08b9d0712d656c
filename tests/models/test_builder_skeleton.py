"""The one builder skeleton: encoder resolution and its errors, fixed-encoder builders,
and the geometry every builder declares."""

import keras
import pytest
from support.tiny_models import CASES
from support.tiny_pyramid import tiny_pyramid

from keras_seg import applications
from keras_seg.model_base import SegmentationModel, model_geometry


def _keras_applications_resnet():
    return keras.applications.ResNet50(include_top=False, weights=None,
                                       input_shape=(None, None, 3))


@pytest.mark.parametrize("builder", ["DeepLabV3Plus", "DeepLabV3", "PSPNet", "DANet",
                                     "APCNet", "DeepLabV2"])
def test_passed_in_model_at_another_stride_is_refused(builder):
    # a keras.applications ResNet computes P5 at stride 32 and cannot be dilated
    with pytest.raises(ValueError, match=r"output_stride=8 asked, but the passed-in model "
                       r"'resnet50_pyramid' computes its deepest feature at stride 32"):
        getattr(applications, builder)(3, backbone=_keras_applications_resnet(),
                                       output_stride=8)


def test_passed_in_model_at_its_own_stride_is_used():
    model = applications.DeepLabV3Plus(3, backbone=tiny_pyramid(16), output_stride=16,
                                       filters=8, low_level_filters=8, decoder_filters=8)
    assert model_geometry(model) == {"output_stride": 16, "padding": "same"}
    with pytest.raises(ValueError, match="stride of a model instance cannot be changed"):
        applications.DeepLabV3Plus(3, backbone=tiny_pyramid(16), output_stride=8)


@pytest.mark.parametrize("builder", ["SegNet", "ENet", "DeepLabV1", "DilatedNet"])
def test_fixed_encoder_builders_refuse_backbone(builder):
    with pytest.raises(ValueError, match="this architecture has no backbone= option"):
        getattr(applications, builder)(3, backbone="resnet50")


@pytest.mark.parametrize("builder", ["UNet", "LinkNet", "FCN8s", "RefineNet", "PSPNet"])
def test_backbone_options_with_a_model_instance_are_refused(builder):
    with pytest.raises(ValueError, match=r"backbone_options \['width_multiplier'\] only apply "
                       "to a backbone given by name"):
        getattr(applications, builder)(3, backbone=tiny_pyramid(8 if builder == "PSPNet"
                                                                 else 32),
                                       backbone_options={"width_multiplier": 0.5})


def test_same_errors_everywhere():
    for builder in ("LinkNet", "FCN8s", "RefineNet", "DeepLabV3Plus"):
        with pytest.raises(ValueError, match="backbone must be a name"):
            getattr(applications, builder)(3, backbone=3)
        with pytest.raises(ValueError, match="Unknown backbone 'resnet5'"):
            getattr(applications, builder)(3, backbone="resnet5")
    with pytest.raises(ValueError, match=r"has no 'P2' feature \(the stride-4 low-level"):
        inputs = keras.Input((None, None, 3))
        full = tiny_pyramid(16)(inputs)
        no_p2 = keras.Model(inputs, {k: full[k] for k in ("P3", "P4", "P5")})
        applications.DeepLabV3Plus(3, backbone=no_p2)
    with pytest.raises(ValueError, match="multi_grid only apply to a backbone given by name"):
        applications.DeepLabV3(3, backbone=tiny_pyramid(16), multi_grid=(1, 2, 1))
    with pytest.raises(ValueError, match="output_stride=8 in backbone_options conflicts"):
        applications.DeepLabV3(3, backbone="resnet18", backbone_options={"output_stride": 8})


def test_build_factory():
    model = applications.build("unet", 3, filters=4, depth=2)
    assert isinstance(model, SegmentationModel) and model.output.shape[-1] == 3
    with pytest.raises(ValueError, match="Unknown model 'unet3'; choose one of"):
        applications.build("unet3", 3)


@pytest.mark.skipif(keras.backend.backend() == "jax",
                    reason="JAX computes float64 only with jax_enable_x64 set at start-up "
                    "(tests/training/test_backend_parity.py runs it so)")
@pytest.mark.parametrize("name", sorted(applications.MODELS))
def test_float64_model_keeps_float64_to_its_logits(name):
    """Under ``keras.config.set_floatx("float64")`` every output (auxiliary and
    deep-supervision heads included) is float64 and the losses keep it: the heads take
    ``logits_dtype()`` (float32 under float32 and mixed policies, float64 here)."""
    import numpy as np
    from support.tiny_models import export_case

    from keras_seg.losses import SegmentationCrossEntropy

    case = export_case(name) or next(c for c in CASES if c.name == name)
    previous = keras.config.floatx()
    keras.config.set_floatx("float64")
    try:
        model = case.build()
        x = np.random.default_rng(0).random((1, *case.input_size, case.channels))
        outputs = model(x, training=False)
        outputs = outputs if isinstance(outputs, dict) else {"logits": outputs}
        for key, value in outputs.items():
            assert keras.backend.standardize_dtype(value.dtype) == "float64", key
        labels = np.zeros(outputs["logits"].shape[:3], "int32")
        loss = SegmentationCrossEntropy()(labels, outputs["logits"])
        assert keras.backend.standardize_dtype(loss.dtype) == "float64"
    finally:
        keras.config.set_floatx(previous)


@pytest.mark.skipif(keras.backend.backend() == "jax",
                    reason="JAX computes float64 only with jax_enable_x64 set at start-up")
@pytest.mark.parametrize("name", ["ce", "dice", "focal", "lovasz", "ce+dice"])
def test_every_loss_keeps_float64_with_class_weights_and_smoothing(name):
    """float64 logits stay float64 through every loss, also with the float32 class-weight
    vectors (cross-entropy with label smoothing, focal with per-class alpha)."""
    import numpy as np

    from keras_seg import losses

    rng = np.random.default_rng(0)
    logits = keras.ops.convert_to_tensor(rng.normal(size=(2, 5, 4, 3)), "float64")
    labels = rng.integers(0, 3, (2, 5, 4)).astype("int32")
    loss = losses.get(name, class_weights=[1.0, 2.0, 0.5])
    if name == "ce":
        loss = losses.SegmentationCrossEntropy(class_weights=[1.0, 2.0, 0.5],
                                               label_smoothing=0.1)
    if name == "focal":
        loss = losses.FocalLoss(alpha=[0.25, 0.5, 0.25])
    value = loss(labels, logits)
    assert keras.backend.standardize_dtype(value.dtype) == "float64"
    as32 = loss(labels, keras.ops.cast(logits, "float32"))
    np.testing.assert_allclose(float(value), float(as32), rtol=1e-5)

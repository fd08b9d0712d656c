"""The one builder skeleton: encoder resolution and its errors, fixed-encoder builders,
and the geometry every builder declares."""

import keras
import pytest
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

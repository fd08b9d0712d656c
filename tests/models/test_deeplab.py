import keras
import numpy as np
import pytest
from support.harness import trainable_params
from support.paper_size import zero_init
from support.param_counts import conv, msc_params, v3plus_head_params
from support.tiny_models import case

from keras_seg import backbones
from keras_seg.applications import MODELS, DeepLabV1, DeepLabV2, DeepLabV3, DeepLabV3Plus
from keras_seg.applications.deeplab import DEEPLABV1_PAPER_PARAMS
from keras_seg.layers import ASPP, ASPPSum

TINY = {"width_multiplier": 0.125}

# The harness trains DeepLab v1 (with and without multi-scale inputs, VGG-16 at 1/8 width)
# and v2 (ASPP-S), v3 (output stride 8) and v3+ (separable) on the five-conv stand-in
# backbone (support/tiny_models.py) and checks their exact counts (support/param_counts.py:
# deeplabv1_params, msc_params, aspp_params, v3plus_head_params). Here: structure.


def backbone_params(model, name):
    return trainable_params(model.get_layer(name))


def channels_of(model, name, key):
    return model.get_layer(name).output[key].shape[-1]


def test_registered():
    for key in ("deeplabv1", "deeplabv2", "deeplabv3", "deeplabv3plus"):
        assert key in MODELS


def test_deeplabv1_largefov_has_the_papers_20_5m_parameters():
    model = DeepLabV1(21)
    vgg_convs = 14_714_688  # the 13 VGG-16 convolutions
    fc = conv(3, 512, 1024) + conv(1, 1024, 1024) + conv(1, 1024, 21)
    assert trainable_params(model) == vgg_convs + fc == 20_505_429
    assert abs(trainable_params(model) - DEEPLABV1_PAPER_PARAMS) / DEEPLABV1_PAPER_PARAMS < 0.02
    fc6 = model.get_layer("vgg16").get_layer("fc6")
    assert fc6.kernel_size == (3, 3) and fc6.dilation_rate == (12, 12) and fc6.filters == 1024
    pool5 = model.get_layer("vgg16").get_layer("block5_pool")
    assert pool5.pool_size == (3, 3) and pool5.strides == (1, 1)


def test_deeplabv2_aspp_s_case():
    aspp = case("deeplabv2-aspp-s").build().get_layer("aspp")
    assert isinstance(aspp, ASPPSum) and aspp.rates == (2, 4, 8, 12)


def test_deeplabv2_resnet_wiring():
    model = DeepLabV2(3, backbone="resnet18", backbone_options=TINY)
    assert backbones.feature_strides(model.get_layer("resnet18"))["P5"] == 8
    cin = channels_of(model, "resnet18", "P5")
    assert trainable_params(model) == backbone_params(model, "resnet18") + 4 * conv(3, cin, 3)


def test_deeplabv2_defaults_and_vgg_variant():
    keras.config.set_dtype_policy("mixed_bfloat16")  # the summed head stays float32
    model = DeepLabV2(5, backbone="vgg16", backbone_options=TINY, fc_filters=16)
    keras.config.set_dtype_policy("float32")
    aspp = model.get_layer("aspp")
    assert aspp.rates == (6, 12, 18, 24) and aspp.hidden_filters == 16  # ASPP-L, VGG branches
    cin = channels_of(model, "vgg16", "P5")
    branch = conv(3, cin, 16) + conv(1, 16, 16) + conv(1, 16, 5)
    assert trainable_params(model) == backbone_params(model, "vgg16") + 4 * branch
    x = np.random.default_rng(0).uniform(size=(1, 35, 27, 3)).astype("float32")
    out = model(x)
    assert tuple(out.shape) == (1, 35, 27, 5)
    assert keras.backend.standardize_dtype(out.dtype) == "float32"
    assert aspp.compute_dtype == "float32"
    assert aspp.branches[0][0].compute_dtype == "float32"
    # the paper's default: ResNet-101 at output stride 8
    import inspect
    defaults = inspect.signature(DeepLabV2).parameters
    assert defaults["backbone"].default == "resnet101" and defaults["output_stride"].default == 8
    assert defaults["aspp"].default == "L"


def test_deeplabv3_output_stride_8_case():
    aspp = case("deeplabv3-os8").build().get_layer("aspp")
    assert isinstance(aspp, ASPP) and aspp.image_pooling
    assert aspp.rates == (12, 24, 36)  # doubled at output stride 8


def test_deeplabv3_paper_structure_at_output_stride_16():
    model = DeepLabV3(21, backbone="resnet18", backbone_options=TINY)
    assert model.get_layer("aspp").rates == (6, 12, 18)
    assert model.get_layer("aspp").filters == 256
    bb = model.get_layer("resnet18")
    # block4 dilated by 2 with multi-grid (1, 2, 4): unit rates 2, 4 (8 for a third unit)
    rates = [bb.get_layer(f"conv5_block{u}_2_conv").dilation_rate[0] for u in (1, 2)]
    assert rates == [2, 4]
    assert bb.get_layer("conv5_block1_1_conv").strides == (1, 1)
    assert backbones.feature_strides(bb)["P5"] == 16


def test_deeplabv3plus_separable_case():
    aspp = case("deeplabv3plus-separable").build().get_layer("aspp")
    assert aspp.separable and aspp.rates == (6, 12, 18)


def test_deeplabv3plus_default_is_separable_aligned_xception():
    model = DeepLabV3Plus(21, backbone_options={**TINY, "middle_repeats": 1})
    bb = model.get_layer("xception")
    assert backbones.feature_strides(bb)["P5"] == 16
    aspp = model.get_layer("aspp")
    assert aspp.separable and aspp.rates == (6, 12, 18) and aspp.filters == 256
    assert model.get_layer("decoder_low_level_conv").filters == 48
    assert model.get_layer("decoder_conv2_pointwise").filters == 256
    cin = channels_of(model, "xception", "P5")
    low = channels_of(model, "xception", "P2")
    assert trainable_params(model) == backbone_params(model, "xception") + v3plus_head_params(
        cin, low, 256, 48, 256, 21, separable=True)


def test_deeplabv3plus_mobilenetv2_option():
    for backbone in ("mobilenetv2",):  # ResNet: same wiring (its P2), see v3 / PSPNet tests
        model = DeepLabV3Plus(2, backbone=backbone, backbone_options=TINY, filters=8,
                              low_level_filters=8, decoder_filters=8)
        assert not model.get_layer("aspp").separable  # regular convs off Xception
        bb = model.get_layer(backbone)
        strides = backbones.feature_strides(bb)
        assert strides["P2"] == 4 and strides["P5"] == 16
        cin, low = bb.output["P5"].shape[-1], bb.output["P2"].shape[-1]
        assert trainable_params(model) == trainable_params(bb) + v3plus_head_params(
            cin, low, 8, 8, 8, 2, separable=False)
        assert tuple(model.output.shape) == (None, None, None, 2)


def test_output_stride_32_halves_the_rates():
    # 32: for a passed-in model that cannot be dilated (a named backbone is not dilated)
    model = DeepLabV3(3, backbone="resnet18", backbone_options=TINY, output_stride=32)
    assert model.get_layer("aspp").rates == (3, 6, 9)
    assert backbones.feature_strides(model.get_layer("resnet18"))["P5"] == 32


def test_bad_arguments():
    with pytest.raises(ValueError, match="output_stride"):
        DeepLabV3(3, output_stride=4)
    with pytest.raises(ValueError, match="aspp"):
        DeepLabV2(3, aspp="M")
    with pytest.raises(ValueError, match="conflicts"):
        DeepLabV3(3, backbone="resnet18", backbone_options={"output_stride": 8})
    with pytest.raises(ValueError, match="num_classes"):
        DeepLabV1(0)
    with pytest.raises(ValueError, match="input_shape"):
        DeepLabV3Plus(3, input_shape=(64, 64))
    bb = backbones.get("resnet18", width_multiplier=0.125)
    with pytest.raises(ValueError, match="backbone_options"):
        DeepLabV3(3, backbone=bb, backbone_options=TINY)


def test_fixed_input_size_that_is_not_a_multiple_of_the_stride():
    # the backbone sees the padded image: a static 53x45 input must still build and run
    model = DeepLabV3(3, input_shape=(53, 45, 1), backbone="resnet18", backbone_options=TINY)
    assert tuple(model.output.shape) == (None, 53, 45, 3)
    assert model.get_layer("resnet18").input.shape[1:] == (None, None, 1)


def test_deeplabv1_msc_parameters_and_strides(monkeypatch):
    zero_init(monkeypatch)  # counts do not depend on the initial values
    model = DeepLabV1(21, multi_scale=True)
    # image 3, pool1 64, pool2 128, pool3 256, pool4 512 channels; 128-wide MLPs:
    # (3,584 + 16,512) + (73,856 + 16,512) + (147,584 + 16,512) + (295,040 + 16,512)
    # + (589,952 + 16,512) = 1,192,576, and fc8 grows by 640 x 21 = 13,440
    assert msc_params((3, 64, 128, 256, 512), 128, 21) == 1_206_016
    assert trainable_params(model) == 20_505_429 + 1_206_016
    strides = [model.get_layer(f"msc_{k}_conv1").strides[0]
               for k in ("image", "p1", "p2", "p3", "p4")]
    assert strides == [8, 4, 2, 1, 1]  # every branch lands on fc7's stride-8 grid
    assert model.get_layer("fc8").input.shape[-1] == 1024 + 5 * 128
    assert model.get_layer("vgg16").get_layer("fc6").dilation_rate == (12, 12)  # LargeFOV
    assert model.get_layer("msc_p4_drop2").rate == 0.5


def test_deeplabv1_msc_filters_must_be_positive():
    with pytest.raises(ValueError, match="multi_scale_filters"):
        DeepLabV1(3, backbone_options=TINY, multi_scale=True, multi_scale_filters=0)

"""segmentation_models.pytorch's DeepLabV3, DeepLabV3Plus and PSPNet converted with
keras_seg.convert: parity with the PyTorch originals (random weights and BatchNorm
statistics, two non-square sizes that SMP accepts), and the DeepLabV3Plus / PSPNet /
ASPP / PyramidPooling options they need (paper defaults unchanged, errors, configs)."""

import hashlib
import json

import keras
import numpy as np
import pytest
from support.torch_parity import check_conversion, matrix_backend_only

from keras_seg import convert
from keras_seg.applications import DeepLabV3Plus, PSPNet
from keras_seg.convert._engine import all_layers
from keras_seg.convert._smp_pyramid import infer_smp
from keras_seg.layers import ASPP, PyramidPooling

# SMP refuses sides that are not multiples of its encoder's output stride: 8 for
# DeepLabV3 (output stride 8) and PSPNet (encoder_depth=3), 16 for DeepLabV3Plus.
# (40, 56) puts a 5 x 7 map in PSPNet's pyramid: bins 3 and 6 that do not divide it.
SIZES = {"DeepLabV3": ((64, 40), (48, 72)), "DeepLabV3Plus": ((64, 48), (48, 80)),
         "PSPNet": ((40, 56), (64, 48))}
ENCODERS = ("resnet18", "resnet34", "resnet50", "resnet101")


def _network(model):
    """The converted network inside from_torch's input-normalization wrapper."""
    return model.get_layer(model.name)


def _names(model):
    return {layer.name for layer in all_layers(model)}


def test_the_twelve_entries_are_registered():
    for model_name, multiple in (("DeepLabV3", 8), ("DeepLabV3Plus", 16), ("PSPNet", 8)):
        for encoder in ENCODERS:
            arch = convert.get(f"smp/{model_name}-{encoder}")
            assert arch.source == "smp" and arch.input_multiple == multiple
            assert arch.keras_builder.startswith(f"{model_name}(backbone={encoder!r}")
            assert arch.notes


def test_deeplabv3_resnet18_matches_smp(tmp_path):
    model, _ = check_conversion("smp/DeepLabV3-resnet18", tmp_path, SIZES["DeepLabV3"],
                                num_classes=3)
    net = _network(model)
    assert net.output_stride == 8
    assert tuple(net.get_layer("classifier").kernel.shape) == (1, 1, 256, 3)


def test_deeplabv3plus_resnet18_matches_smp(tmp_path):
    model, _ = check_conversion("smp/DeepLabV3Plus-resnet18", tmp_path,
                                SIZES["DeepLabV3Plus"], suffix=".safetensors", num_classes=2)
    names = _names(_network(model))
    assert {"aspp_rate12_sepconv", "post_aspp_sepconv", "decoder_conv1_sepconv"} <= names
    assert "decoder_conv2_bn" not in names and "aspp_rate12_depthwise_bn" not in names


def test_pspnet_resnet18_matches_smp_and_roundtrips(tmp_path):
    model, _ = check_conversion("smp/PSPNet-resnet18", tmp_path, SIZES["PSPNet"],
                                roundtrip=True, num_classes=4)
    net = _network(model)
    names = _names(net)
    # encoder_depth=3: the encoder stops after conv3 (layer2); no BN on the 1x1 bin
    assert not any(n.startswith(("conv4_", "conv5_")) for n in names)
    assert "ppm_bin1_bn" not in names and "ppm_bin2_bn" in names
    assert net.output_stride == 8
    assert tuple(net.get_layer("head_conv").kernel.shape) == (1, 1, 256, 512)
    assert tuple(net.get_layer("classifier").kernel.shape) == (3, 3, 512, 4)


@matrix_backend_only
@pytest.mark.parametrize("arch", [f"smp/{m}-{e}" for m in ("DeepLabV3", "DeepLabV3Plus", "PSPNet")
                                  for e in ENCODERS[1:]])
def test_smp_pyramid_matrix_matches_smp(tmp_path, arch):
    check_conversion(arch, tmp_path, SIZES[arch[4:].split("-")[0]], suffix=".safetensors",
                     num_classes=5)


def test_classification_head_is_refused():
    state = {"segmentation_head.0.weight": np.zeros((3, 256, 1, 1), "float32"),
             "classification_head.3.weight": np.zeros((2, 512), "float32")}
    with pytest.raises(ValueError, match="classification head.*not convert"):
        infer_smp(state)
    with pytest.raises(ValueError, match="segmentation_head.0.weight"):
        infer_smp({"decoder.conv.weight": np.zeros((1,), "float32")})
    assert infer_smp({"segmentation_head.0.weight": np.zeros((7, 512, 3, 3))}) == {
        "num_classes": 7}


def test_pspnet_checkpoint_layer3_layer4_are_left_out_on_purpose():
    arch = convert.get("smp/PSPNet-resnet50")
    assert arch.ignored == ("encoder.layer3.", "encoder.layer4.")
    assert "layer3" in arch.notes


# === paper defaults unchanged ===

def _fingerprint(model):
    # AtrousConv2D / AtrousDepthwiseConv2D / AtrousSeparableConv2D compute what the Keras
    # layers compute on a faster path (issue 15): the fingerprint counts them as those
    rows = [(layer.name, type(layer).__name__.removeprefix("Atrous"),
             [list(w.shape) for w in layer.weights]) for layer in all_layers(model)]
    return hashlib.sha256(json.dumps(rows).encode()).hexdigest()[:16]


_SMALL = {"backbone": "resnet18", "backbone_options": {"width_multiplier": 0.25},
          "num_classes": 3}
# recorded from the builders before the SMP options were added: layer names / types /
# weight shapes, parameter count, sum |output| per backend of a seeded build (seed 0)
_DEFAULTS = {
    "v3plus_separable": (lambda: DeepLabV3Plus(separable=True, **_SMALL), "6ecb83c50e27d274",
                         1_361_571, {"tensorflow": [2.565737724304199],
                                     "jax": [4.4173431396484375],
                                     "torch": [6.066945552825928]}),
    "v3plus": (lambda: DeepLabV3Plus(**_SMALL), "1428702c74887def", 3_282_611,
               {"tensorflow": [1637.1199951171875], "jax": [2235.264892578125],
                "torch": [1680.3861083984375]}),
    "pspnet_aux": (lambda: PSPNet(aux=True, **_SMALL), "feb2885373361bf7", 2_053_878,
                   {"tensorflow": [2298.916259765625, 975.3475341796875],
                    "jax": [4411.146484375, 1608.1162109375],
                    "torch": [8375.068359375, 2095.62109375]}),
}


@pytest.mark.parametrize("key", sorted(_DEFAULTS))
def test_paper_defaults_are_unchanged(key):
    build, fingerprint, params, sums = _DEFAULTS[key]
    keras.utils.set_random_seed(0)
    model = build()
    assert _fingerprint(model) == fingerprint
    assert model.count_params() == params
    image = np.random.default_rng(0).random((1, 64, 48, 3), dtype=np.float32)
    got = [float(np.abs(keras.ops.convert_to_numpy(y)).sum())
           for y in keras.tree.flatten(model(image, training=False))]
    np.testing.assert_allclose(got, sums[keras.backend.backend()], rtol=1e-4)


def test_paper_pyramid_pooling_defaults():
    config = PyramidPooling().get_config()
    assert (config["align_corners"], config["single_bin_batchnorm"],
            config["bn_epsilon"]) == (False, True, 1e-3)
    config = ASPP().get_config()
    assert config["separable_bn_between"] is True


# === the new options ===

def test_deeplabv3plus_light_separable_decoder():
    """separable ASPP without BN inside the separable convs and one decoder conv (the
    speed configuration): fewer weights, the same output shape."""
    options = dict(_SMALL, separable=True)
    full = DeepLabV3Plus(**options)
    light = DeepLabV3Plus(separable_bn_between=False, decoder_convs=1, **options)
    names = _names(light)
    assert "decoder_conv2_bn" not in names and "decoder_conv1_sepconv" in names
    assert "aspp_rate6_sepconv" in names and "aspp_rate6_depthwise" not in names
    assert light.count_params() < full.count_params()
    image = np.zeros((1, 48, 32, 3), "float32")
    assert tuple(light(image).shape) == (1, 48, 32, 3)
    three = DeepLabV3Plus(decoder_convs=3, post_aspp_conv=True, **_SMALL)
    assert {"decoder_conv3_conv", "post_aspp_conv"} <= _names(three)


def test_deeplabv3plus_option_errors():
    with pytest.raises(ValueError, match="decoder_convs"):
        DeepLabV3Plus(decoder_convs=0, **_SMALL)
    with pytest.raises(ValueError, match="dropout"):
        DeepLabV3Plus(aspp_dropout=1.5, **_SMALL)
    with pytest.raises(ValueError, match="bn_epsilon"):
        DeepLabV3Plus(bn_epsilon=0, **_SMALL)


def test_pspnet_option_errors():
    with pytest.raises(ValueError, match="encoder_depth"):
        PSPNet(encoder_depth=2, **_SMALL)
    with pytest.raises(ValueError, match="fusion_kernel"):
        PSPNet(fusion_kernel=2, **_SMALL)
    with pytest.raises(ValueError, match="head_kernel"):
        PSPNet(head_kernel=0, **_SMALL)
    with pytest.raises(ValueError, match="encoder_depth=5"):
        PSPNet(aux=True, encoder_depth=3, **_SMALL)
    with pytest.raises(ValueError, match="bn_epsilon"):
        PSPNet(bn_epsilon=-1.0, **_SMALL)


def test_pspnet_encoder_depth_4_reads_p4():
    model = PSPNet(encoder_depth=4, output_stride=16, **_SMALL)
    names = _names(model)
    assert any(n.startswith("conv4_") for n in names)
    assert not any(n.startswith("conv5_") for n in names)
    assert model.output_stride == 16
    assert tuple(model(np.zeros((1, 40, 24, 3), "float32")).shape) == (1, 40, 24, 3)


def test_pyramid_pooling_new_options_serialize_and_errors(tmp_path):
    layer = PyramidPooling(bins=(1, 3), align_corners=True, single_bin_batchnorm=False,
                           bn_epsilon=1e-5, name="ppm")
    inputs = keras.Input((None, None, 8))
    model = keras.Model(inputs, layer(inputs))
    assert {w.path.split("/")[-2] for w in layer.weights} >= {"ppm_bin1_conv", "ppm_bin3_bn"}
    assert "ppm_bin1_bn" not in {sub.name for sub in layer.norms}
    assert len(layer.convs[0].weights) == 2 and len(layer.convs[1].weights) == 1  # bias
    config = layer.get_config()
    assert (config["align_corners"], config["single_bin_batchnorm"],
            config["bn_epsilon"]) == (True, False, 1e-5)
    assert PyramidPooling.from_config(config).get_config() == config
    x = np.random.default_rng(0).random((2, 8, 12, 8), dtype=np.float32)
    path = tmp_path / "ppm.keras"
    model.save(path)
    loaded = keras.saving.load_model(path)
    np.testing.assert_allclose(keras.ops.convert_to_numpy(loaded(x)),
                               keras.ops.convert_to_numpy(model(x)), atol=1e-6)
    for bad in ({"align_corners": "yes"}, {"single_bin_batchnorm": 1}, {"bn_epsilon": 0}):
        with pytest.raises(ValueError, match=next(iter(bad))):
            PyramidPooling(**bad)


def test_aspp_separable_without_bn_between_serializes():
    aspp = ASPP(16, rates=(2, 4), separable=True, separable_bn_between=False, name="aspp")
    inputs = keras.Input((None, None, 8))
    model = keras.Model(inputs, aspp(inputs))
    kinds = {type(layer).__name__.removeprefix("Atrous") for layer in all_layers(model)}
    assert "SeparableConv2D" in kinds and "DepthwiseConv2D" not in kinds
    restored = ASPP.from_config(aspp.get_config())
    assert restored.separable_bn_between is False


def test_adaptive_pooling_bins_match_pytorch_on_uneven_sizes():
    """8 x 12 and 5 x 7 maps with 3 and 6 bins: PyTorch's floor / ceil bin edges."""
    torch = convert._torch.import_torch()
    from keras_seg.layers.pyramid import adaptive_average_pool

    for h, w in ((8, 12), (5, 7)):
        x = np.random.default_rng(h).random((1, h, w, 4), dtype=np.float32)
        for bins in (3, 6):
            ref = torch.nn.functional.adaptive_avg_pool2d(
                torch.from_numpy(x).permute(0, 3, 1, 2), bins).permute(0, 2, 3, 1).numpy()
            ours = keras.ops.convert_to_numpy(adaptive_average_pool(x, (bins, bins)))
            np.testing.assert_allclose(ours, ref, atol=1e-6)

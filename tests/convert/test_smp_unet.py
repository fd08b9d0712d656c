"""segmentation_models.pytorch's Unet and Linknet converted with keras_seg.convert: parity
with the PyTorch originals (random weights and BatchNorm statistics, two non-square sizes
that are multiples of 32), and the UNet / LinkNet options they need (paper defaults
unchanged, errors)."""

import keras
import numpy as np
import pytest
from support.torch_parity import (
    check_conversion,
    matrix_backend_only,
    save_state,
    torch_original,
)

from keras_seg import convert
from keras_seg.applications import LinkNet, UNet

SIZES = ((64, 96), (96, 64))


def _network(model):
    """The converted network inside from_torch's input-normalization wrapper."""
    return model.get_layer(model.name)


def test_unet_resnet18_matches_smp(tmp_path):
    model, _ = check_conversion("smp/Unet-resnet18", tmp_path, SIZES, roundtrip=True,
                                num_classes=3)
    assert tuple(_network(model).get_layer("logits").kernel.shape) == (3, 3, 16, 3)


def test_linknet_resnet18_matches_smp(tmp_path):
    model, _ = check_conversion("smp/Linknet-resnet18", tmp_path, SIZES, suffix=".safetensors",
                                num_classes=2)
    up = _network(model).get_layer("decoder0_up_conv")
    assert tuple(up.kernel.shape) == (4, 4, 16, 16)


@matrix_backend_only
@pytest.mark.parametrize("arch", [f"smp/{m}-{e}" for m in ("Unet", "Linknet")
                                  for e in ("resnet34", "resnet50", "resnet101")])
def test_smp_matrix_matches_smp(tmp_path, arch):
    check_conversion(arch, tmp_path, SIZES, suffix=".safetensors", num_classes=4)


def test_conv_transpose_k4_s2_same_is_torch_padding_1():
    """SMP's ConvTranspose2d(k=4, s=2, p=1) is Keras' Conv2DTranspose(4, 2, "same")."""
    torch = convert._torch.import_torch()
    torch.manual_seed(0)
    theirs = torch.nn.ConvTranspose2d(3, 5, 4, stride=2, padding=1)
    ours = keras.layers.Conv2DTranspose(5, 4, strides=2, padding="same")
    ours.build((None, None, None, 3))
    ours.set_weights([theirs.weight.detach().numpy().transpose(2, 3, 1, 0),
                      theirs.bias.detach().numpy()])
    x = np.random.default_rng(0).random((1, 5, 7, 3), dtype=np.float32)
    with torch.no_grad():
        ref = theirs(torch.from_numpy(x).permute(0, 3, 1, 2)).permute(0, 2, 3, 1).numpy()
    np.testing.assert_allclose(keras.ops.convert_to_numpy(ours(x)), ref, atol=1e-5)


def test_classification_head_is_refused(tmp_path):
    state = {"segmentation_head.0.weight": np.zeros((3, 16, 3, 3), "float32"),
             "classification_head.3.weight": np.zeros((2, 512), "float32")}
    with pytest.raises(ValueError, match="classification head"):
        convert.from_torch("smp/Unet-resnet18", state)
    with pytest.raises(ValueError, match="segmentation_head.0.weight"):
        convert.from_torch("smp/Linknet-resnet18", {"decoder.x": np.zeros(2, "float32")})


def test_a_checkpoint_of_another_encoder_is_refused(tmp_path):
    module = torch_original("smp/Linknet-resnet18", num_classes=2)
    path = save_state(module, tmp_path / "r18.pth")
    with pytest.raises(ValueError, match="nothing was loaded"):
        convert.from_torch("smp/Linknet-resnet34", path)


# --- the paper defaults are unchanged --------------------------------------------------

def _output(build, size, channels=3):
    keras.utils.set_random_seed(0)
    model = build()
    x = np.random.default_rng(0).random((1, *size, channels), dtype=np.float32)
    return model, keras.ops.convert_to_numpy(model(x))


@pytest.mark.parametrize("default,explicit,size,params", [
    (lambda: UNet(3, filters=8),
     lambda: UNet(3, filters=8, interpolation_conv=True, head_kernel=1, bn_epsilon=1e-3),
     (64, 48), 485_835),
    (lambda: UNet(3, filters=8, batch_norm=True, upsampling="bilinear"),
     lambda: UNet(3, filters=8, batch_norm=True, upsampling="bilinear", bn_epsilon=1e-3,
                  interpolation_conv=True, head_kernel=1),
     (64, 48), 455_403),
    (lambda: UNet(3, backbone="resnet18", upsampling="nearest"),
     lambda: UNet(3, backbone="resnet18", upsampling="nearest", interpolation_conv=True,
                  head_kernel=1, bn_epsilon=1e-3),
     (64, 96), 13_729_123),
    (lambda: LinkNet(3),
     lambda: LinkNet(3, decoder_kernel=3, decoder_bias=False, bn_epsilon=1e-3,
                     final_block="full_conv"),
     (64, 96), 11_545_283),
])
def test_defaults_are_the_paper_configuration(default, explicit, size, params):
    """Parameter counts recorded before the converter options were added; a default
    build computes what a build with the paper values spelled out computes."""
    a, ya = _output(default, size)
    b, yb = _output(explicit, size)
    assert a.count_params() == b.count_params() == params
    assert [layer.name for layer in a.layers] == [layer.name for layer in b.layers]
    np.testing.assert_array_equal(ya, yb)


def test_full_size_paper_parameter_counts():
    assert UNet(2).count_params() == 31_031_810
    assert LinkNet(2).count_params() == 11_545_154
    assert UNet(3, backbone="resnet18").count_params() == 14_252_899


# --- the new options --------------------------------------------------------------------

def test_unet_options_shapes_and_widths():
    model = UNet(2, filters=4, upsampling="nearest", interpolation_conv=False, head_kernel=3,
                 batch_norm=True, bn_epsilon=1e-5)
    assert tuple(model(np.zeros((1, 37, 29, 3), "float32")).shape) == (1, 37, 29, 2)
    assert tuple(model.get_layer("logits").kernel.shape) == (3, 3, 4, 2)
    # no projection: the up path concatenates the skip (4) with the full bottom width (8)
    assert tuple(model.get_layer("up1_1_conv").kernel.shape) == (3, 3, 4 + 8, 4)
    assert model.get_layer("up1_1_bn").epsilon == 1e-5
    names = {layer.name for layer in model.layers}
    assert not any(n.endswith("_proj") for n in names)


def test_linknet_options_shapes_and_layout():
    tiny = {"width_multiplier": 0.125}
    model = LinkNet(2, backbone="resnet18", backbone_options=tiny, decoder_kernel=4,
                    decoder_bias=True, bn_epsilon=1e-5, final_block="decoder_block")
    assert tuple(model(np.zeros((1, 37, 29, 3), "float32")).shape) == (1, 37, 29, 2)
    assert tuple(model.get_layer("decoder1_up_conv").bias.shape) == (2,)
    assert model.get_layer("decoder0_expand_bn").epsilon == 1e-5
    assert tuple(model.get_layer("logits_conv").kernel.shape) == (1, 1, 4, 2)
    # the LinkNetDecoderBlock layer with the paper's bias / epsilon, and interpolation
    for upsampling in ("transpose", "bilinear"):
        layered = LinkNet(2, backbone_options=tiny, final_block="decoder_block",
                          upsampling=upsampling)
        assert layered.get_layer("decoder0").strides == 2
        assert tuple(layered(np.zeros((1, 33, 40, 3), "float32")).shape) == (1, 33, 40, 2)
    # plain blocks compute the same block as the layer: same parameter count
    assert LinkNet(2, bn_epsilon=1e-5).count_params() == LinkNet(2).count_params()


def test_option_errors():
    with pytest.raises(ValueError, match="interpolation_conv=False.*'transpose'"):
        UNet(2, interpolation_conv=False)
    with pytest.raises(ValueError, match="interpolation_conv=False.*'unpool'"):
        UNet(2, upsampling="unpool", interpolation_conv=False)
    with pytest.raises(ValueError, match="interpolation_conv must be"):
        UNet(2, upsampling="nearest", interpolation_conv="no")
    for bad in (0, 2, True, 3.0):
        with pytest.raises(ValueError, match="head_kernel must be a positive odd int"):
            UNet(2, head_kernel=bad)
    with pytest.raises(ValueError, match="head_kernel=3 needs padding='same'"):
        UNet(2, (188, 188, 1), padding="valid", head_kernel=3)
    for bad in (0, -1e-5, "1e-5", True):
        with pytest.raises(ValueError, match="bn_epsilon must be a positive number"):
            UNet(2, bn_epsilon=bad)
        with pytest.raises(ValueError, match="bn_epsilon must be a positive number"):
            LinkNet(2, bn_epsilon=bad)
    for bad in (0, True, 4.0):
        with pytest.raises(ValueError, match="decoder_kernel must be a positive int"):
            LinkNet(2, decoder_kernel=bad)
    with pytest.raises(ValueError, match="decoder_bias must be True or False"):
        LinkNet(2, decoder_bias=1)
    with pytest.raises(ValueError, match="final_block must be one of"):
        LinkNet(2, final_block="smp")
    image = keras.Input((None, None, 3))
    s4 = keras.layers.Conv2D(4, 4, strides=4)(image)
    s8 = keras.layers.Conv2D(4, 2, strides=2)(s4)
    no_p1 = keras.Model(image, {"P2": s4, "P3": s8, "P4": s8, "P5": s8})
    with pytest.raises(ValueError, match="no 'P1'"):
        LinkNet(2, backbone=no_p1, final_block="decoder_block")
    s1 = keras.layers.Conv2D(4, 1)(image)
    p1_at_1 = keras.Model(image, {"P1": s1, "P2": s4, "P3": s8, "P4": s8, "P5": s8})
    with pytest.raises(ValueError, match="P1, which must be at stride 2"):
        LinkNet(2, backbone=p1_at_1, final_block="decoder_block")

import keras
import numpy as np
import pytest
from support.harness import trainable_params
from support.paper_size import zero_init
from support.param_counts import RESNET18_TINY_WIDTHS, linknet_params
from support.tiny_models import case

from keras_seg.applications import LinkNet
from keras_seg.flops import count_flops
from keras_seg.layers import LinkNetDecoderBlock


def test_paper_parameter_count_and_flops(monkeypatch):
    zero_init(monkeypatch)
    model = LinkNet(12)
    n = trainable_params(model)
    assert n == linknet_params(12) == 11_534_732
    assert abs(n - 11.5e6) / 11.5e6 < 0.02  # "11.5M parameters" (paper)
    gflops = count_flops(model, (360, 640, 3)) / 1e9
    assert abs(gflops - 21.2) / 21.2 < 0.05  # "21.2 GFLOPs at 3x640x360" (paper)
    assert model.get_layer("decoder1").strides == 1
    assert model.get_layer("decoder4").strides == 2


def test_tiny_case_has_four_links():
    # the harness trains this case (ResNet-18 at 1/8 width) and checks its count,
    # linknet_params(3, RESNET18_TINY_WIDTHS)
    model = case("linknet").build()
    links = [layer for layer in model.layers if layer.name.endswith("_link")]
    assert len(links) == 4


def test_decoder_block_shapes_and_config():
    block = LinkNetDecoderBlock(6, strides=2)
    out = block(np.zeros((1, 5, 3, 16), "float32"))
    assert tuple(out.shape) == (1, 10, 6, 6)
    assert len(block.trainable_weights) == 9  # 3 kernels, 3 x (gamma, beta)
    clone = LinkNetDecoderBlock.from_config(block.get_config())
    assert clone.filters == 6 and clone.strides == 2
    with pytest.raises(ValueError, match="strides"):
        LinkNetDecoderBlock(4, strides=4)


def test_other_backbone_and_bad_arguments():
    model = LinkNet(2, backbone="resnet34", backbone_options={"width_multiplier": 0.125})
    assert tuple(model(np.zeros((1, 37, 29, 3), "float32")).shape) == (1, 37, 29, 2)
    image = keras.Input((None, None, 3))
    stride8 = keras.layers.Conv2D(4, 8, strides=8)(image)
    no_p2 = keras.Model(image, {"P3": stride8, "P4": stride8, "P5": stride8})
    with pytest.raises(ValueError, match="P2"):
        LinkNet(2, backbone=no_p2)
    with pytest.raises(ValueError, match="num_classes"):
        LinkNet(0)


@pytest.mark.parametrize("upsampling", ["bilinear", "nearest"])
def test_interpolation_variants_shape_params_and_round_trip(tmp_path, upsampling):
    widths = RESNET18_TINY_WIDTHS
    model = LinkNet(3, backbone_options={"width_multiplier": 0.125}, upsampling=upsampling)
    # decoder blocks and the final 3x3 step keep their weights (interpolation + conv of the
    # same kernel); the last 2x2 transposed conv to the classes (4 * 4 * 3 weights) becomes a
    # 1x1 conv (4 * 3 weights): 3 * 4 * 3 fewer
    assert trainable_params(model) == linknet_params(3, widths) - 3 * 4 * 3
    assert not any(isinstance(layer, keras.layers.Conv2DTranspose) for layer in model.layers)
    assert model.get_layer("decoder2").upsampling == upsampling
    x = np.random.default_rng(0).uniform(size=(1, 45, 38, 3)).astype("float32")
    before = keras.ops.convert_to_numpy(model(x, training=False))
    assert before.shape == (1, 45, 38, 3)
    if upsampling == "bilinear":  # one round trip: both share the code, and saving is slow
        path = str(tmp_path / "linknet.keras")
        model.save(path)
        after = keras.ops.convert_to_numpy(keras.saving.load_model(path)(x, training=False))
        np.testing.assert_allclose(after, before, rtol=1e-5, atol=1e-5)


def test_decoder_block_nearest_is_resize_then_conv():
    """The interpolation block equals: 1x1 conv, BN, ReLU, nearest x2, 3x3 conv, BN, ReLU,
    1x1 conv, BN, ReLU (inference BN with fresh statistics is the identity)."""
    block = LinkNetDecoderBlock(5, strides=2, upsampling="nearest")
    x = np.random.default_rng(2).normal(size=(1, 4, 3, 8)).astype("float32")
    out = keras.ops.convert_to_numpy(block(x, training=False))
    assert out.shape == (1, 8, 6, 5)
    assert len(block.trainable_weights) == 9
    eps = block.reduce_bn.epsilon  # fresh BN: (x - 0) / sqrt(1 + eps)
    reduce_w = keras.ops.convert_to_numpy(block.reduce.kernel)
    up_w = keras.ops.convert_to_numpy(block.up.kernel)
    expand_w = keras.ops.convert_to_numpy(block.expand.kernel)
    y = np.maximum(np.einsum("bhwc,cd->bhwd", x, reduce_w[0, 0]) / np.sqrt(1 + eps), 0)
    y = y.repeat(2, axis=1).repeat(2, axis=2)
    padded = np.pad(y, ((0, 0), (1, 1), (1, 1), (0, 0)))
    conv = sum(np.einsum("bhwc,cd->bhwd", padded[:, i:i + 8, j:j + 6], up_w[i, j])
               for i in range(3) for j in range(3))
    y = np.maximum(conv / np.sqrt(1 + eps), 0)
    ref = np.maximum(np.einsum("bhwc,cd->bhwd", y, expand_w[0, 0]) / np.sqrt(1 + eps), 0)
    np.testing.assert_allclose(out, ref, rtol=1e-4, atol=1e-5)
    clone = LinkNetDecoderBlock.from_config(block.get_config())
    assert clone.upsampling == "nearest"
    with pytest.raises(ValueError, match="upsampling"):
        LinkNetDecoderBlock(4, upsampling="unpool")


def test_unpool_is_refused_with_the_reason():
    with pytest.raises(ValueError, match="strided convolutions"):
        LinkNet(2, upsampling="unpool")

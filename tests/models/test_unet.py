import keras
import numpy as np
import pytest
from support.harness import trainable_params
from support.param_counts import unet_reference_params
from support.tiny_models import case

from keras_seg.applications import UNet, unet_valid_output_side, unet_valid_sizes
from keras_seg.layers import MaxPoolingWithArgmax2D


def test_paper_configuration():
    model = UNet(num_classes=2, input_shape=(572, 572, 1), padding="valid")
    assert tuple(model.output.shape) == (None, 388, 388, 2)
    convs = [
        layer for layer in model.layers
        if isinstance(layer, (keras.layers.Conv2D, keras.layers.Conv2DTranspose))
    ]
    assert len(convs) == 23  # "In total the network has 23 convolutional layers."
    assert trainable_params(model) == unet_reference_params(1, 2, 64, 4) == 31_030_658
    widths = [layer.filters for layer in convs[:10:2]]
    assert widths == [64, 128, 256, 512, 1024]
    assert any(isinstance(layer, keras.layers.Dropout) for layer in model.layers)


def test_valid_sizes_table():
    assert unet_valid_output_side(572) == 388
    assert unet_valid_output_side(573) is None
    sides = [s for s, _ in unet_valid_sizes(4, 500, 600)]
    assert 572 in sides and all((s - 124) % 16 == 0 for s in sides)


def test_valid_mode_rejects_untileable_size_with_suggestions():
    with pytest.raises(ValueError, match="572"):
        UNet(2, (570, 572, 1), padding="valid")


# The harness runs the tiny U-Nets of support/tiny_models.py (same padding with transposed
# convolutions and bilinear up-sampling, valid padding, a VGG-16 backbone, deep
# supervision); their exact parameter counts are there. Here: what is U-Net's own.

def test_valid_padding_case_sizes():
    # 92 -> 4 poolings-free check at depth 2: 92-4=88 /2=44 -4=40 /2=20 -4=16 -> 28 -> 52
    assert unet_valid_output_side(92, depth=2) == 52
    valid = case("unet-valid")
    assert valid.input_size == (92, 92) and valid.output_size == (52, 52)
    model = valid.build()
    assert tuple(model.output.shape) == (None, None, None, 2)
    assert any(isinstance(layer, keras.layers.BatchNormalization) for layer in model.layers)


def test_backbone_case_wraps_the_vgg16_encoder():
    model = case("unet-vgg16").build()
    assert any(layer.name == "vgg16" for layer in model.layers)


def test_resnet34_unet_with_a_static_odd_input_size():
    model = UNet(3, input_shape=(97, 75, 3), backbone="resnet34",
                 backbone_options={"width_multiplier": 0.125})
    out = model.predict(np.zeros((1, 97, 75, 3), "float32"), verbose=0)
    assert out.shape == (1, 97, 75, 3)


def test_backbone_with_output_stride_8_uses_distinct_strides(tmp_path):
    model = UNet(2, backbone="resnet18",
                 backbone_options={"width_multiplier": 0.125, "output_stride": 8})
    x = np.zeros((1, 45, 37, 3), "float32")
    assert tuple(model(x).shape) == (1, 45, 37, 2)
    ups = [layer.name for layer in model.layers if layer.name.endswith("_upconv")]
    assert len(ups) == 3  # strides 8 -> 4 -> 2 -> 1


def test_bad_arguments():
    with pytest.raises(ValueError, match="padding"):
        UNet(2, padding="full")
    with pytest.raises(ValueError, match="upsampling"):
        UNet(2, upsampling="pixelshuffle")
    with pytest.raises(ValueError, match="input_shape"):
        UNet(2, input_shape=(64, 64))
    with pytest.raises(ValueError, match="num_classes"):
        UNet(0)
    with pytest.raises(ValueError, match="Unknown backbone"):
        UNet(2, backbone="resnet999")


def test_wrong_channel_count_at_call_is_a_clear_error():
    model = UNet(2, input_shape=(None, None, 3), filters=8, depth=2)
    with pytest.raises(ValueError, match="shape|channel"):
        model(np.zeros((1, 32, 32, 1), "float32"))


def keras_round_trip(model, x, tmp_path):
    """Save as .keras, load with no custom_objects, return (before, after) outputs."""
    path = str(tmp_path / f"{model.name}.keras")
    model.save(path)
    reloaded = keras.saving.load_model(path)
    before = keras.ops.convert_to_numpy(model(x, training=False))
    after = keras.ops.convert_to_numpy(reloaded(x, training=False))
    return before, after


@pytest.mark.parametrize("upsampling", ["nearest", "unpool"])
def test_upsampling_variants_shape_params_and_round_trip(tmp_path, upsampling):
    model = UNet(3, filters=4, depth=2, upsampling=upsampling)
    x = np.random.default_rng(0).uniform(size=(1, 37, 29, 3)).astype("float32")
    # the 1x1 variants: c * c/2 + c/2 per step instead of 2 * 2 * c * c/2 + c/2
    assert trainable_params(model) == unet_reference_params(3, 3, 4, 2, upsampling)
    assert (unet_reference_params(3, 3, 4, 2) - trainable_params(model)
            == 3 * (8 * 4 + 16 * 8))
    before, after = keras_round_trip(model, x, tmp_path)
    assert before.shape == (1, 37, 29, 3)
    np.testing.assert_allclose(after, before, rtol=1e-5, atol=1e-5)
    has_argmax_pooling = any(isinstance(layer, MaxPoolingWithArgmax2D) for layer in model.layers)
    assert has_argmax_pooling == (upsampling == "unpool")


def test_unpool_puts_values_at_the_skip_maxima():
    """Each 2x2 window of the unpooled map holds at most one non-zero per channel, at the
    position of the window maximum of the pre-pooling tensor (the skip) it came from."""
    model = UNet(2, filters=4, depth=2, upsampling="unpool")
    probe = keras.Model(model.input, [model.get_layer("down1_2_relu").output,
                                      model.get_layer("up1_unpool").output])
    x = np.random.default_rng(1).uniform(size=(1, 16, 12, 3)).astype("float32")
    skip, unpooled = (keras.ops.convert_to_numpy(t) for t in probe(x))
    assert unpooled.shape == skip.shape == (1, 16, 12, 4)

    def windows(a):  # (1, 16, 12, C) -> (8, 6, C, 4)
        return a[0].reshape(8, 2, 6, 2, 4).transpose(0, 2, 4, 1, 3).reshape(8, 6, 4, 4)

    w_skip, w_up = windows(skip), windows(unpooled)
    nonzero = w_up != 0
    assert nonzero.sum(-1).max() <= 1
    assert nonzero.any()
    at_max = w_skip == w_skip.max(-1, keepdims=True)
    assert np.all(at_max[nonzero])


def test_unpool_refuses_a_backbone_and_valid_padding():
    with pytest.raises(ValueError, match="indices.*backbone=None"):
        UNet(2, upsampling="unpool", backbone="vgg16")
    with pytest.raises(ValueError, match="padding='same'"):
        UNet(2, (92, 92, 1), depth=2, padding="valid", upsampling="unpool")
    with pytest.raises(ValueError, match="'bilinear', 'nearest', 'transpose', 'unpool'"):
        UNet(2, upsampling="deconv")

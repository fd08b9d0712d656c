import keras
import numpy as np
import pytest
from harness import check_model, trainable_params

from keras_seg.applications import UNet, unet_valid_output_side, unet_valid_sizes


def conv_params(k, cin, cout, bias=True):
    return k * k * cin * cout + (cout if bias else 0)


def unet_reference_params(in_ch, num_classes, filters, depth, upsampling="transpose"):
    """Trainable parameters of the paper's U-Net, counted from its layer list."""
    total, prev = 0, in_ch
    for level in range(depth + 1):
        width = filters * 2**level
        total += conv_params(3, prev, width) + conv_params(3, width, width)
        prev = width
    for level in reversed(range(depth)):
        width = filters * 2**level
        k = 2 if upsampling == "transpose" else 1
        total += conv_params(k, prev, width)  # up-conv halves the width
        total += conv_params(3, 2 * width, width) + conv_params(3, width, width)
        prev = width
    return total + conv_params(1, prev, num_classes)


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


@pytest.mark.parametrize("upsampling", ["transpose", "bilinear"])
def test_harness_same_padding(tmp_path, upsampling):
    check_model(
        lambda: UNet(3, filters=8, depth=3, upsampling=upsampling),
        num_classes=3,
        tmp_path=tmp_path,
        expected_trainable_params=unet_reference_params(3, 3, 8, 3, upsampling),
    )


def test_harness_valid_padding(tmp_path):
    # 92 -> 4 poolings-free check at depth 2: 92-4=88 /2=44 -4=40 /2=20 -4=16 -> 28 -> 52
    assert unet_valid_output_side(92, depth=2) == 52
    check_model(
        lambda: UNet(2, (None, None, 1), filters=8, depth=2, padding="valid", batch_norm=True),
        num_classes=2,
        tmp_path=tmp_path,
        input_size=(92, 92),
        channels=1,
        output_size=(52, 52),
    )


def test_harness_backbone(tmp_path):
    # VGG16 at 1/8 width: the shallowest native backbone keeps the compiled fit cheap
    model = check_model(
        lambda: UNet(4, backbone="vgg16", backbone_options={"width_multiplier": 0.125},
                     decoder_filters=(32, 16, 16, 8, 8)),
        num_classes=4,
        tmp_path=tmp_path,
        input_size=(65, 47),
    )
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

import keras
import pytest

from keras_seg.flops import count_flops, count_macs
from keras_seg.layers import ENetBottleneck


def tiny_model():
    inner_in = keras.Input((None, None, 4))
    y = keras.layers.DepthwiseConv2D(3, depth_multiplier=2, padding="same")(inner_in)
    y = keras.layers.SeparableConv2D(5, 3, padding="same")(y)
    inner = keras.Model(inner_in, y, name="inner")  # a nested sub-model, as backbones are

    inputs = keras.Input((None, None, 3))
    x = keras.layers.Conv2D(4, 3, strides=2, padding="same")(inputs)
    x = inner(x)
    x = keras.layers.Conv2DTranspose(2, 2, strides=2)(x)
    x = keras.layers.GlobalAveragePooling2D()(x)
    x = keras.layers.Dense(7)(x)
    return keras.Model(inputs, x)


def test_tiny_model_against_hand_count():
    model = tiny_model()
    # 8x6x3 input
    conv = (4 * 3) * 4 * (3 * 3 * 3)  # stride 2 -> 4x3 output, 4 filters, 3x3x3 kernel
    depthwise = (4 * 3) * 4 * 2 * 9  # 4 channels x multiplier 2, 3x3
    separable = (4 * 3) * (8 * 9 + 8 * 5)  # depthwise 3x3 on 8 + pointwise 8 -> 5
    transpose = (4 * 3) * 5 * (2 * 2) * 2  # every input pixel through the 2x2x2 kernel
    dense = 2 * 7
    expected = conv + depthwise + separable + transpose + dense
    assert expected == 3998
    total, table = count_macs(model, (8, 6, 3), per_layer=True)
    assert total == expected
    assert sorted(table.values()) == sorted([conv, depthwise, separable, transpose, dense])
    assert count_flops(model, (8, 6, 3)) == 2 * expected  # the papers' convention
    assert count_macs(model, (8, 6, 3), batch_size=3) == 3 * expected
    # nothing is left patched on the layers
    assert all("call" not in layer.__dict__ for layer in model.layers)


def test_layers_made_of_sub_layers_are_entered():
    inputs = keras.Input((None, None, 16))
    model = keras.Model(inputs, ENetBottleneck(16, "regular")(inputs))
    # 1x1 16->4, 3x3 4->4, 1x1 4->16 on 8x8
    assert count_macs(model, (8, 8, 16)) == 64 * (16 * 4 + 9 * 4 * 4 + 4 * 16)


def test_bad_input_shape():
    with pytest.raises(ValueError, match="input_shape"):
        count_flops(tiny_model(), (None, 8, 3))
    with pytest.raises(ValueError, match="input_shape"):
        count_flops(tiny_model(), (0, 8, 3))

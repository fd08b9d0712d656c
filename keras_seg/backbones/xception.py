"""Modified aligned Xception backbone of DeepLab v3+ (Chen et al. 2018,
"Encoder-Decoder with Atrous Separable Convolution for Semantic Image
Segmentation", Sec. 3.3; the 65-layer "Xception-65").

Differences from Chollet's Xception (``keras.applications.Xception``), as the
paper specifies: a deeper middle flow (16 repeats instead of 8), every max
pooling replaced by a depthwise-separable convolution with stride 2, and batch
normalization + ReLU after every 3x3 depthwise convolution. Because of these
changes the structure does not match keras.applications' Xception, so there are
no ImageNet weights to copy (``weights="imagenet"`` raises a clear error).
"""

import keras
from keras import layers

from keras_seg import validation
from keras_seg.backbones._common import (
    check_common_args,
    load_weights_arg,
    scale_width,
    stride_schedule,
    unit_dilations,
)
from keras_seg.layers.atrous import AtrousDepthwiseConv2D, Conv2D
from keras_seg.layers.normalization import BatchNormalization


def _sep_conv(x, filters, stride, dilation, name):
    x = AtrousDepthwiseConv2D(3, strides=stride, padding="same", dilation_rate=dilation,
                               use_bias=False, name=name + "_depthwise")(x)
    x = BatchNormalization(name=name + "_depthwise_bn")(x)
    x = layers.Activation("relu", name=name + "_depthwise_relu")(x)
    x = Conv2D(filters, 1, use_bias=False, name=name + "_pointwise")(x)
    x = BatchNormalization(name=name + "_pointwise_bn")(x)
    return layers.Activation("relu", name=name + "_pointwise_relu")(x)


def _xception_block(x, widths, stride, dilations, residual, name):
    """Three separable convs; the last one strided. Returns (output, pre-stride feature)."""
    inputs = x
    before_stride = None
    for i, width in enumerate(widths):
        x = _sep_conv(x, width, stride if i == 2 else 1, dilations[i], f"{name}_sepconv{i + 1}")
        if i == 1:
            before_stride = x
    if residual == "conv":
        shortcut = Conv2D(widths[-1], 1, strides=stride, use_bias=False,
                                 name=name + "_shortcut")(inputs)
        shortcut = BatchNormalization(name=name + "_shortcut_bn")(shortcut)
        x = layers.Add(name=name + "_add")([shortcut, x])
    elif residual == "identity":
        x = layers.Add(name=name + "_add")([inputs, x])
    return x, before_stride


def xception(
    input_shape=(None, None, 3),
    weights=None,
    output_stride=32,
    multi_grid=None,
    middle_repeats=16,
    width_multiplier=1.0,
    name="xception",
):
    """Build DeepLab v3+'s aligned Xception pyramid backbone.

    Args:
        input_shape: ``(H, W, C)``; H and W may be None.
        weights: None or the path of a ``.weights.h5`` file (no ImageNet weights:
            see the module docstring).
        output_stride: 8, 16 (DeepLab v3+ training) or 32.
        multi_grid: unit-rate multipliers of the three separable convs of the last
            exit-flow block (DeepLab uses (1, 2, 4) there for some variants).
        middle_repeats: number of middle-flow blocks (16 in the paper; 8 in the
            original Xception).
        width_multiplier: scales every width (for tests and tiny models).
        name: model name.

    Returns:
        ``keras.Model`` mapping an image ``(batch, H, W, C)`` to
        ``{"P1": 64 ch, stride 2; "P2": 256 ch, 4 (DeepLab v3+'s low-level
        feature: entry block 2 before its strided conv); "P3": 728 ch, 8;
        "P4": 1024 ch, 16; "P5": 2048 ch, 32}`` (strides capped at
        ``output_stride``).
    """
    check_common_args(name, input_shape, output_stride, width_multiplier, weights)
    multi_grid = validation.multi_grid(name, multi_grid)

    def w(c):
        return scale_width(c, width_multiplier)

    # strides: stem conv, entry1, entry2, entry3, exit1
    (s0, d0), (s1, d1), (s2, d2), (s3, d3), (s4, d4) = stride_schedule((2, 2, 2, 2, 2),
                                                                       output_stride)
    inputs = keras.Input(shape=tuple(input_shape), name="image")
    x = Conv2D(w(32), 3, strides=s0, padding="same", use_bias=False,
                      name="entry_conv1")(inputs)
    x = BatchNormalization(name="entry_conv1_bn")(x)
    x = layers.Activation("relu", name="entry_conv1_relu")(x)
    x = Conv2D(w(64), 3, padding="same", use_bias=False, name="entry_conv2")(x)
    x = BatchNormalization(name="entry_conv2_bn")(x)
    x = layers.Activation("relu", name="entry_conv2_relu")(x)
    features = {"P1": x}
    # each block's first two convs run at the incoming rate, the strided third at its own
    x, _ = _xception_block(x, [w(128)] * 3, s1, (d0, d0, d1), "conv", "entry_block1")
    x, features["P2"] = _xception_block(x, [w(256)] * 3, s2, (d1, d1, d2), "conv",
                                        "entry_block2")
    x, features["P3"] = _xception_block(x, [w(728)] * 3, s3, (d2, d2, d3), "conv",
                                        "entry_block3")
    for i in range(middle_repeats):
        x, _ = _xception_block(x, [w(728)] * 3, 1, (d3, d3, d3), "identity",
                               f"middle_block{i + 1}")
    x, features["P4"] = _xception_block(x, [w(728), w(1024), w(1024)], s4, (d3, d3, d4),
                                        "conv", "exit_block1")
    rates = unit_dilations(d4, 3, multi_grid)
    x, _ = _xception_block(x, [w(1536), w(1536), w(2048)], 1, rates, None, "exit_block2")
    features["P5"] = x
    model = keras.Model(inputs, features, name=name)
    return load_weights_arg(model, weights, None)

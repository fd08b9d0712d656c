"""MobileNetV2 backbone (Sandler et al. 2018, "MobileNetV2: Inverted Residuals and
Linear Bottlenecks"), laid out as ``keras.applications.MobileNetV2`` (alpha 1.0,
same layer names) so ``weights="imagenet"`` copies its weights, with DeepLab's
``output_stride`` / dilation option (DeepLab v3 and v3+ mobile variants).
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
from keras_seg.layers.atrous import Conv2D
from keras_seg.layers.normalization import BatchNormalization

# (expansion, output channels, stride) per inverted-residual block 0..16
_BLOCKS = (
    (1, 16, 1),
    (6, 24, 2), (6, 24, 1),
    (6, 32, 2), (6, 32, 1), (6, 32, 1),
    (6, 64, 2), (6, 64, 1), (6, 64, 1), (6, 64, 1),
    (6, 96, 1), (6, 96, 1), (6, 96, 1),
    (6, 160, 2), (6, 160, 1), (6, 160, 1),
    (6, 320, 1),
)
# the last block of each stride: P1 .. P5
_LEVEL_END = {0: "P1", 2: "P2", 5: "P3", 12: "P4"}
_LAST_STAGE = range(13, 17)


def _bn(name):
    return BatchNormalization(epsilon=1e-3, momentum=0.999, name=name)


def _inverted_residual(x, expansion, filters, stride, dilation, block_id):
    in_channels = x.shape[-1]
    inputs = x
    if block_id:
        prefix = f"block_{block_id}_"
        x = Conv2D(expansion * in_channels, 1, padding="same", use_bias=False,
                          name=prefix + "expand")(x)
        x = _bn(prefix + "expand_BN")(x)
        x = layers.ReLU(6.0, name=prefix + "expand_relu")(x)
    else:
        prefix = "expanded_conv_"
    if stride == 2:
        x = layers.ZeroPadding2D(((0, 1), (0, 1)), name=prefix + "pad")(x)
    x = layers.DepthwiseConv2D(3, strides=stride, use_bias=False, dilation_rate=dilation,
                               padding="same" if stride == 1 else "valid",
                               name=prefix + "depthwise")(x)
    x = _bn(prefix + "depthwise_BN")(x)
    x = layers.ReLU(6.0, name=prefix + "depthwise_relu")(x)
    x = Conv2D(filters, 1, padding="same", use_bias=False, name=prefix + "project")(x)
    x = _bn(prefix + "project_BN")(x)
    if in_channels == filters and stride == 1:
        x = layers.Add(name=prefix + "add")([inputs, x])
    return x


def mobilenetv2(
    input_shape=(None, None, 3),
    weights=None,
    output_stride=32,
    multi_grid=None,
    width_multiplier=1.0,
    name="mobilenetv2",
):
    """Build a MobileNetV2 pyramid backbone.

    Args:
        input_shape: ``(H, W, C)``; H and W may be None.
        weights: None, ``"imagenet"`` (copied from ``keras.applications.MobileNetV2``
            with alpha 1.0) or the path of a ``.weights.h5`` file.
        output_stride: 8, 16 or 32. Blocks past the target keep stride 1 and are
            dilated by the stride they gave up.
        multi_grid: unit-rate multipliers for the last stage (blocks 13-16),
            applied cyclically.
        width_multiplier: MobileNet's alpha applied to every width, rounded to
            multiples of 8.
        name: model name.

    Returns:
        ``keras.Model`` mapping an image ``(batch, H, W, C)`` to ``{"P1": 16 ch,
        stride 2; "P2": 24 ch, 4; "P3": 32 ch, 8; "P4": 96 ch, 16; "P5": 1280 ch,
        32}`` (strides capped at ``output_stride``).
    """
    check_common_args(name, input_shape, output_stride, width_multiplier, weights)
    multi_grid = validation.multi_grid(name, multi_grid)
    inputs = keras.Input(shape=tuple(input_shape), name="image")
    x = Conv2D(scale_width(32, width_multiplier), 3, strides=2, padding="same",
                      use_bias=False, name="Conv1")(inputs)
    x = _bn("bn_Conv1")(x)
    x = layers.ReLU(6.0, name="Conv1_relu")(x)

    sched = stride_schedule((2,) + tuple(b[2] if b[2] == 2 else 1 for b in _BLOCKS),
                            output_stride)[1:]
    last_rates = unit_dilations(sched[_LAST_STAGE[0]][1], len(_LAST_STAGE), multi_grid)
    features = {}
    for block_id, (expansion, filters, _) in enumerate(_BLOCKS):
        stride, dilation = sched[block_id]
        if block_id in _LAST_STAGE:
            dilation = last_rates[block_id - _LAST_STAGE[0]]
        x = _inverted_residual(x, expansion, scale_width(filters, width_multiplier), stride,
                               dilation, block_id)
        if block_id in _LEVEL_END:
            features[_LEVEL_END[block_id]] = x
    x = Conv2D(scale_width(1280, width_multiplier) if width_multiplier > 1.0 else 1280,
                      1, use_bias=False, name="Conv_1")(x)
    x = _bn("Conv_1_bn")(x)
    x = layers.ReLU(6.0, name="out_relu")(x)
    features["P5"] = x
    model = keras.Model(inputs, features, name=name)

    def app_builder(weights):
        return keras.applications.MobileNetV2(include_top=False, weights=weights,
                                              input_shape=(None, None, 3))

    return load_weights_arg(model, weights, app_builder)

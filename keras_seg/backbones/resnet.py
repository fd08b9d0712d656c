"""ResNet backbones (He et al. 2016, "Deep Residual Learning for Image Recognition").

ResNet-18/34 use basic blocks (two 3x3 convs); ResNet-50/101/152 use bottleneck
blocks laid out exactly as ``keras.applications.ResNet50/101/152`` (stride on the
first 1x1 conv, biases on convs, BN epsilon 1.001e-5, same layer names), so that
``weights="imagenet"`` copies their weights. ``output_stride`` 16 or 8 replaces the
strides of the last stages by dilation and ``multi_grid`` sets the unit rates of the
last stage, as in DeepLab v3 (Chen et al. 2017).
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

_EPS = 1.001e-5
_DEPTHS = {
    "resnet18": ("basic", (2, 2, 2, 2)),
    "resnet34": ("basic", (3, 4, 6, 3)),
    "resnet50": ("bottleneck", (3, 4, 6, 3)),
    "resnet101": ("bottleneck", (3, 4, 23, 3)),
    "resnet152": ("bottleneck", (3, 8, 36, 3)),
}
_APPS = {
    "resnet50": "ResNet50",
    "resnet101": "ResNet101",
    "resnet152": "ResNet152",
}


def _bn(name):
    return layers.BatchNormalization(axis=-1, epsilon=_EPS, name=name)


def _bottleneck(x, filters, stride, dilation, shortcut_conv, name):
    if shortcut_conv:
        shortcut = layers.Conv2D(4 * filters, 1, strides=stride, name=name + "_0_conv")(x)
        shortcut = _bn(name + "_0_bn")(shortcut)
    else:
        shortcut = x
    y = layers.Conv2D(filters, 1, strides=stride, name=name + "_1_conv")(x)
    y = _bn(name + "_1_bn")(y)
    y = layers.Activation("relu", name=name + "_1_relu")(y)
    y = layers.Conv2D(filters, 3, padding="same", dilation_rate=dilation, name=name + "_2_conv")(y)
    y = _bn(name + "_2_bn")(y)
    y = layers.Activation("relu", name=name + "_2_relu")(y)
    y = layers.Conv2D(4 * filters, 1, name=name + "_3_conv")(y)
    y = _bn(name + "_3_bn")(y)
    y = layers.Add(name=name + "_add")([shortcut, y])
    return layers.Activation("relu", name=name + "_out")(y)


def _basic(x, filters, stride, dilation, shortcut_conv, name):
    if shortcut_conv:
        shortcut = layers.Conv2D(filters, 1, strides=stride, use_bias=False,
                                 name=name + "_0_conv")(x)
        shortcut = _bn(name + "_0_bn")(shortcut)
    else:
        shortcut = x
    y = layers.Conv2D(filters, 3, strides=stride, padding="same", dilation_rate=dilation,
                      use_bias=False, name=name + "_1_conv")(x)
    y = _bn(name + "_1_bn")(y)
    y = layers.Activation("relu", name=name + "_1_relu")(y)
    y = layers.Conv2D(filters, 3, padding="same", dilation_rate=dilation, use_bias=False,
                      name=name + "_2_conv")(y)
    y = _bn(name + "_2_bn")(y)
    y = layers.Add(name=name + "_add")([shortcut, y])
    return layers.Activation("relu", name=name + "_out")(y)


def build_resnet(
    variant,
    input_shape=(None, None, 3),
    weights=None,
    output_stride=32,
    multi_grid=None,
    width_multiplier=1.0,
    name=None,
):
    """Build a ResNet pyramid backbone.

    Args:
        variant: one of ``"resnet18"``, ``"resnet34"``, ``"resnet50"``,
            ``"resnet101"``, ``"resnet152"``.
        input_shape: ``(H, W, C)``; H and W may be None.
        weights: None, ``"imagenet"`` (50/101/152 only, copied from
            ``keras.applications``) or the path of a ``.weights.h5`` file.
        output_stride: 8, 16 or 32: stride of the deepest feature map.
        multi_grid: tuple of unit-rate multipliers for the last stage, e.g.
            ``(1, 2, 4)`` (DeepLab v3); applied cyclically to its units.
        width_multiplier: scales every width (for tests and tiny models).
        name: model name.

    Returns:
        ``keras.Model`` mapping an image ``(batch, H, W, C)`` to
        ``{"P1": stride 2 (stem), "P2": stride 4 (conv2), "P3": 8 (conv3),
        "P4": 16 (conv4), "P5": 32 (conv5)}``; with ``output_stride`` 16 or 8
        the deepest levels stay at that stride.
    """
    if variant not in _DEPTHS:
        raise ValueError(f"Unknown ResNet variant {variant!r}; choose from {sorted(_DEPTHS)}.")
    name = name or variant
    check_common_args(name, input_shape, output_stride, width_multiplier, weights)
    multi_grid = validation.multi_grid(name, multi_grid)
    kind, depths = _DEPTHS[variant]
    block = _bottleneck if kind == "bottleneck" else _basic

    inputs = keras.Input(shape=tuple(input_shape), name="image")
    stem = scale_width(64, width_multiplier)
    x = layers.ZeroPadding2D(((3, 3), (3, 3)), name="conv1_pad")(inputs)
    x = layers.Conv2D(stem, 7, strides=2, use_bias=(kind == "bottleneck"), name="conv1_conv")(x)
    x = _bn("conv1_bn")(x)
    x = layers.Activation("relu", name="conv1_relu")(x)
    features = {"P1": x}
    x = layers.ZeroPadding2D(((1, 1), (1, 1)), name="pool1_pad")(x)
    x = layers.MaxPooling2D(3, strides=2, name="pool1_pool")(x)

    # strides of: conv1, pool1, conv3, conv4, conv5 (conv2 has stride 1)
    sched = stride_schedule((2, 2, 2, 2, 2), output_stride)
    stage_cfg = [(1, 1)] + sched[2:]
    expansion = 4 if kind == "bottleneck" else 1
    channels_in = stem
    for i, (units, (stride, dilation)) in enumerate(zip(depths, stage_cfg, strict=True)):
        stage = i + 2
        filters = scale_width(64 * 2**i, width_multiplier)
        rates = unit_dilations(dilation, units, multi_grid if stage == 5 else None)
        for u in range(units):
            first = u == 0
            needs_proj = first and (stride != 1 or channels_in != filters * expansion)
            x = block(x, filters, stride if first else 1, rates[u], needs_proj,
                      f"conv{stage}_block{u + 1}")
            channels_in = filters * expansion
        features[f"P{stage}"] = x

    model = keras.Model(inputs, features, name=name)
    app = _APPS.get(variant)
    app_builder = None
    if app is not None:
        def app_builder(weights):
            return getattr(keras.applications, app)(
                include_top=False, weights=weights, input_shape=(None, None, 3))
    return load_weights_arg(model, weights, app_builder)


def resnet18(**kwargs):
    """ResNet-18 (basic blocks, 2-2-2-2). See :func:`build_resnet` for arguments."""
    return build_resnet("resnet18", **kwargs)


def resnet34(**kwargs):
    """ResNet-34 (basic blocks, 3-4-6-3). See :func:`build_resnet` for arguments."""
    return build_resnet("resnet34", **kwargs)


def resnet50(**kwargs):
    """ResNet-50 (bottleneck, 3-4-6-3). See :func:`build_resnet` for arguments."""
    return build_resnet("resnet50", **kwargs)


def resnet101(**kwargs):
    """ResNet-101 (bottleneck, 3-4-23-3). See :func:`build_resnet` for arguments."""
    return build_resnet("resnet101", **kwargs)


def resnet152(**kwargs):
    """ResNet-152 (bottleneck, 3-8-36-3). See :func:`build_resnet` for arguments."""
    return build_resnet("resnet152", **kwargs)

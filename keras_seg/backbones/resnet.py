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
from keras_seg.layers.atrous import AtrousConv2D, Conv2D
from keras_seg.layers.normalization import BatchNormalization
from keras_seg.layers.pooling import MaxPooling2D

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


class _Style:
    """How the blocks are laid out (see :func:`build_resnet`'s torch-compatibility options)."""

    def __init__(self, stride_on, conv_bias, padding, bn_epsilon):
        self.stride_on = stride_on
        self.conv_bias = conv_bias
        self.padding = padding
        self.bn_epsilon = bn_epsilon

    def bn(self, name):
        return BatchNormalization(axis=-1, epsilon=self.bn_epsilon, name=name)

    def conv(self, x, filters, kernel, name, stride=1, dilation=1):
        """A conv; a strided k x k conv pads symmetrically in the "symmetric" style."""
        if stride > 1 and kernel > 1 and self.padding == "symmetric":
            pad = dilation * (kernel // 2)
            x = layers.ZeroPadding2D(((pad, pad), (pad, pad)), name=name + "_pad")(x)
            padding = "valid"
        else:
            padding = "same"
        # a dilated conv (output_stride 8 / 16) takes keras-seg's fast atrous path
        conv = AtrousConv2D if dilation > 1 and stride == 1 else Conv2D
        return conv(filters, kernel, strides=stride, padding=padding, dilation_rate=dilation,
                    use_bias=self.conv_bias, name=name)(x)


def _bottleneck(x, filters, stride, dilation, shortcut_conv, name, style):
    if shortcut_conv:
        shortcut = style.conv(x, 4 * filters, 1, name + "_0_conv", stride=stride)
        shortcut = style.bn(name + "_0_bn")(shortcut)
    else:
        shortcut = x
    first, second = (stride, 1) if style.stride_on == "1x1" else (1, stride)
    y = style.conv(x, filters, 1, name + "_1_conv", stride=first)
    y = style.bn(name + "_1_bn")(y)
    y = layers.Activation("relu", name=name + "_1_relu")(y)
    y = style.conv(y, filters, 3, name + "_2_conv", stride=second, dilation=dilation)
    y = style.bn(name + "_2_bn")(y)
    y = layers.Activation("relu", name=name + "_2_relu")(y)
    y = style.conv(y, 4 * filters, 1, name + "_3_conv")
    y = style.bn(name + "_3_bn")(y)
    y = layers.Add(name=name + "_add")([shortcut, y])
    return layers.Activation("relu", name=name + "_out")(y)


def _basic(x, filters, stride, dilation, shortcut_conv, name, style):
    if shortcut_conv:
        shortcut = style.conv(x, filters, 1, name + "_0_conv", stride=stride)
        shortcut = style.bn(name + "_0_bn")(shortcut)
    else:
        shortcut = x
    y = style.conv(x, filters, 3, name + "_1_conv", stride=stride, dilation=dilation)
    y = style.bn(name + "_1_bn")(y)
    y = layers.Activation("relu", name=name + "_1_relu")(y)
    y = style.conv(y, filters, 3, name + "_2_conv", dilation=dilation)
    y = style.bn(name + "_2_bn")(y)
    y = layers.Add(name=name + "_add")([shortcut, y])
    return layers.Activation("relu", name=name + "_out")(y)


def build_resnet(
    variant,
    input_shape=(None, None, 3),
    weights=None,
    output_stride=32,
    multi_grid=None,
    width_multiplier=1.0,
    stride_on=None,
    conv_bias=None,
    padding=None,
    dilate_first_unit=True,
    bn_epsilon=None,
    name=None,
):
    """Build a ResNet pyramid backbone.

    The defaults lay ResNet out as ``keras.applications`` does (He et al.'s
    original "v1" bottleneck). Five options reproduce the PyTorch ResNets
    (torchvision, timm, segmentation_models.pytorch encoders), whose checkpoints
    :mod:`keras_seg.convert` loads; :data:`TORCH_STYLE` holds them together. When
    ``weights`` is a PyTorch checkpoint file (``.pth`` / ``.pt`` / ``.bin`` /
    ``.safetensors``: a torchvision or timm ImageNet ResNet) the four layout options
    left at None take their :data:`TORCH_STYLE` values, and one set otherwise is an
    error (the checkpoint's weights would compute something else).

    Args:
        variant: one of ``"resnet18"``, ``"resnet34"``, ``"resnet50"``,
            ``"resnet101"``, ``"resnet152"``.
        input_shape: ``(H, W, C)``; H and W may be None.
        weights: None, ``"imagenet"`` (50/101/152 only, copied from
            ``keras.applications``), the path of a ``.weights.h5`` file, or the path
            (or URL) of a torchvision / timm ResNet checkpoint (``.pth``, ``.pt``,
            ``.bin``, ``.safetensors``; converted by
            :func:`keras_seg.convert.load_torch_weights`; ImageNet weights for
            ResNet-18/34 come this way).
        output_stride: 8, 16 or 32: stride of the deepest feature map.
        multi_grid: tuple of unit-rate multipliers for the last stage, e.g.
            ``(1, 2, 4)`` (DeepLab v3); applied cyclically to its units.
        width_multiplier: scales every width (for tests and tiny models).
        stride_on: bottleneck blocks only: ``"1x1"`` (None: the default; keras.applications,
            the paper's v1: the first 1x1 conv strides) or ``"3x3"`` (PyTorch's
            "ResNet v1.5": the 3x3 conv strides).
        conv_bias: biases on the convolutions; None means True for bottleneck
            variants (keras.applications) and False for ResNet-18/34. PyTorch's
            ResNets have none (False).
        padding: ``"same"`` (None: the default; Keras pads a strided conv at the bottom /
            right only) or ``"symmetric"`` (PyTorch: a strided 3x3 conv pads one
            pixel on every side, written as ``ZeroPadding2D`` + ``"valid"``).
            The 7x7 stem and the max pool pad symmetrically either way.
        dilate_first_unit: with ``output_stride`` 8 or 16: True (default; DeepLab,
            segmentation_models.pytorch) dilates every unit of a dilated stage;
            False keeps the previous stage's rate in its first unit, as torchvision's
            ``replace_stride_with_dilation`` does.
        bn_epsilon: BatchNorm epsilon: 1.001e-5 (None: the default;
            keras.applications) or 1e-5 (PyTorch).
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
    given = {"stride_on": stride_on, "conv_bias": conv_bias, "padding": padding,
             "bn_epsilon": bn_epsilon}
    torch_weights = _is_torch_checkpoint(weights)
    if torch_weights:
        clash = {k: v for k, v in given.items() if v is not None and v != TORCH_STYLE[k]
                 and not (k == "stride_on" and kind == "basic")}
        if clash:
            raise ValueError(
                f"{name}: weights={weights!r} is a PyTorch checkpoint, whose ResNet is laid out "
                f"as {TORCH_STYLE}; {clash} would compute something else with its weights. "
                "Leave these options at None.")
        given = {k: TORCH_STYLE[k] if v is None else v for k, v in given.items()}
    stride_on = given["stride_on"] or "1x1"
    padding = given["padding"] or "same"
    bn_epsilon = _EPS if given["bn_epsilon"] is None else given["bn_epsilon"]
    conv_bias = kind == "bottleneck" if given["conv_bias"] is None else given["conv_bias"]
    validation.one_of(name, "stride_on", stride_on, ("1x1", "3x3"))
    validation.one_of(name, "padding", padding, ("same", "symmetric"))
    if isinstance(bn_epsilon, bool) or not isinstance(bn_epsilon, (int, float)) \
            or not bn_epsilon > 0:
        raise ValueError(f"{name}: bn_epsilon must be a positive number, got {bn_epsilon!r}.")
    if weights == "imagenet" and (stride_on, padding, bool(conv_bias)) != (
            "1x1", "same", kind == "bottleneck"):
        raise ValueError(
            f"{name}: weights='imagenet' copies keras.applications' ResNet, laid out with the "
            "default stride_on / conv_bias / padding; for a PyTorch-style ResNet pass a "
            "torchvision or timm checkpoint file as weights.")
    style = _Style(stride_on, bool(conv_bias), padding, float(bn_epsilon))

    inputs = keras.Input(shape=tuple(input_shape), name="image")
    stem = scale_width(64, width_multiplier)
    x = layers.ZeroPadding2D(((3, 3), (3, 3)), name="conv1_pad")(inputs)
    x = Conv2D(stem, 7, strides=2, use_bias=style.conv_bias, name="conv1_conv")(x)
    x = style.bn("conv1_bn")(x)
    x = layers.Activation("relu", name="conv1_relu")(x)
    features = {"P1": x}
    x = layers.ZeroPadding2D(((1, 1), (1, 1)), name="pool1_pad")(x)
    x = MaxPooling2D(3, strides=2, name="pool1_pool")(x)

    # strides of: conv1, pool1, conv3, conv4, conv5 (conv2 has stride 1)
    sched = stride_schedule((2, 2, 2, 2, 2), output_stride)
    stage_cfg = [(1, 1)] + sched[2:]
    expansion = 4 if kind == "bottleneck" else 1
    channels_in = stem
    previous_rate = 1
    for i, (units, (stride, dilation)) in enumerate(zip(depths, stage_cfg, strict=True)):
        stage = i + 2
        filters = scale_width(64 * 2**i, width_multiplier)
        rates = unit_dilations(dilation, units, multi_grid if stage == 5 else None)
        if not dilate_first_unit:
            rates[0] = previous_rate
        for u in range(units):
            first = u == 0
            needs_proj = first and (stride != 1 or channels_in != filters * expansion)
            x = block(x, filters, stride if first else 1, rates[u], needs_proj,
                      f"conv{stage}_block{u + 1}", style)
            channels_in = filters * expansion
        previous_rate = dilation
        features[f"P{stage}"] = x

    model = keras.Model(inputs, features, name=name)
    if torch_weights:
        from keras_seg.convert import load_torch_weights

        load_torch_weights(model, weights, f"torchvision/{variant}")
        return model
    app = _APPS.get(variant)
    app_builder = None
    if app is not None:
        def app_builder(weights):
            return getattr(keras.applications, app)(
                include_top=False, weights=weights, input_shape=(None, None, 3))
    return load_weights_arg(model, weights, app_builder)


#: The options of :func:`build_resnet` that lay a ResNet out as the PyTorch ones
#: (torchvision, timm, segmentation_models.pytorch encoders): ResNet v1.5, no conv
#: biases, symmetric padding, BatchNorm epsilon 1e-5. Add ``dilate_first_unit=False``
#: for torchvision's dilated (segmentation) ResNets.
TORCH_STYLE = {"stride_on": "3x3", "conv_bias": False, "padding": "symmetric",
               "bn_epsilon": 1e-5}


def _is_torch_checkpoint(weights):
    if not isinstance(weights, str):
        return False
    lowered = weights.lower()
    return lowered.startswith(("http://", "https://")) or lowered.endswith(
        (".pth", ".pt", ".bin", ".safetensors"))


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

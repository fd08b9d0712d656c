"""APCNet (He, Deng, Zhou, Wang & Qiao 2019, "Adaptive Pyramid Context Network for
Semantic Segmentation", CVPR)."""

from keras import Model, layers

from keras_seg.applications._common import (
    check_input_shape,
    check_num_classes,
    conv_bn_relu,
    logits_head,
    model_input,
    pad_input,
)
from keras_seg.applications._dilated import (
    build_backbone,
    check_output_stride,
    pad_multiple,
    require_level,
    upsample_to_input,
)
from keras_seg.layers import AdaptiveContextModule
from keras_seg.layers._checks import check_positive_int_tuple

APCNET_SCALES = (1, 2, 3, 6)


def APCNet(
    num_classes=21,
    input_shape=(None, None, 3),
    backbone="resnet101",
    backbone_options=None,
    output_stride=8,
    scales=APCNET_SCALES,
    filters=512,
    dropout=0.1,
    name="apcnet",
):
    """APCNet, the adaptive pyramid context network (He et al. 2019).

    A dilated ResNet-101 at output stride 8 gives ``X`` (2048 channels). One
    :class:`keras_seg.layers.AdaptiveContextModule` per scale ``s`` in (1, 2,
    3, 6): ``X`` pooled adaptively to ``s x s`` and reduced (1x1 conv 512 + BN +
    ReLU) gives ``s^2`` context vectors; ``X`` reduced by another 1x1 conv 512 +
    BN + ReLU, plus its global average (the global guidance), gives through a
    1x1 conv + sigmoid each position's affinity to the ``s^2`` sub-regions (the
    "global-guided local affinity"); the affinity-weighted sum of the context
    vectors is added to the reduced features (512 channels out). ``X`` and the
    four module outputs are concatenated (2048 + 4 x 512 = 4096 channels), then
    a 3x3 conv 512 + BN + ReLU, dropout 0.1 and a 1x1 conv to the classes; the
    logits are upsampled x8 bilinearly to the input.

    The dropout 0.1 before the classifier follows the usual implementations of
    this head (as PSPNet's); ``dropout=0`` removes its effect.

    Args:
        num_classes: number of classes (21 for PASCAL VOC).
        input_shape: ``(H, W, C)``; H and W may be None.
        backbone: backbone name (``"resnet101"``, ``"resnet50"``...) or a pyramid
            ``keras.Model`` (its ``"P5"`` is used).
        backbone_options: options of a named backbone (``width_multiplier``,
            ``weights``...).
        output_stride: 8 (paper) or 16.
        scales: the grid sizes of the adaptive context modules (1, 2, 3, 6).
        filters: width of every module and of the 3x3 head conv (512).
        dropout: dropout before the classifier (0.1).
        name: model name.

    Returns:
        A functional ``keras.Model``: ``(batch, H, W, C)`` -> float32 logits
        ``(batch, H, W, num_classes)``.
    """
    input_shape = check_input_shape(name, input_shape)
    check_num_classes(name, num_classes)
    check_output_stride(name, output_stride)
    scales = check_positive_int_tuple(name, "scales", scales, "(1, 2, 3, 6)")
    if not isinstance(filters, int) or filters < 1:
        raise ValueError(f"{name}: filters must be a positive int, got {filters!r}.")
    builder_options = {"output_stride": output_stride} if isinstance(backbone, str) else {}
    encoder, strides = build_backbone(name, backbone, backbone_options, input_shape,
                                      builder_options)
    require_level(name, strides, "P5", "the input of the adaptive context modules")
    inputs = model_input(input_shape)
    padded = pad_input(inputs, pad_multiple(strides), name)
    x = encoder(padded)["P5"]
    contexts = [AdaptiveContextModule(s, filters=filters, name=f"acm_{s}")(x) for s in scales]
    y = layers.Concatenate(name="acm_concat")([x, *contexts])
    y = conv_bn_relu(y, filters, 3, "head")
    y = layers.Dropout(dropout, name="head_dropout")(y)
    y = logits_head(y, num_classes, name="classifier")
    return Model(inputs, upsample_to_input(y, padded, inputs), name=name)

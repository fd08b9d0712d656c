"""APCNet (He, Deng, Zhou, Wang & Qiao 2019, "Adaptive Pyramid Context Network for
Semantic Segmentation", CVPR)."""

from keras import layers

from keras_seg import validation
from keras_seg.applications._base import (
    begin,
    finish,
    pad_input,
    resolve_encoder,
    upsample_to_input,
)
from keras_seg.applications._common import conv_bn_relu, logits_head
from keras_seg.layers import AdaptiveContextModule

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
            Images are float32 in [0, 1] (uint8 divided by 255), as keras-seg's training pipeline
            and :func:`keras_seg.inference.predict` feed them; the model does not rescale its input.
        backbone: backbone name (``"resnet101"``, ``"resnet50"``...) or a pyramid
            ``keras.Model`` (its ``"P5"`` is used).
        backbone_options: options of a named backbone (``width_multiplier``,
            ``weights``...).
        output_stride: 8 (paper) or 16. A named backbone is dilated to it; a
            passed-in model must already have it (ValueError otherwise).
        scales: the grid sizes of the adaptive context modules (1, 2, 3, 6).
        filters: width of every module and of the 3x3 head conv (512).
        dropout: dropout before the classifier (0.1).
        name: model name.

    Returns:
        A functional ``keras.Model``: ``(batch, H, W, C)`` -> float32 logits
        ``(batch, H, W, num_classes)``.
    """
    input_shape, inputs = begin(name, num_classes, input_shape)
    validation.output_stride(name, output_stride, (8, 16))
    scales = validation.positive_int_tuple(name, "scales", scales, "(1, 2, 3, 6)")
    validation.positive_int(name, "filters", filters)
    encoder = resolve_encoder(name, backbone, backbone_options, input_shape=input_shape,
                              levels={"P5": "the input of the adaptive context modules"},
                              output_stride=output_stride)
    padded = pad_input(inputs, encoder.stride, name)
    x = encoder.model(padded)["P5"]
    contexts = [AdaptiveContextModule(s, filters=filters, name=f"acm_{s}")(x) for s in scales]
    y = layers.Concatenate(name="acm_concat")([x, *contexts])
    y = conv_bn_relu(y, filters, 3, "head")
    y = layers.Dropout(dropout, name="head_dropout")(y)
    y = logits_head(y, num_classes, name="classifier")
    return finish(inputs, upsample_to_input(y, padded, inputs), name,
                  output_stride=encoder.stride)

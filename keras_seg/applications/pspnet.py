"""PSPNet (Zhao, Shi, Qi, Wang & Jia 2017, "Pyramid Scene Parsing Network", CVPR)."""

import keras
from keras import layers

from keras_seg import validation
from keras_seg.applications._base import (
    Encoder,
    begin,
    finish,
    pad_input,
    resolve_encoder,
    upsample_to_input,
)
from keras_seg.applications._common import conv_bn_relu, logits_head
from keras_seg.layers import PyramidPooling
from keras_seg.layers.atrous import Conv2D
from keras_seg.model_base import MAIN_OUTPUT, logits_dtype

#: Weight of the auxiliary loss (paper Sec. 3.3 and 4.2: "the weight of the auxiliary
#: loss is 0.4"), relative to the main loss (weight 1).
PSPNET_AUX_WEIGHT = 0.4
AUX_OUTPUT = "aux"


def pspnet_loss_weights():
    """Loss weights of the outputs of ``PSPNet(aux=True)``: ``{"logits": 1.0, "aux": 0.4}``.

    Usable as ``model.compile(loss=..., loss_weights=pspnet_loss_weights())``.
    """
    return {MAIN_OUTPUT: 1.0, AUX_OUTPUT: PSPNET_AUX_WEIGHT}


def PSPNet(
    num_classes=21,
    input_shape=(None, None, 3),
    backbone="resnet101",
    backbone_options=None,
    output_stride=8,
    bins=(1, 2, 3, 6),
    filters=512,
    dropout=0.1,
    aux=False,
    aux_filters=256,
    encoder_depth=5,
    fusion_kernel=3,
    head_kernel=1,
    spatial_dropout=False,
    single_bin_batchnorm=True,
    align_corners=False,
    bn_epsilon=1e-3,
    name="pspnet",
):
    """PSPNet (Zhao et al. 2017).

    A dilated ResNet at output stride 8 feeds the pyramid pooling module
    (:class:`keras_seg.layers.PyramidPooling`: adaptive average pooling to 1x1,
    2x2, 3x3 and 6x6 bins, each a 1x1 conv to C/4 + BN + ReLU, upsampled
    bilinearly and concatenated with the features), then a 3x3 conv 512 + BN +
    ReLU, dropout 0.1 and a 1x1 conv to the classes; the logits are upsampled
    bilinearly to the input. The default backbone is ResNet-101, the one behind
    the paper's PASCAL VOC 2012 (82.6) and Cityscapes results (ResNet-50 is its
    ADE20K ablation backbone, ResNet-269 its challenge entry). The paper's
    deep-stem ResNet (three 3x3 convs in the stem) is not among the package's
    backbones; the standard 7x7 stem is used.

    With ``aux=True`` an auxiliary head on the res4 (``"P4"``) output - 3x3 conv
    256 + BN + ReLU, dropout 0.1, 1x1 conv to the classes - is added, for
    training only. The model then returns a dict
    ``{"logits": main logits, "aux": auxiliary logits}``, both float32 and both
    at the input resolution ``(batch, H, W, num_classes)`` (the auxiliary head
    runs at stride 8 and is upsampled bilinearly, as the released code does).
    Weight the auxiliary loss by :data:`PSPNET_AUX_WEIGHT` = 0.4
    (:func:`pspnet_loss_weights`); :func:`keras_seg.inference_model` drops it.
    The model is then a :class:`keras_seg.model_base.SegmentationModel` storing
    these weights: ``model.fit(images, masks)`` with one label map trains both
    heads, total loss ``loss(logits) + 0.4 * loss(aux)``.

    segmentation_models.pytorch's ``PSPNet`` is this builder with
    ``encoder_depth=3, fusion_kernel=1, head_kernel=3, dropout=0.2,
    spatial_dropout=True, single_bin_batchnorm=False, align_corners=True,
    bn_epsilon=1e-5`` on a PyTorch-style ResNet (``keras_seg.convert``,
    ``"smp/PSPNet-<encoder>"``).

    Args:
        num_classes: number of classes (21 for PASCAL VOC).
        input_shape: ``(H, W, C)``; H and W may be None.
            Images are float32 in [0, 1] (uint8 divided by 255), as keras-seg's training pipeline
            and :func:`keras_seg.inference.predict` feed them; the model does not rescale its input.
        backbone: backbone name (``"resnet101"``, ``"resnet50"``...) or a
            pyramid ``keras.Model`` (with ``"P4"`` for the auxiliary head).
        backbone_options: options of a named backbone (``width_multiplier``,
            ``weights``...).
        output_stride: 8 (paper) or 16. A named backbone is dilated to it; a
            passed-in model must already have it (ValueError otherwise).
        bins: pyramid bin counts (1, 2, 3, 6).
        filters: width of the conv after pyramid pooling (512).
        dropout: dropout before each classifier (0.1).
        aux: add the auxiliary head and return a dict of outputs (needs
            ``encoder_depth=5``).
        aux_filters: width of the auxiliary 3x3 conv (256).
        encoder_depth: 5 (paper): the pyramid pooling module reads the deepest
            feature ``"P5"``; 3 or 4: it reads ``"P3"`` / ``"P4"`` and the encoder is
            cut after that stage (its later stages are not part of the model), as
            segmentation_models.pytorch's ``encoder_depth`` (3 in its PSPNet: the
            stride-8 ``layer2`` output, no dilation). The feature's stride is
            ``min(2 ** encoder_depth, output_stride)``.
        fusion_kernel: kernel size of the conv after pyramid pooling (3, paper; 1
            in segmentation_models.pytorch).
        head_kernel: kernel size of the classifier conv (1, paper; 3 in
            segmentation_models.pytorch's ``SegmentationHead``).
        spatial_dropout: False (default) drops single activations; True drops whole
            channels (``SpatialDropout2D``, PyTorch's ``Dropout2d``, as
            segmentation_models.pytorch). Training only; inference is the same.
        single_bin_batchnorm: :class:`PyramidPooling`'s: False drops the BatchNorm
            of the 1x1 level (its conv then has a bias), as segmentation_models.pytorch.
        align_corners: upsample the pooled maps and the logits with
            ``align_corners=True`` geometry, as segmentation_models.pytorch (False:
            half-pixel centres).
        bn_epsilon: epsilon of the BatchNorms of the pyramid pooling module and the
            heads (Keras' 1e-3; PyTorch's 1e-5 for converted weights). The backbone's
            are its own (``backbone_options``).
        name: model name.

    Returns:
        A functional ``keras.Model``: ``(batch, H, W, C)`` -> float32 logits
        ``(batch, H, W, num_classes)``, or with ``aux=True`` the dict described
        above.
    """
    input_shape, inputs = begin(name, num_classes, input_shape)
    validation.output_stride(name, output_stride, (8, 16))
    validation.one_of(name, "encoder_depth", encoder_depth, (3, 4, 5))
    for option, kernel in (("fusion_kernel", fusion_kernel), ("head_kernel", head_kernel)):
        if validation.positive_int(name, option, kernel) % 2 == 0:
            raise ValueError(f"{name}: {option} must be odd (a centred kernel), got {kernel}.")
    if aux and encoder_depth != 5:
        raise ValueError(f"{name}: aux=True puts the auxiliary head on the stride-16 'P4' "
                         f"features of the full encoder; it needs encoder_depth=5, got "
                         f"encoder_depth={encoder_depth}.")
    level = f"P{encoder_depth}"
    levels = {level: "the input of the pyramid pooling module"}
    if aux:
        levels["P4"] = "the input of the auxiliary head"
    # a stage cut off by encoder_depth needs no dilation: P3 is at stride 8 either way
    dilate = encoder_depth == 5 or output_stride < 2 ** encoder_depth
    encoder = resolve_encoder(name, backbone, backbone_options, input_shape=input_shape,
                              levels=levels, output_stride=output_stride if dilate else None)
    if encoder_depth < 5:
        encoder = _truncate(encoder, encoder_depth)
    padded = pad_input(inputs, encoder.stride, name)
    feats = encoder.model(padded)
    x = PyramidPooling(bins=bins, align_corners=align_corners,
                       single_bin_batchnorm=single_bin_batchnorm, bn_epsilon=bn_epsilon,
                       name="pyramid_pooling")(feats[level])
    x = conv_bn_relu(x, filters, fusion_kernel, "head", bn_epsilon=bn_epsilon)
    x = _dropout(dropout, spatial_dropout, "head_dropout")(x)
    x = _classifier(x, num_classes, head_kernel, "classifier")
    logits = upsample_to_input(x, padded, inputs, name=MAIN_OUTPUT, align_corners=align_corners)
    if not aux:
        return finish(inputs, logits, name, output_stride=encoder.stride)
    y = conv_bn_relu(feats["P4"], aux_filters, 3, "aux", bn_epsilon=bn_epsilon)
    y = _dropout(dropout, spatial_dropout, "aux_dropout")(y)
    y = logits_head(y, num_classes, name="aux_classifier")
    aux_logits = upsample_to_input(y, padded, inputs, name=AUX_OUTPUT,
                                   align_corners=align_corners)
    return finish(inputs, {MAIN_OUTPUT: logits, AUX_OUTPUT: aux_logits}, name,
                  output_stride=encoder.stride, loss_weights=pspnet_loss_weights())


def _truncate(encoder, depth):
    """The encoder cut after its ``"P{depth}"`` stage: a pyramid model with the levels
    ``P1..P{depth}`` only (the later stages are left out of the model)."""
    kept = {k: v for k, v in encoder.strides.items()
            if k.startswith("P") and int(k[1:]) <= depth}
    outputs = {k: encoder.model.output[k] for k in kept}
    model = keras.Model(encoder.model.inputs, outputs, name=encoder.model.name)
    return Encoder(model, kept)


def _dropout(rate, spatial, name):
    if spatial:
        return layers.SpatialDropout2D(rate, name=name)
    return layers.Dropout(rate, name=name)


def _classifier(x, num_classes, kernel, name):
    """The float32 classifier: :func:`logits_head` (1x1) or a ``kernel`` x ``kernel``
    conv with bias ("same" padding)."""
    if kernel == 1:
        return logits_head(x, num_classes, name=name)
    return Conv2D(num_classes, kernel, padding="same", dtype=logits_dtype(),
                         name=name)(x)

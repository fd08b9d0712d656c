"""PSPNet (Zhao, Shi, Qi, Wang & Jia 2017, "Pyramid Scene Parsing Network", CVPR)."""

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
from keras_seg.layers import PyramidPooling
from keras_seg.model_base import MAIN_OUTPUT

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
        filters: width of the 3x3 conv after pyramid pooling (512).
        dropout: dropout before each classifier (0.1).
        aux: add the auxiliary head and return a dict of outputs.
        aux_filters: width of the auxiliary 3x3 conv (256).
        name: model name.

    Returns:
        A functional ``keras.Model``: ``(batch, H, W, C)`` -> float32 logits
        ``(batch, H, W, num_classes)``, or with ``aux=True`` the dict described
        above.
    """
    input_shape, inputs = begin(name, num_classes, input_shape)
    validation.output_stride(name, output_stride, (8, 16))
    levels = {"P5": "the input of the pyramid pooling module"}
    if aux:
        levels["P4"] = "the input of the auxiliary head"
    encoder = resolve_encoder(name, backbone, backbone_options, input_shape=input_shape,
                              levels=levels, output_stride=output_stride)
    padded = pad_input(inputs, encoder.stride, name)
    feats = encoder.model(padded)
    x = PyramidPooling(bins=bins, name="pyramid_pooling")(feats["P5"])
    x = conv_bn_relu(x, filters, 3, "head")
    x = layers.Dropout(dropout, name="head_dropout")(x)
    x = logits_head(x, num_classes, name="classifier")
    logits = upsample_to_input(x, padded, inputs, name=MAIN_OUTPUT)
    if not aux:
        return finish(inputs, logits, name, output_stride=encoder.stride)
    y = conv_bn_relu(feats["P4"], aux_filters, 3, "aux")
    y = layers.Dropout(dropout, name="aux_dropout")(y)
    y = logits_head(y, num_classes, name="aux_classifier")
    aux_logits = upsample_to_input(y, padded, inputs, name=AUX_OUTPUT)
    return finish(inputs, {MAIN_OUTPUT: logits, AUX_OUTPUT: aux_logits}, name,
                  output_stride=encoder.stride, loss_weights=pspnet_loss_weights())

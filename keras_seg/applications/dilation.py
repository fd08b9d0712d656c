"""Dilated-convolution network of Yu & Koltun (2016, "Multi-Scale Context Aggregation
by Dilated Convolutions", ICLR): the VGG-16 front end and the context module."""

from keras_seg import validation
from keras_seg.applications._base import (
    begin,
    finish,
    pad_input,
    refuse_backbone,
    resolve_encoder,
    upsample_to_input,
)
from keras_seg.applications._common import logits_head
from keras_seg.layers import ContextModule
from keras_seg.model_base import logits_dtype

_CONTEXTS = (None, "basic", "large")


def DilatedNet(
    num_classes=21,
    input_shape=(None, None, 3),
    context="large",
    backbone_options=None,
    fc_filters=4096,
    dropout=0.5,
    context_noise_stddev=None,
    name="dilatednet",
    backbone=None,
):
    """Yu & Koltun's dilated network: front end, optionally + context module.

    Front end (paper Sec. 4): VGG-16 with pool4 and pool5 removed, conv5
    dilated by 2, fc6 as a 7x7 convolution dilated by 4 (4096), fc7 1x1 (4096),
    dropout 0.5 after each, and a 1x1 convolution to the classes; output stride
    8. The context module (:class:`keras_seg.layers.ContextModule`, Table 1,
    identity initialization) takes the front end's class scores (C channels) and
    returns refined scores; the scores are upsampled bilinearly to the input.
    Published (VOC 2012 val): front end 69.8, front end + large context 72.1
    mIoU. Convolutions use ``"same"`` padding (the paper pads the image by
    reflection and uses unpadded convolutions); the input is padded to a
    multiple of 8 and the output cropped back, so any size works.

    Args:
        num_classes: number of classes C (21 for PASCAL VOC).
        input_shape: ``(H, W, C_in)``; H and W may be None.
            Images are float32 in [0, 1] (uint8 divided by 255), as keras-seg's training pipeline
            and :func:`keras_seg.inference.predict` feed them; the model does not rescale its input.
        context: None (front end only), ``"basic"`` or ``"large"`` (the paper's
            best model, the default).
        backbone_options: options for the VGG-16 front end (``width_multiplier``,
            ``weights``); its stride / pooling / fc settings are fixed by the paper.
        fc_filters: width of fc6 and fc7 (4096).
        dropout: dropout after fc6 and fc7 (0.5).
        context_noise_stddev: noise of the large module's identity
            initialization (None: the layer's default, see ContextModule).
        name: model name.
        backbone: not an option: the front end is the paper's VGG-16 (any value other
            than None raises a ValueError saying so).

    Returns:
        A :class:`keras_seg.SegmentationModel`: ``(batch, H, W, C_in)`` -> float32
        logits ``(batch, H, W, num_classes)``; output stride 8.
    """
    refuse_backbone(name, backbone, "the front end is VGG-16 with pool4 / pool5 removed, "
                    "conv5 dilated by 2 and fc6 / fc7 as dilated convolutions (the paper's)")
    input_shape, inputs = begin(name, num_classes, input_shape)
    validation.one_of(name, "context", context, _CONTEXTS)
    fixed = {"stride1_pooling": "remove", "fc_layers": True, "fc_filters": fc_filters,
             "fc_kernel": 7, "fc_dilation": 4, "fc_dropout": dropout}
    encoder = resolve_encoder(name, "vgg16", backbone_options, input_shape=input_shape,
                              output_stride=8,
                              named_options={k: (v, v) for k, v in fixed.items()})
    padded = pad_input(inputs, encoder.stride, name)
    x = encoder.model(padded)["fc7"]
    x = logits_head(x, num_classes, name="front_end_scores")
    if context is not None:
        # the module produces the logits: keep it in float32 under mixed precision
        x = ContextModule(context, noise_stddev=context_noise_stddev, dtype=logits_dtype(),
                          name=f"context_{context}")(x)
    outputs = upsample_to_input(x, padded, inputs)
    return finish(inputs, outputs, name, output_stride=encoder.stride)

"""Dilated-convolution network of Yu & Koltun (2016, "Multi-Scale Context Aggregation
by Dilated Convolutions", ICLR): the VGG-16 front end and the context module."""

from keras import Model

from keras_seg.applications._common import (
    check_input_shape,
    check_num_classes,
    logits_head,
    model_input,
    pad_input,
)
from keras_seg.applications._dilated import build_backbone, pad_multiple, upsample_to_input
from keras_seg.layers import ContextModule

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
        context: None (front end only), ``"basic"`` or ``"large"`` (the paper's
            best model, the default).
        backbone_options: options for the VGG-16 front end (``width_multiplier``,
            ``weights``); its stride / pooling / fc settings are fixed by the paper.
        fc_filters: width of fc6 and fc7 (4096).
        dropout: dropout after fc6 and fc7 (0.5).
        context_noise_stddev: noise of the large module's identity
            initialization (None: the layer's default, see ContextModule).
        name: model name.

    Returns:
        A functional ``keras.Model``: ``(batch, H, W, C_in)`` -> float32 logits
        ``(batch, H, W, num_classes)``.
    """
    input_shape = check_input_shape(name, input_shape)
    check_num_classes(name, num_classes)
    if context not in _CONTEXTS:
        raise ValueError(f"{name}: context must be one of {_CONTEXTS}, got {context!r}.")
    options = dict(backbone_options or {})
    fixed = {"output_stride": 8, "stride1_pooling": "remove", "fc_layers": True,
             "fc_filters": fc_filters, "fc_kernel": 7, "fc_dilation": 4, "fc_dropout": dropout}
    encoder, strides = build_backbone(name, "vgg16", options, input_shape, fixed)

    inputs = model_input(input_shape)
    padded = pad_input(inputs, pad_multiple(strides), name)
    x = encoder(padded)["fc7"]
    x = logits_head(x, num_classes, name="front_end_scores")
    if context is not None:
        # the module produces the logits: keep it in float32 under mixed precision
        x = ContextModule(context, noise_stddev=context_noise_stddev, dtype="float32",
                          name=f"context_{context}")(x)
    outputs = upsample_to_input(x, padded, inputs)
    return Model(inputs, outputs, name=name)

"""DeepLab v1, v2, v3 and v3+ (Chen et al.).

- v1: "Semantic Image Segmentation with Deep Convolutional Nets and Fully
  Connected CRFs", ICLR 2015 (the "LargeFOV" model).
- v2: "DeepLab: Semantic Image Segmentation with Deep Convolutional Nets, Atrous
  Convolution, and Fully Connected CRFs", TPAMI 2017 (ASPP, sum fusion).
- v3: "Rethinking Atrous Convolution for Semantic Image Segmentation", 2017
  (ASPP with image pooling, multi-grid).
- v3+: "Encoder-Decoder with Atrous Separable Convolution for Semantic Image
  Segmentation", ECCV 2018 (decoder, separable convolutions, aligned Xception).

The fully connected CRF of v1 / v2 is post-processing (see the inference tools),
not part of these models.
"""

import keras
from keras import layers

from keras_seg import validation
from keras_seg.applications._base import (
    begin,
    finish,
    pad_input,
    refuse_backbone,
    resolve_encoder,
    upsample_to_input,
)
from keras_seg.applications._common import conv_bn_relu, fcn_head, logits_head
from keras_seg.layers import (
    ASPP,
    ASPPSum,
    AtrousDepthwiseConv2D,
    AtrousSeparableConv2D,
    ResizeLike,
)
from keras_seg.layers.aspp import ASPP_L_RATES, ASPP_S_RATES, ASPP_V3_RATES
from keras_seg.layers.atrous import Conv2D
from keras_seg.layers.normalization import BatchNormalization
from keras_seg.model_base import logits_dtype

DEEPLABV1_PAPER_PARAMS = 20_500_000  # "LargeFOV": 20.5M parameters (Chen et al. 2015, Table 2)

#: DeepLab-MSc: the maps that feed a two-layer MLP: the input image and pool1..pool4.
MSC_SOURCES = ("image", "P1", "P2", "P3", "P4")


def _fc8_initializer():
    # DeepLab's prototxt initialises the classifier with a Gaussian of std 0.01
    return keras.initializers.RandomNormal(stddev=0.01)


def _default_rates(name, rates, output_stride):
    if rates is not None:
        return validation.positive_int_tuple(name, "atrous_rates", rates, "(6, 12, 18)")
    # (6, 12, 18) at output stride 16, doubled at output stride 8 (v3 Sec. 3.3), halved at
    # 32 (a backbone that cannot be dilated, e.g. a keras.applications model)
    return tuple(r * 16 // output_stride for r in ASPP_V3_RATES)


def DeepLabV1(
    num_classes=21,
    input_shape=(None, None, 3),
    backbone_options=None,
    fc_filters=1024,
    fc_dilation=12,
    dropout=0.5,
    multi_scale=False,
    multi_scale_filters=128,
    name="deeplabv1",
    backbone=None,
):
    """DeepLab v1 "LargeFOV" (Chen et al. 2015).

    VGG-16 with pool4 and pool5 as 3x3 stride-1 max poolings (output stride 8),
    conv5 dilated by 2, fc6 a 3x3 convolution at rate 12 with 1024 channels, fc7
    1x1 1024 (ReLU + dropout 0.5 after each), fc8 a 1x1 convolution to the
    classes (Gaussian init, std 0.01); the logits are upsampled bilinearly to
    the input. 20.5M parameters at 21 classes (paper: 20.5M). The paper trains
    against labels downsampled by 8; this model returns full-resolution logits
    (the same function, computed with one more bilinear resize). The CRF is a
    post-processing step, not part of the model.

    ``multi_scale=True`` gives DeepLab-MSc (the paper's "multi-scale prediction",
    Sec. 4): the input image and the outputs of the first four max-poolings
    (pool1..pool4) each feed a two-layer MLP - a 3x3 conv with
    ``multi_scale_filters`` (128) channels + ReLU, a 1x1 conv 128 + ReLU - whose
    outputs (5 x 128 = 640 channels) are concatenated with fc7 before fc8. The
    paper's text does not say how the finer maps reach fc7's stride-8 grid; the
    released prototxt makes the 3x3 conv strided (8 on the image, 4 on pool1, 2 on
    pool2, 1 on pool3 and pool4), and so does this model (no resizing: the padded
    input is a multiple of 8, so every branch lands exactly on fc7's grid). As that
    prototxt, each MLP layer is followed by dropout (``dropout``, 0.5); it also
    gives each branch its own classifier and sums the scores, which is the same
    function as the paper's concatenation followed by one fc8. The MLPs add
    1,192,576 parameters and fc8 640 x ``num_classes`` more (1.21M at 21 classes;
    the paper's text gives no count). The paper fine-tunes only the new weights on a
    trained LargeFOV model (freeze ``"vgg16"`` to do the same). It works with any
    ``fc_dilation`` / ``fc_filters`` (LargeFOV is the default).

    Args:
        num_classes: number of classes (21 for PASCAL VOC).
        input_shape: ``(H, W, C)``; H and W may be None.
            Images are float32 in [0, 1] (uint8 divided by 255), as keras-seg's training pipeline
            and :func:`keras_seg.inference.predict` feed them; the model does not rescale its input.
        backbone_options: options of the VGG-16 backbone (``width_multiplier``,
            ``weights``); stride, pooling and fc settings are fixed by the paper.
        fc_filters: width of fc6 / fc7 (1024).
        fc_dilation: atrous rate of fc6 (12, "LargeFOV").
        dropout: dropout after fc6 and fc7 (0.5), and after each MSc MLP layer.
        multi_scale: add the DeepLab-MSc multi-scale MLP branches.
        multi_scale_filters: width of each MSc MLP layer (128).
        name: model name.
        backbone: not an option: the encoder is the paper's VGG-16 (any value other
            than None raises a ValueError saying so).

    Returns:
        A :class:`keras_seg.SegmentationModel`: ``(batch, H, W, C)`` -> float32 logits
        ``(batch, H, W, num_classes)``; output stride 8.
    """
    refuse_backbone(name, backbone, "DeepLab v1 is built on VGG-16 with stride-1 pool4 / "
                    "pool5 and the fc6 / fc7 convolutions of the paper")
    input_shape, inputs = begin(name, num_classes, input_shape)
    fixed = {"stride1_pooling": "max3x3", "fc_layers": True, "fc_filters": fc_filters,
             "fc_kernel": 3, "fc_dilation": fc_dilation, "fc_dropout": dropout}
    encoder = resolve_encoder(name, "vgg16", backbone_options, input_shape=input_shape,
                              output_stride=8,
                              named_options={k: (v, v) for k, v in fixed.items()})
    strides = encoder.strides
    padded = pad_input(inputs, encoder.stride, name)
    feats = encoder.model(padded)
    x = feats["fc7"]
    if multi_scale:
        validation.positive_int(name, "multi_scale_filters", multi_scale_filters)
        sources, source_strides = {"image": padded, **feats}, {"image": 1, **strides}
        # strided 3x3 convs bring every source to fc7's grid (8, 4, 2, 1, 1)
        branches = [_msc_mlp(sources[key], strides["P5"] // source_strides[key],
                             multi_scale_filters, dropout, key) for key in MSC_SOURCES]
        x = layers.Concatenate(name="msc_concat")([x, *branches])
    x = logits_head(x, num_classes, name="fc8", kernel_initializer=_fc8_initializer())
    return finish(inputs, upsample_to_input(x, padded, inputs), name,
                  output_stride=encoder.stride)


def _msc_mlp(x, stride, filters, dropout, key):
    """One DeepLab-MSc branch: 3x3 conv (stride ``stride``) + ReLU, 1x1 conv + ReLU."""
    name = f"msc_{key.lower()}"
    # The source's sides are multiples of ``stride``. For a stride above 2, "same" pads
    # nothing there, so "valid" is the same convolution, written so because the ONNX
    # export of a "same" 3x3 conv at stride 8 (tf2onnx -> onnxruntime) gave wrong numbers.
    padding = "valid" if stride > 2 else "same"
    x = Conv2D(filters, 3, strides=stride, padding=padding, activation="relu",
                      name=name + "_conv1")(x)
    x = layers.Dropout(dropout, name=name + "_drop1")(x)
    x = Conv2D(filters, 1, activation="relu", name=name + "_conv2")(x)
    return layers.Dropout(dropout, name=name + "_drop2")(x)


def DeepLabV2(
    num_classes=21,
    input_shape=(None, None, 3),
    backbone="resnet101",
    backbone_options=None,
    aspp="L",
    output_stride=8,
    fc_filters=1024,
    dropout=0.5,
    name="deeplabv2",
):
    """DeepLab v2 with ASPP (Chen et al. 2017, TPAMI).

    The last feature map of an atrous backbone (ResNet-101 at output stride 8
    by default) feeds :class:`keras_seg.layers.ASPPSum`: four parallel 3x3
    convolutions straight to the classes at rates 6, 12, 18, 24 (ASPP-L) or
    2, 4, 8, 12 (ASPP-S), summed. With ``backbone="vgg16"`` (pool4 / pool5 3x3
    stride 1, conv5 dilated by 2) each branch is fc6 (3x3, rate r, 1024) - fc7
    (1x1, 1024) - fc8 (1x1 to the classes), as the paper's VGG variant. The sum
    is upsampled bilinearly to the input.

    Args:
        num_classes: number of classes (21 for PASCAL VOC).
        input_shape: ``(H, W, C)``; H and W may be None.
            Images are float32 in [0, 1] (uint8 divided by 255), as keras-seg's training pipeline
            and :func:`keras_seg.inference.predict` feed them; the model does not rescale its input.
        backbone: ``"resnet101"`` (paper), another backbone name, ``"vgg16"``
            (the VGG variant) or a pyramid ``keras.Model``.
        backbone_options: options of a named backbone (``width_multiplier``,
            ``weights``...).
        aspp: ``"L"`` (rates 6, 12, 18, 24), ``"S"`` (2, 4, 8, 12) or a tuple of
            rates.
        output_stride: 8 (paper) or 16. A named backbone is dilated to it; a
            passed-in model must already have it (ValueError otherwise).
        fc_filters: width of fc6 / fc7 in the VGG variant (1024).
        dropout: dropout after fc6 / fc7 in the VGG variant (0.5).
        name: model name.

    Returns:
        A functional ``keras.Model``: ``(batch, H, W, C)`` -> float32 logits
        ``(batch, H, W, num_classes)``.
    """
    input_shape, inputs = begin(name, num_classes, input_shape)
    validation.output_stride(name, output_stride, (8, 16))
    if isinstance(aspp, str):
        if aspp.upper() not in ("L", "S"):
            raise ValueError(f"{name}: aspp must be 'L', 'S' or a tuple of rates, got {aspp!r}.")
        rates = ASPP_L_RATES if aspp.upper() == "L" else ASPP_S_RATES
    else:
        rates = aspp
    vgg = isinstance(backbone, str) and backbone.lower() == "vgg16"
    encoder = resolve_encoder(
        name, backbone, backbone_options, input_shape=input_shape, output_stride=output_stride,
        named_options={"stride1_pooling": ("max3x3", "max3x3")} if vgg else None)
    padded = pad_input(inputs, encoder.stride, name)
    x = encoder.model(padded)[encoder.deepest()]
    x = ASPPSum(num_classes, rates=rates, hidden_filters=fc_filters if vgg else None,
                dropout=dropout, dtype=logits_dtype(), name="aspp")(x)
    return finish(inputs, upsample_to_input(x, padded, inputs), name,
                  output_stride=encoder.stride)


def DeepLabV3(
    num_classes=21,
    input_shape=(None, None, 3),
    backbone="resnet101",
    backbone_options=None,
    output_stride=16,
    multi_grid=(1, 2, 4),
    atrous_rates=None,
    filters=256,
    image_pooling=True,
    head_conv=False,
    aspp_dropout=0.0,
    aux=False,
    pad_to_stride=True,
    align_corners=False,
    bn_epsilon=1e-3,
    name="deeplabv3",
):
    """DeepLab v3 (Chen et al. 2017, "Rethinking Atrous Convolution").

    Atrous ResNet-101 (the paper's best; ResNet-50 in its ablations) at output
    stride 16 (block4 dilated by 2, multi-grid (1, 2, 4): unit rates 2, 4, 8)
    or 8 (block3 dilated 2, block4 4 x multi-grid); :class:`ASPP` with a 1x1
    branch, three 3x3 branches at rates 6, 12, 18 (doubled to 12, 24, 36 at
    output stride 8) and the image-pooling branch, 256 channels with BN + ReLU,
    concatenated (1280) and projected by a 1x1 conv 256 + BN + ReLU; a 1x1
    conv to the classes; bilinear upsampling to the input.

    Args:
        num_classes: number of classes (21 for PASCAL VOC).
        input_shape: ``(H, W, C)``; H and W may be None.
            Images are float32 in [0, 1] (uint8 divided by 255), as keras-seg's training pipeline
            and :func:`keras_seg.inference.predict` feed them; the model does not rescale its input.
        backbone: backbone name (``"resnet101"``, ``"resnet50"``, ``"xception"``,
            ``"mobilenetv2"``...) or a pyramid ``keras.Model``.
        backbone_options: options of a named backbone (``width_multiplier``,
            ``weights``...).
        output_stride: 16 (paper's training / default), 8, or 32 (for a passed-in
            model that cannot be dilated; ASPP rates halved). A named backbone is
            dilated to it; a passed-in model must already have it (ValueError otherwise).
        multi_grid: unit-rate multipliers of the last stage (named backbones
            other than VGG); None disables.
        atrous_rates: ASPP rates; None means (6, 12, 18) at output stride 16 and
            (12, 24, 36) at 8 (the stride of the deepest feature is used).
        filters: ASPP width (256).
        image_pooling: keep the image-level branch.
        head_conv: add a 3x3 conv ``filters`` (no bias) + BN + ReLU between the ASPP
            and the classifier (layers ``head_conv`` / ``head_bn``), as torchvision's
            ``DeepLabHead`` and segmentation_models.pytorch's ``DeepLabV3Decoder``
            have; the paper has none (False).
        aspp_dropout: dropout after the ASPP projection (0; torchvision and
            segmentation_models.pytorch use 0.5).
        aux: add torchvision's auxiliary head (:func:`fcn_head` on the stride-16
            ``"P4"`` features, upsampled to the input): the model then returns
            ``{"logits", "aux"}``, losses weighted 1 and 0.5 (torchvision's training
            reference). Not in the paper (False).
        pad_to_stride: True (default) pads the input at the bottom / right to a
            multiple of the output stride and crops the logits back; False runs the
            network on the image as it is, as the PyTorch models do (odd sides then
            round up at each stride; needed for parity with torchvision at sizes
            that are not multiples of the stride).
        align_corners: resize the logits to the input with ``align_corners=True``
            geometry, as segmentation_models.pytorch's ``UpsamplingBilinear2d``
            (False: half-pixel centres, as the paper's code and torchvision).
        bn_epsilon: epsilon of the BatchNorms of the ASPP and the heads (Keras'
            1e-3; PyTorch's 1e-5 for converted weights). The backbone's are its own
            (``backbone_options``).
        name: model name.

    Returns:
        A functional ``keras.Model``: ``(batch, H, W, C)`` -> float32 logits
        ``(batch, H, W, num_classes)``; with ``aux=True`` a dict ``{"logits": ...,
        "aux": ...}`` of two such maps.
    """
    input_shape, inputs = begin(name, num_classes, input_shape)
    validation.output_stride(name, output_stride, (8, 16, 32))
    encoder = resolve_encoder(
        name, backbone, backbone_options, input_shape=input_shape, output_stride=output_stride,
        levels={"P4": "the input of the auxiliary head"} if aux else None,
        named_options={"multi_grid": (validation.multi_grid(name, multi_grid), (1, 2, 4))})
    rates = _default_rates(name, atrous_rates, output_stride)
    padded = pad_input(inputs, encoder.stride, name) if pad_to_stride else inputs
    feats = encoder.model(padded)
    x = ASPP(filters, rates=rates, image_pooling=image_pooling, dropout=aspp_dropout,
             bn_epsilon=bn_epsilon, name="aspp")(feats[encoder.deepest()])
    if head_conv:
        x = conv_bn_relu(x, filters, 3, "head", bn_epsilon=bn_epsilon)
    x = logits_head(x, num_classes, name="classifier")
    logits = upsample_to_input(x, padded, inputs, align_corners=align_corners)
    if not aux:
        return finish(inputs, logits, name, output_stride=encoder.stride)
    side = fcn_head(feats["P4"], num_classes, "aux", bn_epsilon=bn_epsilon)
    side = upsample_to_input(side, padded, inputs, name="aux", align_corners=align_corners)
    return finish(inputs, {"logits": logits, "aux": side}, name, output_stride=encoder.stride,
                  loss_weights={"logits": 1.0, "aux": 0.5})


def _decoder_conv(x, filters, separable, name, bn_between=True, bn_epsilon=1e-3):
    """A 3x3 conv ``filters`` + BN + ReLU; depthwise-separable with ``separable``: with
    BN + ReLU between the depthwise and the pointwise conv (``bn_between``, the paper's
    code) or as one ``SeparableConv2D`` (``{name}_sepconv``, segmentation_models.pytorch)."""
    if not separable:
        return conv_bn_relu(x, filters, 3, name, bn_epsilon=bn_epsilon)
    if bn_between:
        x = AtrousDepthwiseConv2D(3, padding="same", use_bias=False,
                                  name=name + "_depthwise")(x)
        x = BatchNormalization(epsilon=bn_epsilon, name=name + "_depthwise_bn")(x)
        x = layers.Activation("relu", name=name + "_depthwise_relu")(x)
        x = Conv2D(filters, 1, use_bias=False, kernel_initializer="he_normal",
                          name=name + "_pointwise")(x)
    else:
        x = AtrousSeparableConv2D(filters, 3, padding="same", use_bias=False,
                                  pointwise_initializer="he_normal", name=name + "_sepconv")(x)
    x = BatchNormalization(epsilon=bn_epsilon, name=name + "_bn")(x)
    return layers.Activation("relu", name=name + "_relu")(x)


def DeepLabV3Plus(
    num_classes=21,
    input_shape=(None, None, 3),
    backbone="xception",
    backbone_options=None,
    output_stride=16,
    multi_grid=None,
    atrous_rates=None,
    filters=256,
    separable=None,
    low_level_filters=48,
    decoder_filters=256,
    separable_bn_between=True,
    post_aspp_conv=False,
    decoder_convs=2,
    aspp_dropout=0.0,
    align_corners=False,
    bn_epsilon=1e-3,
    name="deeplabv3plus",
):
    """DeepLab v3+ (Chen et al. 2018).

    Encoder: DeepLab v3 (:class:`ASPP` with image pooling, rates 6, 12, 18 at
    output stride 16) on the modified aligned Xception (Xception-65) with
    depthwise-separable ASPP branches. Decoder: the stride-4 low-level features
    (the backbone's ``"P2"``) -> 1x1 conv 48 + BN + ReLU; the encoder output is
    upsampled bilinearly (x4 at output stride 16) and concatenated with them;
    two 3x3 convs 256 + BN + ReLU (depthwise-separable in the Xception
    version); a 1x1 conv to the classes; bilinear upsampling x4 to the input.

    segmentation_models.pytorch's ``DeepLabV3Plus`` is this builder with
    ``atrous_rates=(12, 24, 36), separable=True, separable_bn_between=False,
    post_aspp_conv=True, decoder_convs=1, aspp_dropout=0.5, align_corners=True,
    bn_epsilon=1e-5`` on a PyTorch-style ResNet at output stride 16
    (``keras_seg.convert``, ``"smp/DeepLabV3Plus-<encoder>"``). ``separable=True,
    separable_bn_between=False, decoder_convs=1`` alone is its lighter decoder.

    Args:
        num_classes: number of classes (21 for PASCAL VOC).
        input_shape: ``(H, W, C)``; H and W may be None.
            Images are float32 in [0, 1] (uint8 divided by 255), as keras-seg's training pipeline
            and :func:`keras_seg.inference.predict` feed them; the model does not rescale its input.
        backbone: ``"xception"`` (paper), ``"resnet101"`` / ``"resnet50"``,
            ``"mobilenetv2"``, or a pyramid ``keras.Model`` with ``"P2"``.
        backbone_options: options of a named backbone (``width_multiplier``,
            ``weights``...).
        output_stride: 16 (default), 8 (rates doubled), or 32 (rates halved; for a
            passed-in model that cannot be dilated, e.g. a keras.applications
            MobileNetV2). A named backbone is dilated to it; a passed-in model must
            already have it (ValueError otherwise).
        multi_grid: unit-rate multipliers of the last stage; None (the
            Xception model of the paper); e.g. (1, 2, 4) for ResNet as in v3.
        atrous_rates: ASPP rates; None: (6, 12, 18) at 16, (12, 24, 36) at 8.
        filters: ASPP width (256).
        separable: depthwise-separable ASPP and decoder convs; None means True
            for the Xception backbone and False otherwise.
        low_level_filters: width of the low-level projection (48).
        decoder_filters: width of the decoder 3x3 convs (256).
        separable_bn_between: with ``separable``: True (default, the paper's code)
            has BN + ReLU between each depthwise and pointwise conv; False makes
            each separable conv one ``SeparableConv2D`` (depthwise straight into
            pointwise) followed by BN + ReLU, as segmentation_models.pytorch
            (ASPP branches, the post-ASPP conv and the decoder convs alike).
        post_aspp_conv: add a 3x3 conv ``filters`` + BN + ReLU after the ASPP,
            before the upsampling (separable with ``separable``; layers
            ``post_aspp_*``), as segmentation_models.pytorch's decoder; the paper
            has none (False).
        decoder_convs: number of 3x3 convs after the concatenation (2, paper; 1 in
            segmentation_models.pytorch); layers ``decoder_conv1``, ``decoder_conv2``...
        aspp_dropout: dropout after the ASPP projection (0; 0.1 in the paper's
            released code, 0.5 in segmentation_models.pytorch).
        align_corners: upsample the ASPP output to the low-level features and the
            logits to the input with ``align_corners=True`` geometry, as
            segmentation_models.pytorch (False: half-pixel centres).
        bn_epsilon: epsilon of the BatchNorms of the ASPP and the decoder (Keras'
            1e-3; PyTorch's 1e-5 for converted weights). The backbone's are its own
            (``backbone_options``).
        name: model name.

    Returns:
        A functional ``keras.Model``: ``(batch, H, W, C)`` -> float32 logits
        ``(batch, H, W, num_classes)``.
    """
    input_shape, inputs = begin(name, num_classes, input_shape)
    validation.output_stride(name, output_stride, (8, 16, 32))
    validation.positive_int(name, "decoder_convs", decoder_convs)
    if separable is None:
        separable = isinstance(backbone, str) and backbone.lower() == "xception"
    encoder = resolve_encoder(
        name, backbone, backbone_options, input_shape=input_shape, output_stride=output_stride,
        levels={"P2": "the stride-4 low-level features of the decoder"},
        named_options={"multi_grid": (validation.multi_grid(name, multi_grid), None)})
    rates = _default_rates(name, atrous_rates, output_stride)
    padded = pad_input(inputs, encoder.stride, name)
    feats = encoder.model(padded)
    x = ASPP(filters, rates=rates, separable=separable,
             separable_bn_between=separable_bn_between, dropout=aspp_dropout,
             bn_epsilon=bn_epsilon, name="aspp")(feats[encoder.deepest()])
    if post_aspp_conv:
        x = _decoder_conv(x, filters, separable, "post_aspp", separable_bn_between, bn_epsilon)
    low = conv_bn_relu(feats["P2"], low_level_filters, 1, "decoder_low_level",
                       bn_epsilon=bn_epsilon)
    x = ResizeLike("bilinear", align_corners=align_corners, name="decoder_upsample")([x, low])
    x = layers.Concatenate(name="decoder_concat")([x, low])
    for i in range(decoder_convs):
        x = _decoder_conv(x, decoder_filters, separable, f"decoder_conv{i + 1}",
                          separable_bn_between, bn_epsilon)
    x = logits_head(x, num_classes, name="classifier")
    return finish(inputs, upsample_to_input(x, padded, inputs, align_corners=align_corners),
                  name, output_stride=encoder.stride)

"""SegNet (Badrinarayanan, Kendall & Cipolla 2017, "SegNet: A Deep Convolutional
Encoder-Decoder Architecture for Image Segmentation", TPAMI).
"""

from keras import layers

from keras_seg import validation
from keras_seg.applications._base import begin, crop_output, finish, pad_input, refuse_backbone
from keras_seg.applications._upsampling import check_upsampling, interpolate
from keras_seg.layers import MaxPooling2D, MaxPoolingWithArgmax2D, MaxUnpooling2D
from keras_seg.layers.atrous import Conv2D, Conv2DTranspose
from keras_seg.layers.normalization import BatchNormalization
from keras_seg.model_base import logits_dtype

_CONVS = (2, 2, 3, 3, 3)  # VGG16's conv layers per stage


def _conv_bn_relu(x, filters, name):
    x = Conv2D(filters, 3, padding="same", kernel_initializer="he_normal",
                      name=name + "_conv")(x)
    x = BatchNormalization(name=name + "_bn")(x)
    return layers.Activation("relu", name=name + "_relu")(x)


def SegNet(num_classes, input_shape=(None, None, 3), filters=(64, 128, 256, 512, 512),
           convs=_CONVS, upsampling="unpool", name="segnet", backbone=None):
    """SegNet (Badrinarayanan et al. 2017).

    Encoder: the 13 convolutional layers of VGG16 (3x3 conv + BatchNorm + ReLU;
    stages of 2, 2, 3, 3, 3 convs, widths 64-128-256-512-512), each stage ending
    in a 2x2 stride-2 max pooling that keeps its argmax indices
    (:class:`keras_seg.layers.MaxPoolingWithArgmax2D`); no fully connected
    layers (14.7M parameters). Decoder: the mirror image; each stage max-unpools
    with the indices of the matching encoder pooling
    (:class:`keras_seg.layers.MaxUnpooling2D`, no learned upsampling), then 3x3
    conv + BatchNorm + ReLU layers whose last one halves to the width of the next
    stage; the last of the 13 decoder convs gives the class scores. The input is
    padded to a multiple of 32 and cropped back, so any size works. Encoder
    layers carry the names of ``keras.applications.VGG16`` (``block1_conv1``...).

    Args:
        num_classes: number of output classes.
        input_shape: ``(H, W, C)``; H and W may be None (any size).
            Images are float32 in [0, 1] (uint8 divided by 255), as keras-seg's training pipeline
            and :func:`keras_seg.inference.predict` feed them; the model does not rescale its input.
        filters: widths of the encoder stages (the paper's VGG16, five stages, by
            default; smaller or fewer give a lighter SegNet).
        convs: conv layers per stage (``(2, 2, 3, 3, 3)``, VGG16), one per entry
            of ``filters``. With ``n`` stages the input is padded to a multiple
            of ``2**n``.
        upsampling: how each decoder stage upsamples x2, keeping the width
            ``w`` of the stage: ``"unpool"`` (the paper: max unpooling with the
            encoder's pooling indices, no parameters), ``"transpose"`` (a learned
            2x2 stride-2 transposed conv ``w -> w`` with bias, ``4 * w * w + w``
            parameters; the encoder pools without keeping indices) or
            ``"bilinear"`` / ``"nearest"`` (fixed interpolation, no parameters, no
            indices kept).
        name: model name.
        backbone: not an option: the encoder is part of the architecture (its
            poolings keep the indices the decoder unpools with; width and depth are
            ``filters`` / ``convs``); any value other than None raises a ValueError.

    Returns:
        A :class:`keras_seg.SegmentationModel`: ``(batch, H, W, C)`` -> float32 logits
        ``(batch, H, W, num_classes)``; output stride ``2 ** len(filters)``.
    """
    refuse_backbone(name, backbone, "its VGG16-BN encoder keeps the max-pooling indices "
                    "that the decoder unpools with (set its widths with filters= / convs=)")
    input_shape, inputs = begin(name, num_classes, input_shape)
    check_upsampling(name, upsampling)
    filters = validation.positive_int_tuple(name, "filters", filters,
                                            "(64, 128, 256, 512, 512), one per stage")
    convs = validation.positive_int_tuple(name, "convs", convs,
                                          f"{_CONVS}, one per stage of filters",
                                          length=len(filters))
    stages = len(filters)
    stride = 2**stages
    x = pad_input(inputs, stride, name)
    switches = []
    for s, (width, n_convs) in enumerate(zip(filters, convs, strict=True), start=1):
        for c in range(1, n_convs + 1):
            x = Conv2D(width, 3, padding="same", kernel_initializer="he_normal",
                              name=f"block{s}_conv{c}")(x)
            x = BatchNormalization(name=f"block{s}_bn{c}")(x)
            x = layers.Activation("relu", name=f"block{s}_relu{c}")(x)
        if upsampling == "unpool":
            before = x
            x, indices = MaxPoolingWithArgmax2D(2, name=f"block{s}_pool")(x)
            switches.append((before, indices))
        else:
            x = MaxPooling2D(2, name=f"block{s}_pool")(x)

    for s in range(stages, 0, -1):
        if upsampling == "unpool":
            before, indices = switches[s - 1]
            x = MaxUnpooling2D(2, name=f"decoder{s}_unpool")([x, indices, before])
        elif upsampling == "transpose":
            x = Conv2DTranspose(filters[s - 1], 2, strides=2,
                                       kernel_initializer="he_normal",
                                       name=f"decoder{s}_upconv")(x)
        else:
            x = interpolate(x, 2, upsampling, f"decoder{s}_{upsampling}")
        for c in range(convs[s - 1], 0, -1):  # mirrored numbering, e.g. conv3_3_D ... conv3_1_D
            if c > 1:
                x = _conv_bn_relu(x, filters[s - 1], f"decoder{s}_{c}")
            elif s > 1:
                x = _conv_bn_relu(x, filters[s - 2], f"decoder{s}_{c}")
    x = crop_output(x, inputs, "crop_to_input")
    outputs = Conv2D(num_classes, 3, padding="same", dtype=logits_dtype(), name="logits")(x)
    return finish(inputs, outputs, name, output_stride=stride)

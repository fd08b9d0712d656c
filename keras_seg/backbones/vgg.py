"""VGG-16 backbone (Simonyan & Zisserman 2015, "Very Deep Convolutional Networks
for Large-Scale Image Recognition") with the options segmentation papers need.

The 13 convolutions carry the layer names of ``keras.applications.VGG16``
(``block1_conv1`` ... ``block5_pool``) so ``weights="imagenet"`` copies them.
Options turn it into:

- FCN's encoder (Long et al. 2015): ``fc_layers=True`` appends fc6 (7x7, 4096)
  and fc7 (1x1, 4096) as convolutions with dropout 0.5;
- DeepLab v1 LargeFOV (Chen et al. 2015): ``output_stride=8`` keeps pool4 and
  pool5 as 3x3 stride-1 poolings, dilates conv5 by 2, and fc6 is 3x3 rate 12
  with 1024 channels (``fc_kernel=3, fc_dilation=12, fc_filters=1024``);
- the dilation front end (Yu & Koltun 2016): ``output_stride=8,
  stride1_pooling="remove"`` drops pool4/pool5, conv5 dilation 2, fc6 7x7
  dilation 4 (``fc_dilation=4``).
"""

import keras
from keras import layers

from keras_seg.backbones._common import check_common_args, load_weights_arg, scale_width
from keras_seg.layers.atrous import Conv2D
from keras_seg.layers.normalization import BatchNormalization
from keras_seg.layers.pooling import MaxPooling2D

_STAGES = ((64, 2), (128, 2), (256, 3), (512, 3), (512, 3))


def vgg16(
    input_shape=(None, None, 3),
    weights=None,
    output_stride=32,
    stride1_pooling="max3x3",
    batch_norm=False,
    fc_layers=False,
    fc_filters=4096,
    fc_kernel=7,
    fc_dilation=1,
    fc_dropout=0.5,
    width_multiplier=1.0,
    name="vgg16",
):
    """Build a VGG-16 pyramid backbone.

    Args:
        input_shape: ``(H, W, C)``; H and W may be None.
        weights: None, ``"imagenet"`` (copied from ``keras.applications.VGG16``,
            see :func:`copy_vgg16_weights`; not with ``batch_norm``) or the path of
            a ``.weights.h5`` file.
        output_stride: 32 (plain VGG), 16 (pool5 at stride 1, and fc6 dilated
            x2) or 8 (pool4 and pool5 at stride 1, conv5 dilated by 2).
        stride1_pooling: what becomes of a pooling whose stride is removed:
            ``"max3x3"`` (3x3 max pool, stride 1, as DeepLab v1) or ``"remove"``
            (dropped, as Yu & Koltun's front end).
        batch_norm: add BatchNormalization after every conv (VGG16-BN, as SegNet).
        fc_layers: append fc6 / fc7 as convolutions (output key ``"fc7"``).
        fc_filters: width of fc6 and fc7 (4096 in FCN, 1024 in DeepLab LargeFOV).
        fc_kernel: fc6 kernel size (7 in FCN, 3 in DeepLab LargeFOV).
        fc_dilation: fc6 dilation (1 FCN, 12 DeepLab LargeFOV, 4 Yu & Koltun).
        fc_dropout: dropout after fc6 and fc7 (0.5 in the papers).
        width_multiplier: scales every width (for tests and tiny models).
        name: model name.

    Returns:
        ``keras.Model`` mapping an image ``(batch, H, W, C)`` to the outputs of
        the five poolings ``{"P1": pool1 (stride 2), ..., "P5": pool5}`` (strides
        capped at ``output_stride``) and, with ``fc_layers``, ``"fc7"`` (at the
        stride of P5).
    """
    check_common_args(name, input_shape, output_stride, width_multiplier, weights)
    if stride1_pooling not in ("max3x3", "remove"):
        raise ValueError(f"{name}: stride1_pooling must be 'max3x3' or 'remove', got "
                         f"{stride1_pooling!r}.")
    if weights == "imagenet" and batch_norm:
        raise ValueError(f"{name}: keras.applications has no VGG16-BN ImageNet weights; use "
                         "batch_norm=False or weights=None.")
    strided = {32: 5, 16: 4, 8: 3}[output_stride]  # number of poolings that keep stride 2
    inputs = keras.Input(shape=tuple(input_shape), name="image")
    x = inputs
    features = {}
    dilation = 1
    for s, (width, convs) in enumerate(_STAGES, start=1):
        width = scale_width(width, width_multiplier)
        for c in range(1, convs + 1):
            x = Conv2D(width, 3, padding="same", dilation_rate=dilation,
                              activation=None if batch_norm else "relu",
                              name=f"block{s}_conv{c}")(x)
            if batch_norm:
                x = BatchNormalization(name=f"block{s}_bn{c}")(x)
                x = layers.Activation("relu", name=f"block{s}_relu{c}")(x)
        if s <= strided:
            x = MaxPooling2D(2, strides=2, padding="same", name=f"block{s}_pool")(x)
        else:
            if stride1_pooling == "max3x3":
                x = MaxPooling2D(3, strides=1, padding="same", name=f"block{s}_pool")(x)
            dilation *= 2
        features[f"P{s}"] = x
    if fc_layers:
        width = scale_width(fc_filters, width_multiplier)
        x = Conv2D(width, fc_kernel, padding="same", dilation_rate=fc_dilation,
                          activation="relu", name="fc6")(x)
        x = layers.Dropout(fc_dropout, name="drop6")(x)
        x = Conv2D(width, 1, activation="relu", name="fc7")(x)
        x = layers.Dropout(fc_dropout, name="drop7")(x)
        features["fc7"] = x

    model = keras.Model(inputs, features, name=name)
    return load_weights_arg(model, weights, _vgg16_app, copy_fn=copy_vgg16_weights)


def _vgg16_app(weights):
    return keras.applications.VGG16(include_top=True, weights=weights)


def copy_vgg16_weights(source, target):
    """Copy ``keras.applications.VGG16`` weights (built with ``include_top=True``)
    into a native :func:`vgg16` backbone.

    The 13 convolutions are copied by name. When the backbone has FCN's fc6 / fc7
    (7x7 and 1x1, 4096 wide, no dilation), the classifier's dense layers ``fc1`` /
    ``fc2`` are reshaped into them, exactly the "convolutionalization" of Long et al.
    2015; any other fc6 / fc7 shape is left randomly initialised.
    """
    from keras_seg.backbones.pretrained import copy_weights_by_name

    copy_weights_by_name(source, target, skip_missing_in_source=True)
    names = {layer.name for layer in target.layers}
    if "fc6" in names:
        fc6, fc7 = target.get_layer("fc6"), target.get_layer("fc7")
        k6, _ = fc6.get_weights()
        k7, _ = fc7.get_weights()
        w1, b1 = source.get_layer("fc1").get_weights()
        w2, b2 = source.get_layer("fc2").get_weights()
        if k6.shape == (7, 7, 512, 4096) and k7.shape == (1, 1, 4096, 4096) and \
                fc6.dilation_rate == (1, 1):
            fc6.set_weights([w1.reshape(k6.shape), b1])
            fc7.set_weights([w2.reshape(k7.shape), b2])

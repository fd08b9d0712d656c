"""Decoder building blocks shared by the architecture builders."""

from keras import layers

from keras_seg.layers.atrous import Conv2D
from keras_seg.layers.normalization import BatchNormalization
from keras_seg.model_base import logits_dtype


def logits_head(x, num_classes, name="logits", kernel_initializer="glorot_uniform"):
    """1x1 conv to ``num_classes`` computed and returned in float32 (float64 in a
    float64 model: :func:`keras_seg.model_base.logits_dtype`).

    The head keeps float32 under a mixed-precision policy so that losses and
    softmax see full-precision logits.
    """
    return Conv2D(num_classes, 1, dtype=logits_dtype(),
                         kernel_initializer=kernel_initializer, name=name)(x)


def as_float32(x, name):
    """Identity that casts to ``logits_dtype()`` (the last layer of every model)."""
    return layers.Activation("linear", dtype=logits_dtype(), name=name)(x)


def conv_bn_relu(x, filters, kernel_size, name, batch_norm=True, padding="same",
                 dilation_rate=1, strides=1, bn_epsilon=1e-3):
    x = Conv2D(filters, kernel_size, padding=padding, strides=strides,
                      dilation_rate=dilation_rate, use_bias=not batch_norm,
                      kernel_initializer="he_normal", name=name + "_conv")(x)
    if batch_norm:
        x = BatchNormalization(epsilon=bn_epsilon, name=name + "_bn")(x)
    return layers.Activation("relu", name=name + "_relu")(x)


def fcn_head(x, num_classes, name, dropout=0.1, bn_epsilon=1e-5):
    """torchvision's ``FCNHead``: a 3x3 conv to a quarter of the input channels (no
    bias) + BatchNorm + ReLU + dropout, then a 1x1 conv to ``num_classes`` (float32).

    The head of torchvision's FCN-ResNet and the auxiliary head of its FCN and
    DeepLab v3 models (on the stride-16 ``"P4"`` features). Layers: ``{name}_conv``,
    ``{name}_bn``, ``{name}_relu``, ``{name}_dropout``, ``{name}_classifier``.
    """
    channels = int(x.shape[-1]) // 4
    x = Conv2D(channels, 3, padding="same", use_bias=False,
                      kernel_initializer="he_normal", name=name + "_conv")(x)
    x = BatchNormalization(epsilon=bn_epsilon, name=name + "_bn")(x)
    x = layers.Activation("relu", name=name + "_relu")(x)
    x = layers.Dropout(dropout, name=name + "_dropout")(x)
    return logits_head(x, num_classes, name=name + "_classifier")

"""Building blocks shared by the architecture builders."""

import keras
from keras import layers

from keras_seg.layers import CropToReference, PadToMultiple


def check_input_shape(name, input_shape):
    """Validate ``(H, W, C)`` and return it as a tuple."""
    try:
        shape = tuple(input_shape)
    except TypeError:
        shape = None
    if shape is None or len(shape) != 3:
        raise ValueError(
            f"{name}: input_shape must be (height, width, channels), e.g. (None, None, 3); "
            f"got {input_shape!r}."
        )
    if shape[-1] is None or int(shape[-1]) < 1:
        raise ValueError(f"{name}: the channel count (last entry of input_shape) must be a "
                         f"positive int, got {input_shape!r}.")
    return shape


def check_num_classes(name, num_classes):
    if not isinstance(num_classes, int) or isinstance(num_classes, bool) or num_classes < 1:
        raise ValueError(f"{name}: num_classes must be a positive int, got {num_classes!r}.")


def pad_input(inputs, multiple, name):
    """Pad the image to a multiple of the network stride (undone by :func:`crop_output`)."""
    return PadToMultiple(multiple, name=f"{name}_pad_to_{multiple}")(inputs)


def crop_output(x, reference, name):
    return CropToReference("top_left", name=name)([x, reference])


def logits_head(x, num_classes, name="logits", kernel_initializer="glorot_uniform"):
    """1x1 conv to ``num_classes`` computed and returned in float32.

    The head keeps float32 under a mixed-precision policy so that losses and
    softmax see full-precision logits.
    """
    return layers.Conv2D(num_classes, 1, dtype="float32", kernel_initializer=kernel_initializer,
                         name=name)(x)


def as_float32(x, name):
    """Identity that casts to float32 (the last layer of every model)."""
    return layers.Activation("linear", dtype="float32", name=name)(x)


def conv_bn_relu(x, filters, kernel_size, name, batch_norm=True, padding="same",
                 dilation_rate=1, strides=1):
    x = layers.Conv2D(filters, kernel_size, padding=padding, strides=strides,
                      dilation_rate=dilation_rate, use_bias=not batch_norm,
                      kernel_initializer="he_normal", name=name + "_conv")(x)
    if batch_norm:
        x = layers.BatchNormalization(name=name + "_bn")(x)
    return layers.Activation("relu", name=name + "_relu")(x)


def model_input(input_shape):
    return keras.Input(shape=input_shape, name="image")

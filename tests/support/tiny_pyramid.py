"""A five-conv pyramid backbone for fast harness runs of the dilated-net heads.

The real backbones (dilated ResNet, aligned Xception, MobileNetV2) are deep even
at ``width_multiplier=0.125``, and tracing them dominates test time; their own
tests live in ``test_backbones.py``. The DeepLab / PSPNet tests check the wiring
to the real backbones by building them, and train the heads on this stand-in,
which follows the same contract: image -> ``{"P1": stride 2, ..., "P5"}``, deeper
levels kept at ``output_stride`` and dilated instead.
"""

import keras
from keras import layers


def tiny_pyramid(output_stride=8, width=8, channels=3, name="tiny_pyramid"):
    inputs = keras.Input((None, None, channels), name="image")
    x, feats, stride, rate = inputs, {}, 1, 1
    for level, w in enumerate((width, width, 2 * width, 2 * width, 4 * width), start=1):
        if stride * 2 <= output_stride:
            x = layers.Conv2D(w, 3, strides=2, padding="same", activation="relu",
                              name=f"p{level}_conv")(x)
            stride *= 2
        else:
            rate *= 2
            x = layers.Conv2D(w, 3, padding="same", dilation_rate=rate, activation="relu",
                              name=f"p{level}_conv")(x)
        feats[f"P{level}"] = x
    return keras.Model(inputs, feats, name=name)

"""Initializers used by the segmentation architectures."""

import math

import keras
import numpy as np


def bilinear_kernel_1d(kernel_size):
    """The 1-D bilinear interpolation filter of FCN (Long et al. 2015).

    ``f = ceil(k / 2)``, ``c = (2f - 1 - f % 2) / (2f)``,
    ``w[x] = 1 - |x / f - c|`` for ``x = 0 .. k - 1``. The 2-D filter is the outer
    product. Returns a float64 numpy array of length ``kernel_size``.
    """
    f = math.ceil(kernel_size / 2)
    c = (2 * f - 1 - f % 2) / (2.0 * f)
    x = np.arange(kernel_size, dtype="float64")
    return 1.0 - np.abs(x / f - c)


@keras.saving.register_keras_serializable(package="keras_seg")
class BilinearUpsampling(keras.initializers.Initializer):
    """Kernel initializer that makes a ``Conv2DTranspose`` a bilinear upsampler.

    FCN (Long, Shelhamer & Darrell 2015, "Fully Convolutional Networks for
    Semantic Segmentation") initializes its deconvolution layers to bilinear
    interpolation: a per-class diagonal kernel, channel ``c`` of the output is the
    bilinear filter (:func:`bilinear_kernel_1d`, outer product) applied to channel
    ``c`` of the input, zero weight between different channels. A transposed
    convolution with ``kernel_size = 2 * s``, ``strides = s`` and
    ``padding="same"`` initialized with it equals a bilinear (half-pixel centres)
    upsampling by ``s`` away from the borders.

    Takes no argument. Called with ``shape = (kh, kw, out_channels,
    in_channels)`` (the kernel layout of ``keras.layers.Conv2DTranspose``);
    ``out_channels`` must equal ``in_channels``.
    """

    def __call__(self, shape, dtype=None):
        if len(shape) != 4 or shape[2] != shape[3]:
            raise ValueError(
                "BilinearUpsampling initializes a Conv2DTranspose kernel of shape (kh, kw, "
                f"channels, channels) with as many filters as input channels; got shape "
                f"{tuple(shape)}. Set filters equal to the input channel count."
            )
        kh, kw, channels, _ = shape
        filt = np.outer(bilinear_kernel_1d(kh), bilinear_kernel_1d(kw))
        kernel = np.zeros(shape, dtype="float32")
        for c in range(channels):
            kernel[:, :, c, c] = filt
        return keras.ops.convert_to_tensor(kernel, dtype=dtype or keras.backend.floatx())

    def get_config(self):
        return {}

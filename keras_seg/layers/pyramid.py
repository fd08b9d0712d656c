"""Adaptive average pooling and PSPNet's pyramid pooling module (Zhao et al. 2017,
"Pyramid Scene Parsing Network", CVPR)."""

import keras
import numpy as np
from keras import ops

from keras_seg import ops as seg_ops
from keras_seg import validation


def adaptive_pool_bounds(size, bins):
    """Bin boundaries of adaptive average pooling along one axis (numpy ints).

    As PyTorch's ``adaptive_avg_pool2d``: bin ``i`` of ``bins`` covers
    ``[floor(i * size / bins), ceil((i + 1) * size / bins))``; bins overlap when
    ``size`` is not divisible by ``bins`` and every bin is non-empty, also when
    ``size < bins``.
    """
    i = np.arange(bins)
    return (i * size) // bins, ((i + 1) * size + bins - 1) // bins


def _pooling_matrix(size, bins, dtype):
    """``(bins, size)`` matrix whose row ``i`` averages bin ``i`` (size may be dynamic)."""
    if isinstance(size, (int, np.integer)):
        start, end = adaptive_pool_bounds(int(size), bins)
        pos = np.arange(int(size))[None, :]
        mask = (pos >= start[:, None]) & (pos < end[:, None])
        matrix = mask / (end - start)[:, None]
        return ops.convert_to_tensor(matrix.astype("float32"), dtype=dtype)
    size = ops.cast(size, "int32")
    i = ops.arange(bins, dtype="int32")
    start = (i * size) // bins
    end = ((i + 1) * size + bins - 1) // bins
    pos = ops.arange(size, dtype="int32")
    mask = ops.logical_and(pos[None, :] >= start[:, None], pos[None, :] < end[:, None])
    counts = ops.cast(end - start, dtype)
    return ops.cast(mask, dtype) / counts[:, None]


def adaptive_average_pool(x, output_size):
    """Adaptive average pooling of an NHWC tensor to ``output_size = (bh, bw)``.

    Computed as two small matrix products with bin-averaging matrices, which is
    exact for any input size (divisible by the bins or not), works when the
    size is only known at run time (inside ``fit`` / export tracing on every
    backend), and exports as plain matrix multiplications.
    """
    h, w = seg_ops.spatial_shape(x)
    mh = _pooling_matrix(h, output_size[0], x.dtype)
    mw = _pooling_matrix(w, output_size[1], x.dtype)
    y = ops.einsum("ih,nhwc->niwc", mh, x)
    return ops.einsum("jw,niwc->nijc", mw, y)


def _check_output_size(name, output_size):
    if isinstance(output_size, int) and not isinstance(output_size, bool):
        output_size = (output_size, output_size)
    try:
        output_size = tuple(int(s) for s in output_size)
    except (TypeError, ValueError):
        output_size = None
    if output_size is None or len(output_size) != 2 or min(output_size) < 1:
        raise ValueError(f"{name}: output_size must be a positive int or a pair of positive "
                         f"ints, got {output_size!r}.")
    return output_size


@keras.saving.register_keras_serializable(package="keras_seg")
class AdaptiveAveragePooling2D(keras.layers.Layer):
    """Adaptive average pooling to a fixed grid, with PyTorch's bin boundaries.

    Bin ``(i, j)`` averages rows ``[floor(i H / bh), ceil((i + 1) H / bh))`` and
    the same for columns, so it is correct for any ``H, W`` (including sizes not
    divisible by the bins, and sizes only known at run time). Used by
    :class:`PyramidPooling` (Zhao et al. 2017).

    Args:
        output_size: int or ``(bh, bw)``.

    Input shape: ``(batch, H, W, C)``.
    Output shape: ``(batch, bh, bw, C)``.
    """

    def __init__(self, output_size, **kwargs):
        super().__init__(**kwargs)
        self.output_size = _check_output_size("AdaptiveAveragePooling2D", output_size)

    def call(self, x):
        return adaptive_average_pool(x, self.output_size)

    def compute_output_shape(self, input_shape):
        return (input_shape[0], *self.output_size, input_shape[-1])

    def get_config(self):
        return {**super().get_config(), "output_size": list(self.output_size)}


@keras.saving.register_keras_serializable(package="keras_seg")
class PyramidPooling(keras.layers.Layer):
    """Pyramid pooling module of PSPNet (Zhao et al. 2017, Sec. 3.2, Fig. 3).

    For each bin count ``b`` (1, 2, 3, 6): adaptive average pooling to
    ``b x b``, a 1x1 convolution to ``filters`` (default ``C / len(bins)``, i.e.
    C/4 for four levels as in the paper) without bias + BatchNorm + ReLU, and
    bilinear upsampling back to the feature size; the pooled maps are
    concatenated with the input. Bilinear resizing uses half-pixel centres
    (``align_corners=False``); the released Caffe model used ``align_corners``.

    Args:
        bins: bin counts of the pyramid levels.
        filters: width of each level's 1x1 conv; None means ``C // len(bins)``.

    Input shape: ``(batch, H, W, C)``, H and W possibly dynamic.
    Output shape: ``(batch, H, W, C + len(bins) * filters)`` (2C by default).
    """

    def __init__(self, bins=(1, 2, 3, 6), filters=None, **kwargs):
        super().__init__(**kwargs)
        bins = validation.positive_int_tuple("PyramidPooling", "bins", bins, "(1, 2, 3, 6)")
        if filters is not None and (not isinstance(filters, int) or filters < 1):
            raise ValueError(f"PyramidPooling: filters must be None or a positive int, got "
                             f"{filters!r}.")
        self.bins = bins
        self.filters = filters
        self.convs = []
        self.norms = []

    def _width(self, channels):
        return self.filters or max(1, channels // len(self.bins))

    def build(self, input_shape):
        if input_shape[-1] is None:
            raise ValueError("PyramidPooling: the channel count of the input must be known.")
        channels = int(input_shape[-1])
        width = self._width(channels)
        policy = self.dtype_policy
        self.convs, self.norms = [], []
        for b in self.bins:
            conv = keras.layers.Conv2D(width, 1, use_bias=False, kernel_initializer="he_normal",
                                       dtype=policy, name=f"ppm_bin{b}_conv")
            conv.build((None, b, b, channels))
            norm = keras.layers.BatchNormalization(dtype=policy, name=f"ppm_bin{b}_bn")
            norm.build((None, b, b, width))
            self.convs.append(conv)
            self.norms.append(norm)

    def call(self, x, training=None):
        size = seg_ops.spatial_shape(x)
        outs = [x]
        for b, conv, norm in zip(self.bins, self.convs, self.norms, strict=True):
            y = adaptive_average_pool(x, (b, b))
            y = ops.relu(norm(conv(y), training=training))
            if b == 1:
                y = y * ops.ones_like(x[..., :1])  # bilinear from 1x1 = broadcast
            else:
                y = seg_ops.resize(y, size, "bilinear")
            outs.append(y)
        return ops.concatenate(outs, axis=-1)

    def compute_output_shape(self, input_shape):
        channels = input_shape[-1]
        width = None if channels is None else channels + len(self.bins) * self._width(channels)
        return (*input_shape[:3], width)

    def get_config(self):
        return {**super().get_config(), "bins": list(self.bins), "filters": self.filters}

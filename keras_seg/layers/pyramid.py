"""Adaptive average pooling and PSPNet's pyramid pooling module (Zhao et al. 2017,
"Pyramid Scene Parsing Network", CVPR)."""

import keras
import numpy as np
from keras import ops

from keras_seg import ops as seg_ops
from keras_seg import validation
from keras_seg.layers.atrous import Conv2D
from keras_seg.layers.normalization import BatchNormalization


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
    concatenated with the input, input first: ``[x, bin 1, bin 2, ...]``.
    Bilinear resizing uses half-pixel centres (``align_corners=False``) by default.

    The adaptive pooling has PyTorch's bin edges (:func:`adaptive_pool_bounds`:
    ``[floor(i H / b), ceil((i + 1) H / b))``, overlapping bins when ``H`` is not
    a multiple of ``b``), so it computes what ``nn.AdaptiveAvgPool2d`` does at any size.

    Args:
        bins: bin counts of the pyramid levels.
        filters: width of each level's 1x1 conv; None means ``C // len(bins)``.
        align_corners: upsample the pooled maps with ``align_corners=True``
            geometry (:func:`keras_seg.ops.resize_align_corners`), as
            segmentation_models.pytorch's ``PSPBlock`` (and the released Caffe
            model); False (default) uses half-pixel centres. The single-bin level
            is a broadcast either way.
        single_bin_batchnorm: True (default, the paper) puts a BatchNorm after the
            1x1 conv of every level; False leaves it out of the single-bin (1x1)
            level, whose conv then has a bias, as segmentation_models.pytorch's
            ``PSPBlock`` (PyTorch's BatchNorm refuses a 1x1 map in training).
        bn_epsilon: epsilon of the BatchNorms (Keras' 1e-3; 1e-5 for weights
            converted from PyTorch).

    Input shape: ``(batch, H, W, C)``, H and W possibly dynamic.
    Output shape: ``(batch, H, W, C + len(bins) * filters)`` (2C by default).

    Layers: ``ppm_bin{b}_conv`` and ``ppm_bin{b}_bn`` per level.
    """

    def __init__(self, bins=(1, 2, 3, 6), filters=None, align_corners=False,
                 single_bin_batchnorm=True, bn_epsilon=1e-3, **kwargs):
        super().__init__(**kwargs)
        bins = validation.positive_int_tuple("PyramidPooling", "bins", bins, "(1, 2, 3, 6)")
        if filters is not None and (not isinstance(filters, int) or filters < 1):
            raise ValueError(f"PyramidPooling: filters must be None or a positive int, got "
                             f"{filters!r}.")
        for option, value in (("align_corners", align_corners),
                              ("single_bin_batchnorm", single_bin_batchnorm)):
            if not isinstance(value, bool):
                raise ValueError(f"PyramidPooling: {option} must be True or False, got "
                                 f"{value!r}.")
        if isinstance(bn_epsilon, bool) or not isinstance(bn_epsilon, (int, float)) \
                or not bn_epsilon > 0:
            raise ValueError(f"PyramidPooling: bn_epsilon must be a positive number, got "
                             f"{bn_epsilon!r}.")
        self.bins = bins
        self.filters = filters
        self.align_corners = align_corners
        self.single_bin_batchnorm = single_bin_batchnorm
        self.bn_epsilon = float(bn_epsilon)
        self.convs = []
        self.norms = []

    def _width(self, channels):
        return self.filters or max(1, channels // len(self.bins))

    def _has_norm(self, b):
        return b != 1 or self.single_bin_batchnorm

    def build(self, input_shape):
        if input_shape[-1] is None:
            raise ValueError("PyramidPooling: the channel count of the input must be known.")
        channels = int(input_shape[-1])
        width = self._width(channels)
        policy = self.dtype_policy
        self.convs, self.norms = [], []
        for b in self.bins:
            norm = self._has_norm(b)
            conv = Conv2D(width, 1, use_bias=not norm,
                                       kernel_initializer="he_normal", dtype=policy,
                                       name=f"ppm_bin{b}_conv")
            conv.build((None, b, b, channels))
            self.convs.append(conv)
            if norm:
                norm = BatchNormalization(epsilon=self.bn_epsilon, dtype=policy,
                                                       name=f"ppm_bin{b}_bn")
                norm.build((None, b, b, width))
                self.norms.append(norm)

    def call(self, x, training=None):
        size = seg_ops.spatial_shape(x)
        outs = [x]
        norms = iter(self.norms)
        for b, conv in zip(self.bins, self.convs, strict=True):
            y = conv(adaptive_average_pool(x, (b, b)))
            if self._has_norm(b):
                y = next(norms)(y, training=training)
            y = ops.relu(y)
            if b == 1:
                y = y * ops.ones_like(x[..., :1])  # bilinear from 1x1 = broadcast
            elif self.align_corners:
                y = seg_ops.resize_align_corners(y, size)
            else:
                y = seg_ops.resize(y, size, "bilinear")
            outs.append(y)
        return ops.concatenate(outs, axis=-1)

    def compute_output_shape(self, input_shape):
        channels = input_shape[-1]
        width = None if channels is None else channels + len(self.bins) * self._width(channels)
        return (*input_shape[:3], width)

    def get_config(self):
        return {**super().get_config(), "bins": list(self.bins), "filters": self.filters,
                "align_corners": self.align_corners,
                "single_bin_batchnorm": self.single_bin_batchnorm,
                "bn_epsilon": self.bn_epsilon}

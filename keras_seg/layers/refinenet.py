"""RefineNet building blocks (Lin, Milan, Shen & Reid 2017, "RefineNet: Multi-Path
Refinement Networks for High-Resolution Semantic Segmentation", CVPR).

A RefineNet block takes one or more feature maps of different resolutions and
fuses them: each input goes through two :class:`ResidualConvUnit`, a
:class:`MultiResolutionFusion` brings them to the largest resolution and sums
them, a :class:`ChainedResidualPooling` adds context, and one more
:class:`ResidualConvUnit` produces the output. All layers work on NHWC tensors
whose height and width are only known at run time.
"""

import keras
from keras import ops

from keras_seg import ops as seg_ops
from keras_seg import validation
from keras_seg.layers.atrous import Conv2D
from keras_seg.layers.pooling import MaxPooling2D


def _conv(filters, kernel_size, use_bias, kernel_initializer, dtype, name):
    return Conv2D(filters, kernel_size, padding="same", use_bias=use_bias,
                         kernel_initializer=kernel_initializer, dtype=dtype, name=name)


@keras.saving.register_keras_serializable(package="keras_seg")
class ResidualConvUnit(keras.layers.Layer):
    """Residual Conv Unit (RCU) of RefineNet (Lin et al. 2017, Fig. 2b).

    ``out = x + conv2(relu(conv1(relu(x))))``: ReLU, 3x3 conv, ReLU, 3x3 conv and
    an identity shortcut; no batch normalization. Both convs keep the input
    width, so the unit maps ``C`` channels to ``C`` channels.

    Args:
        kernel_size: int, size of both convolutions (3 in the paper).
        use_bias: bool, whether the convolutions have a bias (True, as the
            authors' code).
        kernel_initializer: initializer of the convolution kernels.
        residual_initializer: initializer of the second convolution's kernel
            (default None: ``kernel_initializer``). ``"zeros"`` makes the unit
            the identity at initialization (RefineNet's builder does this so
            that a deep un-normalized decoder starts stable).

    Input shape: ``(batch, H, W, C)``.
    Output shape: ``(batch, H, W, C)``.
    """

    def __init__(self, kernel_size=3, use_bias=True, kernel_initializer="he_normal",
                 residual_initializer=None, **kwargs):
        super().__init__(**kwargs)
        validation.positive_int("ResidualConvUnit", "kernel_size", kernel_size)
        self.kernel_size = kernel_size
        self.use_bias = bool(use_bias)
        self.kernel_initializer = keras.initializers.get(kernel_initializer)
        self.residual_initializer = (None if residual_initializer is None
                                     else keras.initializers.get(residual_initializer))

    def build(self, input_shape):
        channels = input_shape[-1]
        if channels is None:
            raise ValueError("ResidualConvUnit needs a known channel count (last axis), got "
                             f"input shape {tuple(input_shape)}.")
        self.conv1 = _conv(channels, self.kernel_size, self.use_bias, self.kernel_initializer,
                           self.dtype_policy, "conv1")
        self.conv2 = _conv(channels, self.kernel_size, self.use_bias,
                           self.residual_initializer or self.kernel_initializer,
                           self.dtype_policy, "conv2")
        self.conv1.build(input_shape)
        self.conv2.build(input_shape)

    def call(self, x):
        y = self.conv1(ops.relu(x))
        y = self.conv2(ops.relu(y))
        return x + y

    def compute_output_shape(self, input_shape):
        return tuple(input_shape)

    def get_config(self):
        return {
            **super().get_config(),
            "kernel_size": self.kernel_size,
            "use_bias": self.use_bias,
            "kernel_initializer": keras.initializers.serialize(self.kernel_initializer),
            "residual_initializer": (None if self.residual_initializer is None else
                                     keras.initializers.serialize(self.residual_initializer)),
        }


def _static_max(values):
    """Max of static ints, or None when one of them is unknown."""
    if any(v is None for v in values):
        return None
    return max(values)


def _dynamic_max(values):
    """Max of sizes that may be Python ints or scalar tensors (TF graph mode)."""
    out = values[0]
    for v in values[1:]:
        if isinstance(out, int) and isinstance(v, int):
            out = max(out, v)
        else:
            out = ops.maximum(out, v)
    return out


@keras.saving.register_keras_serializable(package="keras_seg")
class MultiResolutionFusion(keras.layers.Layer):
    """Multi-Resolution Fusion of RefineNet (Lin et al. 2017, Fig. 2c).

    Each input goes through its own 3x3 convolution to ``filters`` channels
    ("input adaptation"), is upsampled (bilinear, half-pixel centers) to the
    largest height and width among the inputs, and the results are summed. The
    target size is computed at run time, so inputs whose sizes are not exact
    multiples of each other (e.g. 13x11 and 7x6) fuse correctly. A single input
    only gets its convolution (the paper passes a lone path through unchanged;
    RefineNet-4 therefore has no fusion layer).

    Args:
        filters: int, output channels of every per-input convolution.
        kernel_size: int, size of those convolutions (3 in the paper).
        use_bias: bool (False, as the authors' code).
        interpolation: ``"bilinear"`` (paper) or ``"nearest"``.
        kernel_initializer: initializer of the convolution kernels.

    Call arguments: a list of ``n >= 1`` tensors ``(batch, H_i, W_i, C_i)``.
    Output shape: ``(batch, max_i H_i, max_i W_i, filters)``.
    """

    def __init__(self, filters, kernel_size=3, use_bias=False, interpolation="bilinear",
                 kernel_initializer="he_normal", **kwargs):
        super().__init__(**kwargs)
        validation.positive_int("MultiResolutionFusion", "filters", filters)
        validation.positive_int("MultiResolutionFusion", "kernel_size", kernel_size)
        if interpolation not in ("bilinear", "nearest"):
            raise ValueError("MultiResolutionFusion: `interpolation` must be 'bilinear' or "
                             f"'nearest', got {interpolation!r}.")
        self.filters = filters
        self.kernel_size = kernel_size
        self.use_bias = bool(use_bias)
        self.interpolation = interpolation
        self.kernel_initializer = keras.initializers.get(kernel_initializer)

    @staticmethod
    def _as_list(input_shape):
        if isinstance(input_shape, (list, tuple)) and input_shape and \
                isinstance(input_shape[0], (list, tuple)):
            return list(input_shape)
        raise ValueError("MultiResolutionFusion must be called on a list of tensors "
                         "[x1, x2, ...], e.g. the outputs of the RCUs of each path.")

    def build(self, input_shape):
        shapes = self._as_list(input_shape)
        self.convs = []
        for i, shape in enumerate(shapes):
            conv = _conv(self.filters, self.kernel_size, self.use_bias, self.kernel_initializer,
                         self.dtype_policy, f"conv{i + 1}")
            conv.build(tuple(shape))
            self.convs.append(conv)

    def call(self, inputs):
        if not isinstance(inputs, (list, tuple)):
            raise ValueError("MultiResolutionFusion must be called on a list of tensors.")
        if len(inputs) != len(self.convs):
            raise ValueError(f"MultiResolutionFusion was built for {len(self.convs)} inputs, "
                             f"called on {len(inputs)}.")
        sizes = [seg_ops.spatial_shape(x) for x in inputs]
        target = (_dynamic_max([s[0] for s in sizes]), _dynamic_max([s[1] for s in sizes]))
        out = None
        for x, size, conv in zip(inputs, sizes, self.convs, strict=True):
            y = conv(x)
            same = all(isinstance(a, int) and isinstance(b, int) and a == b
                       for a, b in zip(size, target, strict=True))
            if not same:
                y = seg_ops.resize(y, target, self.interpolation)
            out = y if out is None else out + y
        return out

    def compute_output_shape(self, input_shape):
        shapes = self._as_list(input_shape)
        return (shapes[0][0], _static_max([s[1] for s in shapes]),
                _static_max([s[2] for s in shapes]), self.filters)

    def get_config(self):
        return {
            **super().get_config(),
            "filters": self.filters,
            "kernel_size": self.kernel_size,
            "use_bias": self.use_bias,
            "interpolation": self.interpolation,
            "kernel_initializer": keras.initializers.serialize(self.kernel_initializer),
        }


@keras.saving.register_keras_serializable(package="keras_seg")
class ChainedResidualPooling(keras.layers.Layer):
    """Chained Residual Pooling of RefineNet (Lin et al. 2017, Fig. 2d).

    ``x = relu(x); out = x; p = x``; then ``num_blocks`` times
    ``p = conv(maxpool(p)); out = out + p`` with a ``pool_size`` max pooling of
    stride 1 ("same" padding, padded positions never win) and a 3x3
    convolution keeping the width. Captures background context from large
    regions with a chain of pooling blocks whose outputs are fused by
    summation. Two blocks as in the paper's Fig. 2.

    Args:
        num_blocks: int, number of [pool + conv] blocks (2).
        pool_size: int, max-pooling window (5).
        kernel_size: int, convolution size (3).
        use_bias: bool (False, as the authors' code).
        kernel_initializer: initializer of the convolution kernels.

    Input shape: ``(batch, H, W, C)``.
    Output shape: ``(batch, H, W, C)``.
    """

    def __init__(self, num_blocks=2, pool_size=5, kernel_size=3, use_bias=False,
                 kernel_initializer="he_normal", **kwargs):
        super().__init__(**kwargs)
        validation.positive_int("ChainedResidualPooling", "num_blocks", num_blocks)
        validation.positive_int("ChainedResidualPooling", "pool_size", pool_size)
        validation.positive_int("ChainedResidualPooling", "kernel_size", kernel_size)
        self.num_blocks = num_blocks
        self.pool_size = pool_size
        self.kernel_size = kernel_size
        self.use_bias = bool(use_bias)
        self.kernel_initializer = keras.initializers.get(kernel_initializer)

    def build(self, input_shape):
        channels = input_shape[-1]
        if channels is None:
            raise ValueError("ChainedResidualPooling needs a known channel count (last axis), "
                             f"got input shape {tuple(input_shape)}.")
        self.pools = []
        self.convs = []
        for i in range(self.num_blocks):
            self.pools.append(MaxPooling2D(self.pool_size, strides=1, padding="same",
                                                  dtype=self.dtype_policy, name=f"pool{i + 1}"))
            conv = _conv(channels, self.kernel_size, self.use_bias, self.kernel_initializer,
                         self.dtype_policy, f"conv{i + 1}")
            conv.build(tuple(input_shape))
            self.convs.append(conv)

    def call(self, x):
        x = ops.relu(x)
        out = x
        path = x
        for pool, conv in zip(self.pools, self.convs, strict=True):
            path = conv(pool(path))
            out = out + path
        return out

    def compute_output_shape(self, input_shape):
        return tuple(input_shape)

    def get_config(self):
        return {
            **super().get_config(),
            "num_blocks": self.num_blocks,
            "pool_size": self.pool_size,
            "kernel_size": self.kernel_size,
            "use_bias": self.use_bias,
            "kernel_initializer": keras.initializers.serialize(self.kernel_initializer),
        }

"""Max pooling that keeps its argmax indices, and the matching max unpooling.

SegNet (Badrinarayanan et al. 2017, "SegNet: A Deep Convolutional Encoder-Decoder
Architecture for Image Segmentation") and ENet (Paszke et al. 2016) store the
position of each window maximum in the encoder and put the decoder's values back
at those positions, zeros elsewhere.

``keras.ops`` has no argmax pooling and no scatter that works alike on every
backend, so both layers work window-wise (space-to-depth): each ``k x k`` window
becomes a group of ``k*k`` values. Pooling takes the maximum of the group and
keeps the *switch*, the position of the first maximum in the window (the
smallest position whose value equals the maximum: a ``min``, not an ``argmax``,
which on the TensorFlow backend lowers to an op tf2onnx cannot convert).
Unpooling multiplies each value by its one-hot window mask and goes back from
depth to space. Only
reshapes, comparisons and reductions: the pair runs on TensorFlow, JAX and
PyTorch and exports to ONNX.

On the TensorFlow backend on CPU, where that formulation made a train step 1.7x
slower than max pooling + upsampling, both layers run TensorFlow's own kernels
instead (:func:`keras_seg.ops.max_pool_with_argmax`, :func:`keras_seg.ops.max_unpool`:
``MaxPoolWithArgmax`` and ``MaxPoolGradWithArgmax``), with the same values, indices
and gradients; on PyTorch, torch's ``max_pool2d(return_indices=True)`` and
``max_unpool2d``, whose indices are these; exports (:class:`keras_seg.ops.portable_graph`)
and XLA-compiled functions keep the formulation above.

Indices follow ``torch.nn.functional.max_pool2d(..., return_indices=True)``: for
each batch element and channel, the flat position ``row * W + col`` of the
maximum in the ``H x W`` input plane.
"""

import keras
from keras import ops

from keras_seg import ops as seg_ops


def _check_pool_size(name, pool_size):
    try:
        k = int(pool_size)
    except (TypeError, ValueError):
        k = None
    if k is None or k != pool_size or k < 1:
        raise ValueError(f"{name}: pool_size must be a positive int (square, non-overlapping "
                         f"windows with stride = pool_size), got {pool_size!r}.")
    return k


def _nonneg(v):
    """``max(v, 0)`` for a static int or a dynamic scalar."""
    return max(v, 0) if isinstance(v, int) else ops.maximum(v, 0)


def _window_grid(oh, ow):
    """Row and column index of every pooled position, shapes (1, oh, 1, 1) and (1, 1, ow, 1)."""
    rows = ops.reshape(ops.arange(oh, dtype="int32"), (1, -1, 1, 1))
    cols = ops.reshape(ops.arange(ow, dtype="int32"), (1, 1, -1, 1))
    return rows, cols


@keras.saving.register_keras_serializable(package="keras_seg")
class MaxPooling2D(keras.layers.MaxPooling2D):
    """``keras.layers.MaxPooling2D`` computing its pooling with
    :func:`keras_seg.ops.max_pool`: on JAX with a gradient XLA's CPU backend runs 4-5x
    faster than its ``select_and_scatter``, on PyTorch without Keras' layout copies;
    TensorFlow runs ``keras.ops.max_pool``.

    The max pooling of the VGG and ResNet backbones, U-Net, SegNet's encoder variants,
    ENet's initial block and RefineNet's chained residual pooling (overlapping windows as
    in Krizhevsky et al. 2012, "ImageNet Classification with Deep Convolutional Neural
    Networks", which the ResNet stem's 3x3 stride-2 pooling follows). Same arguments and numbers as
    ``keras.layers.MaxPooling2D``, which it is (``isinstance``); the gradient goes to the
    first maximum of each window in row-major order, as Keras' on every backend.
    ``channels_first`` uses Keras' own path.

    Args: those of ``keras.layers.MaxPooling2D`` (``pool_size``, ``strides``, ``padding``,
    ``data_format``, ``name``).

    Input shape: ``(batch, H, W, C)``. Output shape: ``(batch, H', W', C)``, as
    ``MaxPooling2D``.
    """

    def call(self, inputs):
        if self.data_format != "channels_last":
            return super().call(inputs)
        return seg_ops.max_pool(inputs, tuple(self.pool_size), tuple(self.strides),
                                self.padding)


@keras.saving.register_keras_serializable(package="keras_seg")
class MaxPoolingWithArgmax2D(keras.layers.Layer):
    """2D max pooling that also returns the position of each maximum.

    Windows are ``pool_size x pool_size`` with stride ``pool_size`` (SegNet and
    ENet use 2x2, stride 2). Among equal values the first in row-major order of
    the window wins, and the gradient flows to it only (a window of ``-inf`` too: its
    first cell). Windows holding a NaN are left unspecified (the TensorFlow kernel
    skips a NaN after the first cell, torch's propagates it; the ``keras.ops``
    formulation gives 0 and an index outside the window).

    Args:
        pool_size: int, window side and stride (default 2).
        padding: ``"valid"`` (default): a trailing row/column that does not fill a
            window is dropped, output ``floor(H / k)`` (as ``torch`` with
            ``ceil_mode=False``); ``"same"``: partial windows are kept, output
            ``ceil(H / k)`` (as ``torch`` with ``ceil_mode=True``).

    Input shape: ``(batch, H, W, C)``, any ``H, W >= pool_size`` (odd sizes too).
    Output: a list ``[pooled, indices]``, ``pooled`` of shape
    ``(batch, H', W', C)`` in the input dtype and ``indices`` (int32, same shape)
    holding the flat index ``row * W + col`` of each maximum in the input plane,
    as ``torch.nn.functional.max_pool2d(x, k, return_indices=True)``. Pass both,
    with the pre-pooling tensor, to :class:`MaxUnpooling2D`.
    """

    def __init__(self, pool_size=2, padding="valid", **kwargs):
        super().__init__(**kwargs)
        self.pool_size = _check_pool_size(self.__class__.__name__, pool_size)
        if padding not in ("valid", "same"):
            raise ValueError(f"{self.__class__.__name__}: padding must be 'valid' or 'same', "
                             f"got {padding!r}.")
        self.padding = padding

    def call(self, x):
        k = self.pool_size
        fast = seg_ops.max_pool_with_argmax(x, k, self.padding)  # TensorFlow CPU, PyTorch
        if fast is not None:
            return list(fast)
        h, w = seg_ops.spatial_shape(x)
        if self.padding == "same":
            # pad with -inf so that padded cells never win a window
            x_p = ops.pad(x, [[0, 0], [0, seg_ops.pad_amount(h, k)],
                              [0, seg_ops.pad_amount(w, k)], [0, 0]],
                          constant_values=float("-inf"))
        else:
            x_p = x[:, : (h // k) * k, : (w // k) * k, :]
        ph, pw = seg_ops.spatial_shape(x_p)
        oh, ow = ph // k, pw // k
        # the k*k taps of every window as strided slices, each (B, oh, ow, C): channels stay
        # the innermost axis (a (B, oh, ow, C, k*k) window tensor made of transposes was
        # 1.7-3x slower in a train step, its tiny last axis defeating vectorization)
        taps = [x_p[:, i::k, j::k, :] for i in range(k) for j in range(k)]
        peak = taps[0]
        for tap in taps[1:]:
            peak = ops.maximum(peak, tap)
        # the switch: position of the first maximum in the window
        local = ops.full_like(peak, k * k, dtype="int32")
        for position in reversed(range(k * k)):
            local = ops.where(ops.equal(taps[position], peak), position, local)
        # the pooled value taken from that first maximum only, so that the gradient flows
        # to it alone
        pooled = ops.where(ops.equal(local, 0), taps[0], ops.zeros_like(taps[0]))
        for position in range(1, k * k):
            pooled = pooled + ops.where(ops.equal(local, position), taps[position],
                                        ops.zeros_like(taps[position]))
        rows, cols = _window_grid(oh, ow)
        w32 = ops.cast(w, "int32")
        indices = (rows * k + local // k) * w32 + cols * k + local % k
        return [pooled, ops.cast(indices, "int32")]

    def compute_output_shape(self, input_shape):
        k = self.pool_size

        def out(d):
            if d is None:
                return None
            return -(-d // k) if self.padding == "same" else d // k

        shape = (input_shape[0], out(input_shape[1]), out(input_shape[2]), input_shape[3])
        return [shape, shape]

    def compute_output_spec(self, x):
        shape = self.compute_output_shape(x.shape)[0]
        return [keras.KerasTensor(shape, dtype=self.compute_dtype),
                keras.KerasTensor(shape, dtype="int32")]

    def get_config(self):
        return {**super().get_config(), "pool_size": self.pool_size, "padding": self.padding}


@keras.saving.register_keras_serializable(package="keras_seg")
class MaxUnpooling2D(keras.layers.Layer):
    """Put pooled values back at the positions of their maxima, zeros elsewhere.

    The inverse of :class:`MaxPoolingWithArgmax2D` with the same ``pool_size``,
    as ``torch.nn.functional.max_unpool2d(values, indices, k,
    output_size=reference.shape[-2:])``. Gradients flow to ``values``.

    Args:
        pool_size: int, window side and stride of the pooling that produced the
            indices (default 2).

    Call arguments: ``[values, indices, reference]``: ``values`` of shape
    ``(batch, H', W', C)`` (e.g. a decoder feature map), ``indices`` (int, same
    shape) from :class:`MaxPoolingWithArgmax2D`, or any ``row * W + col`` that lies
    in its value's ``k x k`` window and in the ``H x W`` plane, and ``reference``,
    the tensor that was pooled (only its height and width are used:
    ``(batch, H, W, *)``), which gives the output its pre-pooling size, odd sizes
    included. On TensorFlow's kernels an index outside the ``H' k x W' k`` plane
    raises ``InvalidArgumentError``.
    Output shape: ``(batch, H, W, C)``: rows / columns no window covers (dropped by
    a ``"valid"`` pooling) are zeros, those beyond ``H x W`` (a ``"same"`` pooling's
    padding) are cropped.
    """

    def __init__(self, pool_size=2, **kwargs):
        super().__init__(**kwargs)
        self.pool_size = _check_pool_size(self.__class__.__name__, pool_size)

    def call(self, inputs):
        values, indices, reference = inputs
        k = self.pool_size
        channels = values.shape[-1]
        h, w = seg_ops.spatial_shape(reference)
        fast = seg_ops.max_unpool(values, indices, (h, w), k)  # TensorFlow CPU, PyTorch
        if fast is not None:
            return fast
        oh, ow = seg_ops.spatial_shape(values)
        indices = ops.cast(indices, "int32")
        w32 = ops.cast(w, "int32")
        rows, cols = _window_grid(oh, ow)
        local = (indices // w32 - rows * k) * k + (indices % w32 - cols * k)
        # each window position's share, then interleaved by stacks and reshapes that keep
        # channels innermost (depth to space without a transpose)
        zeros = ops.zeros_like(values)
        rows_out = []
        for i in range(k):
            parts = [ops.where(ops.equal(local, i * k + j), values, zeros) for j in range(k)]
            row = ops.stack(parts, axis=3)  # (B, oh, ow, k, C)
            rows_out.append(ops.reshape(row, (-1, oh, ow * k, channels)))
        out = ops.reshape(ops.stack(rows_out, axis=2), (-1, oh * k, ow * k, channels))
        # "valid" pooling dropped trailing rows/cols: pad with zeros; "same" added some: crop
        out = ops.pad(out, [[0, 0], [0, _nonneg(h - oh * k)], [0, _nonneg(w - ow * k)], [0, 0]])
        return out[:, :h, :w, :]

    def compute_output_shape(self, input_shapes):
        values_shape, _, ref_shape = input_shapes
        return (values_shape[0], ref_shape[1], ref_shape[2], values_shape[3])

    def get_config(self):
        return {**super().get_config(), "pool_size": self.pool_size}

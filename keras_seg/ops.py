"""Backend shims: the only place in the core where a backend is named.

Every function here works around one concrete problem of ``keras.ops`` on one
backend; each says which. Everything else in the package calls ``keras.ops``.
"""

import weakref

import keras
from keras import ops


def spatial_shape(x):
    """Return ``(height, width)`` of an NHWC tensor as scalars (dynamic if needed)."""
    shape = ops.shape(x)
    return shape[1], shape[2]


def resize(x, size, interpolation="bilinear"):
    """Resize an NHWC tensor to ``size = (height, width)``, which may be dynamic.

    Problem worked around: on the TensorFlow backend ``keras.ops.image.resize``
    compares the target size with ``<= 0`` in Python, which fails inside
    ``tf.function`` (what ``fit`` and export trace) when the size is a tensor.
    ``tf.image.resize`` accepts a tensor size and exports to ONNX correctly.
    ``half_pixel_centers`` semantics (``align_corners=False``) on every backend.
    """
    if keras.backend.backend() == "tensorflow":
        import tensorflow as tf

        method = {"bilinear": "bilinear", "nearest": "nearest"}[interpolation]
        size = tf.stack([tf.cast(size[0], "int32"), tf.cast(size[1], "int32")])
        out = tf.image.resize(x, size, method=method)
        return tf.cast(out, x.dtype)
    size = (int(size[0]), int(size[1])) if _is_static(size) else size
    return ops.image.resize(x, size, interpolation=interpolation, antialias=False)


def resize_align_corners(x, size):
    """Bilinear resize of an NHWC tensor with ``align_corners=True`` geometry.

    The corner pixels of input and output are aligned: output pixel ``i`` samples
    the input at ``i * (in - 1) / (out - 1)`` (0 when ``out == 1``), what
    ``torch.nn.functional.interpolate(..., mode="bilinear", align_corners=True)``
    and ``torch.nn.UpsamplingBilinear2d`` compute (segmentation_models.pytorch
    resizes so). Problem worked around: ``keras.ops.image.resize`` has no
    ``align_corners`` argument (half-pixel centres only) and the torch backend
    forces it off. Written as two gathers and a lerp per axis with ``keras.ops``,
    so it runs on every backend, for a dynamic ``size``, and exports to ONNX; on the
    PyTorch backend (outside :class:`portable_graph`) torch's own ``interpolate``, on
    TensorFlow its ``resize_bilinear(align_corners=True)`` kernel, on JAX (static sizes)
    one small interpolation matrix product per axis.

    Args:
        x: ``(batch, H, W, C)``.
        size: ``(out_height, out_width)``, static ints or scalar tensors.

    Returns:
        ``(batch, out_height, out_width, C)`` in ``x``'s dtype.
    """
    if keras.backend.backend() == "torch" and not _PORTABLE[0] and len(x.shape) == 4:
        # torch's own kernel of this geometry, on a channels-last view (the gathers and
        # lerps below were a fifth of an SMP PSPNet's inference on this backend)
        import torch.nn.functional as F

        x = ops.convert_to_tensor(x)
        out = F.interpolate(x.permute(0, 3, 1, 2), size=(int(size[0]), int(size[1])),
                            mode="bilinear", align_corners=True)
        return out.permute(0, 2, 3, 1)
    if keras.backend.backend() == "tensorflow" and not _PORTABLE[0] and len(x.shape) == 4:
        # TensorFlow's own kernel of this geometry (forward and gradient 2.6-4x faster
        # than the gathers below: 17 -> 4.4 ms for 4x16x16x256 -> 64x64); exports keep
        # the gathers (portable_graph)
        import tensorflow as tf

        size = tf.stack([tf.cast(size[0], "int32"), tf.cast(size[1], "int32")])
        out = tf.compat.v1.image.resize_bilinear(x, size, align_corners=True)
        return tf.cast(out, x.dtype)
    if (keras.backend.backend() == "jax" and not _PORTABLE[0] and len(x.shape) == 4 and
            x.shape[1] is not None and x.shape[2] is not None and _is_static(size)):
        # each axis' interpolation as a (small) matrix product: XLA's CPU backend runs
        # the gathers' gradient (a scatter-add) slowly, 41 -> 9 ms for 4x32x32x21 ->
        # 256x256 with the gradient, 24 -> 3.5 ms for 4x16x16x256 -> 64x64
        dtype = keras.backend.standardize_dtype(x.dtype)
        rows = ops.convert_to_tensor(_align_corners_matrix(int(x.shape[1]), int(size[0])),
                                     dtype=dtype)
        cols = ops.convert_to_tensor(_align_corners_matrix(int(x.shape[2]), int(size[1])),
                                     dtype=dtype)
        return ops.einsum("pw,nowc->nopc", cols, ops.einsum("oh,nhwc->nowc", rows, x))
    shape = ops.shape(x)
    x = _lerp_axis(x, shape[1], size[0], axis=1)
    return _lerp_axis(x, shape[2], size[1], axis=2)


def _align_corners_matrix(n_in, n_out):
    """``(n_out, n_in)`` weights of the align-corners linear interpolation along one axis
    (row ``i`` samples the input at ``i * (n_in - 1) / (n_out - 1)``, 0 when ``n_out == 1``),
    the lerp of :func:`_lerp_axis` as a matrix."""
    import numpy as np

    scale = (n_in - 1) / (n_out - 1) if n_out > 1 else 0.0
    source = np.arange(n_out) * scale
    low = np.clip(np.floor(source).astype(np.int64), 0, n_in - 1)
    high = np.minimum(low + 1, n_in - 1)
    frac = source - low
    matrix = np.zeros((n_out, n_in), np.float64)
    np.add.at(matrix, (np.arange(n_out), low), 1.0 - frac)
    np.add.at(matrix, (np.arange(n_out), high), frac)
    return matrix


def _lerp_axis(x, n_in, n_out, axis):
    # source coordinate of each output index: i * (n_in - 1) / (n_out - 1)
    dtype = "float64" if keras.backend.standardize_dtype(x.dtype) == "float64" else "float32"
    pos = ops.cast(ops.arange(n_out), dtype)
    scale = ops.cast(n_in - 1, dtype) / ops.cast(ops.maximum(n_out - 1, 1), dtype)
    src = pos * scale
    low = ops.floor(src)
    frac = src - low
    low = ops.cast(low, "int32")
    low = ops.minimum(low, ops.cast(n_in - 1, "int32"))
    high = ops.minimum(low + 1, ops.cast(n_in - 1, "int32"))
    a = ops.take(x, low, axis=axis)
    b = ops.take(x, high, axis=axis)
    weight_shape = [1, 1, 1, 1]
    weight_shape[axis] = -1
    frac = ops.cast(ops.reshape(frac, weight_shape), x.dtype)
    return a + (b - a) * frac


def _torch_weight(kernel, order):
    """``kernel.permute(*order)`` in torch's channels-last memory format; outside autograd
    (inference) kept per kernel tensor until it changes (its in-place version counter),
    so that a served model does not transpose its kernels at every call; a training call
    drops the kept copy."""
    import torch

    if torch.is_grad_enabled() and kernel.requires_grad:
        # training: the layout kept for inference goes stale with the next update; drop it
        # rather than hold a second copy of the weights through the epoch
        _WEIGHTS.pop(id(kernel), None)
        return kernel.permute(*order).contiguous(memory_format=torch.channels_last)
    key, state = id(kernel), (kernel._version, order)
    cached = _WEIGHTS.get(key)
    if cached is not None and cached[0]() is kernel and cached[1] == state:
        return cached[2]
    weight = kernel.detach().permute(*order).contiguous(memory_format=torch.channels_last)
    # (tensors compare elementwise, so not a WeakKeyDictionary: keyed by id, the entry
    # dropped when the kernel tensor goes)
    _WEIGHTS[key] = (weakref.ref(kernel, lambda _, key=key: _WEIGHTS.pop(key, None)), state,
                     weight)
    return weight


#: id(torch kernel tensor) -> (weak reference to it, (version, order), its channels-last
#: layout), for inference
_WEIGHTS = {}


def conv(x, kernel, strides=1, padding="valid", dilation_rate=1, bias=None):
    """A 2D convolution, NHWC, as ``keras.ops.conv`` computes it, without its layout
    copies on the PyTorch backend.

    Problem worked around: on the PyTorch backend ``keras.ops.conv`` makes the input
    NCHW-contiguous (a full transpose), then channels-last again for oneDNN (a second
    full copy), and the kernel's permuted view channels-last (a third); autograd repeats
    the copies backwards. They were 15% of a LinkNet train step. An NHWC tensor moved to
    NCHW by ``permute`` already is a channels-last tensor, which torch's convolution
    reads as it lies: only the (small) kernel is copied here. Asymmetric ``"same"``
    padding (stride 2 on an even size) pads the NHWC tensor first, as Keras pads. Other
    backends use ``keras.ops.conv``.

    The bias, if any, is added by the convolution kernel itself on PyTorch (Keras adds
    it in a separate pass over the output), and outside autograd (inference) the kernel's
    channels-last layout is kept until the kernel changes.

    On the JAX backend a 1x1 convolution (no groups) is the matrix product it computes,
    on every ``stride``-th pixel: XLA's CPU convolution took 32 ms for a 1x1 conv 256 ->
    64 on 4x64x64 with its gradients, ``dot`` 15 ms (135 -> 46 ms for 1024 -> 2048 at
    stride 2; ResNet-50's bottlenecks are two thirds 1x1 convolutions).

    Args:
        x: ``(batch, H, W, C)``.
        kernel: ``(kh, kw, C // groups, filters)``.
        strides: an int or a pair.
        padding: ``"same"`` or ``"valid"``.
        dilation_rate: an int or a pair.
        bias: ``(filters,)`` added to every output position, or ``None``.

    Returns:
        ``(batch, H', W', filters)``.
    """
    if keras.backend.backend() == "jax" and _pointwise(x, kernel):
        # a 1x1 convolution is a matrix product over the (strided) pixels; "same" and
        # "valid" agree for a 1x1 kernel (no padding), the dilation does not matter
        strides = _pair(strides)
        if strides != (1, 1):
            x = x[:, ::strides[0], ::strides[1], :]
        out = ops.matmul(x, kernel[0, 0])
        return out if bias is None else ops.add(out, bias)
    if keras.backend.backend() != "torch" or len(x.shape) != 4:
        out = ops.conv(x, kernel, strides=strides, padding=padding,
                       dilation_rate=dilation_rate)
        return out if bias is None else ops.add(out, ops.reshape(bias, (1, 1, 1, -1)))
    import torch.nn.functional as F

    x, kernel = ops.convert_to_tensor(x), ops.convert_to_tensor(kernel)
    if bias is not None:
        bias = ops.convert_to_tensor(bias)
    strides, rate = _pair(strides), _pair(dilation_rate)
    pads = [0, 0]
    if padding == "same":
        pads = []
        for size, k, stride, r in zip(x.shape[1:3], kernel.shape[:2], strides, rate,
                                      strict=True):
            pads.append(_same_pads(size, k, stride, r))
        if any(before != after for before, after in pads):
            x = F.pad(x, (0, 0, *pads[1], *pads[0]))
            pads = [0, 0]
        else:
            pads = [before for before, _ in pads]
    groups = x.shape[-1] // kernel.shape[2]
    out = F.conv2d(x.permute(0, 3, 1, 2), _torch_weight(kernel, (3, 2, 0, 1)), bias,
                   stride=strides, padding=pads, dilation=rate, groups=groups)
    return out.permute(0, 2, 3, 1)


def conv_transpose(x, kernel, strides, padding="valid", output_padding=None,
                   dilation_rate=1):
    """A 2D transposed convolution, NHWC, as ``keras.ops.conv_transpose`` computes it,
    without its layout copies on the PyTorch backend.

    Problem worked around: as for :func:`conv`, on PyTorch ``keras.ops.conv_transpose``
    makes the input NCHW-contiguous and returns an NCHW result seen through a permuted
    view, which the next operation copies again. Here the input is read as a
    channels-last view and the result comes back in NHWC order; the output size and
    the asymmetric crop of ``"same"`` are Keras' own (its torch helper computes them).

    On the JAX backend (no dilation) it is computed as the sub-pixel convolution it
    equals (:func:`_subpixel_conv_transpose`): XLA's CPU transposed convolution (an
    input dilated with zeros) took 191 ms for a 3x3 stride-2 one, 64 -> 64 channels on
    4x64x64, with its gradients, the sub-pixel form 19 ms. TensorFlow uses
    ``keras.ops.conv_transpose``.

    Args:
        x: ``(batch, H, W, C)``.
        kernel: ``(kh, kw, filters, C)`` (Keras' ``Conv2DTranspose`` layout).
        strides: an int or a pair.
        padding: ``"same"`` or ``"valid"``.
        output_padding: ``None``, an int or a pair.
        dilation_rate: an int or a pair.

    Returns:
        ``(batch, H', W', filters)``.
    """
    if (keras.backend.backend() == "jax" and len(x.shape) == 4 and _pair(dilation_rate) ==
            (1, 1) and x.shape[1] is not None and x.shape[2] is not None):
        try:  # Keras' own padding arithmetic (a private helper)
            from keras.src.backend.common.backend_utils import (
                _convert_conv_transpose_padding_args_from_keras_to_jax as keras_padding,
            )
        except ImportError:
            keras_padding = None
        if keras_padding is not None:
            return _subpixel_conv_transpose(x, kernel, _pair(strides), padding,
                                            output_padding, keras_padding)
    if keras.backend.backend() != "torch" or len(x.shape) != 4:
        return ops.conv_transpose(x, kernel, strides=strides, padding=padding,
                                  output_padding=output_padding,
                                  dilation_rate=dilation_rate)
    try:  # the crops Keras' own torch backend applies (a private helper)
        from keras.src.backend.common.backend_utils import (
            compute_conv_transpose_output_crops_for_torch as crops_for_torch,
        )
    except ImportError:
        return ops.conv_transpose(x, kernel, strides=strides, padding=padding,
                                  output_padding=output_padding,
                                  dilation_rate=dilation_rate)
    import torch.nn.functional as F

    x, kernel = ops.convert_to_tensor(x), ops.convert_to_tensor(kernel)
    strides, rate = _pair(strides), _pair(dilation_rate)
    channels_first = x.permute(0, 3, 1, 2)
    crops = crops_for_torch(input_shape=channels_first.shape, kernel_shape=kernel.shape,
                            strides=strides, padding=padding, output_padding=output_padding,
                            dilation_rate=rate)
    out = F.conv_transpose2d(channels_first, _torch_weight(kernel, (3, 2, 0, 1)),
                             stride=strides, padding=0,
                             output_padding=0, dilation=rate)
    out = out[:, :, max(0, crops[0][0]):out.shape[2] - max(0, crops[0][1]),
              max(0, crops[1][0]):out.shape[3] - max(0, crops[1][1])]
    if any(c < 0 for pair in crops for c in pair):  # Keras extends with zeros there
        out = F.pad(out, [-min(0, crops[1][0]), -min(0, crops[1][1]),
                          -min(0, crops[0][0]), -min(0, crops[0][1])])
    return out.permute(0, 2, 3, 1)


def _same_pads(size, k, stride, rate=1):
    """``(before, after)`` padding of one axis under ``"same"``: an output of ``ceil(size /
    stride)``, the odd pixel after (TensorFlow's and Keras' rule)."""
    total = max((-(-size // stride) - 1) * stride + (k - 1) * rate + 1 - size, 0)
    return total // 2, total - total // 2


def _pointwise(x, kernel):
    """Whether ``kernel`` is a 1x1 convolution of all of ``x``'s channels (NHWC)."""
    return (len(x.shape) == 4 and int(kernel.shape[0]) == 1 and int(kernel.shape[1]) == 1
            and x.shape[-1] is not None and int(kernel.shape[2]) == int(x.shape[-1]))


def _subpixel_conv_transpose(x, kernel, strides, padding, output_padding, keras_padding):
    """``keras.ops.conv_transpose`` (no dilation, static ``H, W``) as one stride-1
    convolution producing every output phase, then depth-to-space.

    A transposed convolution with stride ``s`` and kernel size ``k`` adds ``x[j] *
    W[t]`` to output row ``s * j + t`` of its full (uncropped) output. Writing ``t = s *
    q + r``, output row ``s * m + r`` (phase ``r``) is ``sum_q x[m - q] W[s * q + r]``: a
    plain convolution of ``x`` (padded by ``Q - 1 = ceil(k / s) - 1`` rows) with the
    kernel's phase-``r`` taps in reverse order. All ``s * s`` phases are one convolution
    with ``s * s * filters`` output channels (taps beyond ``k`` are zero), interleaved by
    a reshape; the crop (or zero extension) of Keras' ``padding`` / ``output_padding``
    comes last, from Keras' own padding arithmetic. Same numbers (float rounding) and
    gradients, with dense convolutions only.

    Args:
        x: ``(batch, H, W, C)``.
        kernel: ``(kh, kw, filters, C)``.
        strides: ``(sh, sw)``.
        padding: ``"same"`` or ``"valid"``.
        output_padding: ``None``, an int or a pair.
        keras_padding: Keras' ``(kernel, stride, dilation, padding, output_padding) ->
            (left, right)`` padding of its JAX transposed convolution.

    Returns:
        ``(batch, H', W', filters)``, as ``keras.ops.conv_transpose``.
    """
    kh, kw, filters, channels = (int(d) for d in kernel.shape)
    extra = (None, None) if output_padding is None else _pair(output_padding)
    axes = []  # per spatial axis: (size, k, s, taps per phase Q, first row kept, rows)
    for size, k, s, o in zip(x.shape[1:3], (kh, kw), strides, extra, strict=True):
        low, high = keras_padding(k, s, 1, padding, o)
        # Keras (as lax.conv_transpose) keeps rows k - 1 - low ... of the full output
        axes.append((int(size), k, s, -(-k // s), k - 1 - low,
                     (int(size) - 1) * s + low + high - k + 2))
    (h, _, sh, qh, top, out_h), (w, _, sw, qw, left, out_w) = axes
    taps = ops.pad(ops.transpose(kernel, (0, 1, 3, 2)),
                   [[0, qh * sh - kh], [0, qw * sw - kw], [0, 0], [0, 0]])
    taps = ops.flip(ops.flip(ops.reshape(taps, (qh, sh, qw, sw, channels, filters)), 0), 2)
    taps = ops.reshape(ops.transpose(taps, (0, 2, 4, 1, 3, 5)),
                       (qh, qw, channels, sh * sw * filters))
    # (a 1x1 convolution when k <= s, e.g. U-Net's 2x2 stride 2: a matrix product)
    phases = conv(ops.pad(x, [[0, 0], [qh - 1, qh - 1], [qw - 1, qw - 1], [0, 0]]), taps,
                  padding="valid")
    rows, cols = h + qh - 1, w + qw - 1
    out = ops.reshape(ops.transpose(ops.reshape(phases, (-1, rows, cols, sh, sw, filters)),
                                    (0, 1, 3, 2, 4, 5)), (-1, rows * sh, cols * sw, filters))
    # rows past the full output are zeros already; Keras' zero extension goes further
    out = ops.pad(out, [[0, 0], [max(0, -top), max(0, top + out_h - rows * sh)],
                        [max(0, -left), max(0, left + out_w - cols * sw)], [0, 0]])
    top, left = max(top, 0), max(left, 0)
    return out[:, top:top + out_h, left:left + out_w, :]


def max_pool(x, pool_size, strides=None, padding="valid"):
    """2D max pooling, NHWC, as ``keras.ops.max_pool`` computes it, in a faster form on
    the JAX and PyTorch backends.

    Problems worked around: on the JAX backend the gradient of ``keras.ops.max_pool``
    (``lax.reduce_window``) is XLA's ``select_and_scatter``, which its CPU backend runs
    slowly: a ResNet stem's 3x3 stride-2 pooling of 4x128x128x64 took 65-78 ms with its
    gradient. Here the maximum is taken over the ``k * k`` strided slices of the input and
    the output selects the first slice that holds it (row-major window order, the tap
    ``select_and_scatter`` and torch pick), so the gradient flows to that one tap: only
    elementwise work XLA fuses, 15 ms. On the PyTorch backend ``keras.ops.max_pool``
    copies the input to NCHW-contiguous and returns a permuted view the next layer
    copies again; here torch's ``max_pool2d`` reads the NHWC tensor as a channels-last
    view. TensorFlow uses ``keras.ops.max_pool``. ``"same"`` pads with ``-inf`` as Keras.

    Args:
        x: ``(batch, H, W, C)``.
        pool_size: an int or a pair.
        strides: an int, a pair, or ``None`` (the pool size).
        padding: ``"valid"`` or ``"same"``.

    Returns:
        ``(batch, H', W', C)``.
    """
    pool = _pair(pool_size)
    strides = pool if strides is None else _pair(strides)
    backend = keras.backend.backend()
    static = len(x.shape) == 4 and x.shape[1] is not None and x.shape[2] is not None
    if backend not in ("jax", "torch") or not static:
        return ops.max_pool(x, pool, strides, padding)
    pads, out_size = [], []
    for size, k, s in zip(x.shape[1:3], pool, strides, strict=True):
        size = int(size)
        if padding == "same":
            out = -(-size // s)
            pads.append(_same_pads(size, k, s))
        else:
            out = (size - k) // s + 1
            pads.append((0, 0))
        out_size.append(out)
    if any(p for pair in pads for p in pair):
        x = ops.pad(x, [[0, 0], list(pads[0]), list(pads[1]), [0, 0]],
                    constant_values=float("-inf"))
    if backend == "torch":
        import torch.nn.functional as F

        x = ops.convert_to_tensor(x)
        return F.max_pool2d(x.permute(0, 3, 1, 2), pool, strides).permute(0, 2, 3, 1)
    (kh, kw), (sh, sw), (out_h, out_w) = pool, strides, out_size
    taps = [x[:, i:i + (out_h - 1) * sh + 1:sh, j:j + (out_w - 1) * sw + 1:sw, :]
            for i in range(kh) for j in range(kw)]
    peak = taps[0]
    for tap in taps[1:]:
        peak = ops.maximum(peak, tap)
    peak = ops.stop_gradient(peak)
    out = taps[-1]
    for tap in reversed(taps[:-1]):  # the first tap equal to the maximum wins
        out = ops.where(tap == peak, tap, out)
    return out


def atrous_conv(x, kernel, dilation_rate, padding="same", bias=None):
    """A stride-1 dilated (atrous) 2D convolution, NHWC, in its fastest correct form.

    Same numbers as ``keras.ops.conv(x, kernel, 1, padding, dilation_rate=...)``, computed
    differently where a backend's own path is slow:

    - TensorFlow without XLA (Keras' default on CPU): ``keras.ops.conv`` calls
      ``tf.nn.convolution``, which turns any dilation into space-to-batch +
      convolution + batch-to-space; on CPU that took 0.72 s instead of 0.12 s for a
      3x3 conv 2048 -> 256 at rate 12 on a 4x32x32 map, 1.8 s instead of 0.07 s at rate
      24. ``tf.nn.conv2d(dilations=...)`` runs oneDNN's dilated kernel directly
      (forward and gradients, 2.7-7.6x faster than the space-to-batch form with its
      gradient at rates 12-24; under XLA it compiles as well). Inside
      :func:`portable_graph` (what :mod:`keras_seg.export` traces in) the padding is
      a separate ``tf.pad`` and the convolution ``"VALID"``: tf2onnx turns ``"SAME"``
      into ONNX ``auto_pad=SAME_UPPER``, which onnxruntime refuses for a dilated
      ``Conv``.
    - Any backend, when the sizes are static (JAX, PyTorch, TensorFlow with a fixed
      input size) and ``padding="same"``: when ``dilation >= height`` (width), every
      row (column) of taps but the centre one lies outside the map and only ever sees
      the zero padding, so the kernel is cut to its centre row (column): at DeepLab's
      rates larger than the feature map a 3x3 branch becomes the 1x1 convolution it
      computes (e.g. rate 36 on a 32x32 map).

    Args:
        x: ``(batch, H, W, C)``.
        kernel: ``(kh, kw, C, filters)`` (odd sizes when ``padding="same"``).
        dilation_rate: ``(rate_h, rate_w)`` or an int.
        padding: ``"same"`` or ``"valid"``.
        bias: ``(filters,)`` or ``None`` (as for :func:`conv`).

    Returns:
        ``(batch, H', W', filters)``.
    """
    rate = (dilation_rate, dilation_rate) if isinstance(dilation_rate, int) else tuple(
        int(r) for r in dilation_rate)
    if padding == "same":
        kernel, rate = _drop_outside_taps(x, kernel, rate)
    if keras.backend.backend() == "tensorflow" and max(rate) > 1:
        import tensorflow as tf

        if padding == "same" and _PORTABLE[0]:
            # exports: tf2onnx turns "SAME" into ONNX auto_pad=SAME_UPPER, which
            # onnxruntime refuses for a dilated Conv; TensorFlow's CPU gradient refuses
            # explicit padding with dilation, so the pad is a separate op (symmetric: odd
            # kernel, stride 1), only while exporting
            pads = [[0, 0]] + [[r * (k // 2)] * 2 for r, k in
                               zip(rate, kernel.shape[:2], strict=True)] + [[0, 0]]
            x, padding = tf.pad(x, pads), "valid"
        out = tf.nn.conv2d(x, kernel, strides=1, padding=padding.upper(),
                           dilations=list(rate))
        return out if bias is None else ops.add(out, ops.reshape(bias, (1, 1, 1, -1)))
    return conv(x, kernel, strides=1, padding=padding, dilation_rate=rate, bias=bias)


def depthwise_conv(x, kernel, strides=1, padding="same", dilation_rate=1):
    """A depthwise 2D convolution, NHWC, in its fastest correct form (same numbers as
    ``keras.ops.depthwise_conv``).

    Problem worked around: on the JAX backend ``keras.ops.depthwise_conv`` is a grouped
    ``lax.conv_general_dilated`` (one group per channel), which XLA's CPU backend runs
    about as slowly as a dense convolution of the same width: a 3x3 depthwise conv
    over 4x64x64x256 took 80 ms forward and 250 ms with its gradient, the 256 -> 256
    dense one 270 ms. With stride 1 and an odd kernel it is computed here as the sum of
    ``kh * kw`` shifted slices of the (padded) input times one kernel tap each, which
    XLA fuses into elementwise loops: 4 ms forward, 88 ms with the gradient. Taps that
    only see padding (static sizes, ``dilation >= size``) are left out. On PyTorch it is
    the grouped convolution of :func:`conv` (no layout copies), without such taps too.
    TensorFlow and strided JAX convolutions use ``keras.ops.depthwise_conv``.

    Args:
        x: ``(batch, H, W, C)``.
        kernel: ``(kh, kw, C, depth_multiplier)``.
        strides: an int or a pair.
        padding: ``"same"`` or ``"valid"``.
        dilation_rate: an int or a pair.

    Returns:
        ``(batch, H', W', C * depth_multiplier)``, channel ``c * m + j`` from input
        channel ``c`` and multiplier ``j`` (Keras' order).
    """
    strides, rate = _pair(strides), _pair(dilation_rate)
    kh, kw = int(kernel.shape[0]), int(kernel.shape[1])
    if keras.backend.backend() == "torch":
        # a grouped convolution without Keras' layout copies (see conv), taps that only see
        # padding left out: kernel (kh, kw, C, m) -> (kh, kw, 1, C * m), output channel
        # c * m + j as Keras orders it
        if padding == "same" and strides == (1, 1) and kh % 2 == 1 and kw % 2 == 1:
            kernel, rate = _drop_outside_taps(x, kernel, rate)
        kh, kw = int(kernel.shape[0]), int(kernel.shape[1])
        return conv(x, ops.reshape(kernel, (kh, kw, 1, -1)), strides, padding, rate)
    shifted = (keras.backend.backend() == "jax" and strides == (1, 1) and kh % 2 == 1
               and kw % 2 == 1 and x.shape[1] is not None and x.shape[2] is not None)
    if not shifted:
        return ops.depthwise_conv(x, kernel, strides=strides, padding=padding,
                                  dilation_rate=rate)
    channels, multiplier = int(kernel.shape[2]), int(kernel.shape[3])
    if multiplier > 1:
        x = ops.repeat(x, multiplier, axis=-1)
    taps = ops.reshape(kernel, (kh, kw, channels * multiplier))
    height, width = int(x.shape[1]), int(x.shape[2])
    if padding == "same":
        pad_h, pad_w = rate[0] * (kh // 2), rate[1] * (kw // 2)
        out_h, out_w = height, width
        x = ops.pad(x, [[0, 0], [pad_h, pad_h], [pad_w, pad_w], [0, 0]])
    else:
        pad_h = pad_w = 0
        out_h, out_w = height - rate[0] * (kh - 1), width - rate[1] * (kw - 1)
    y = None
    for i in range(kh):
        top = i * rate[0]
        if top + out_h <= pad_h or top >= pad_h + height:  # rows of padding only
            continue
        for j in range(kw):
            left = j * rate[1]
            if left + out_w <= pad_w or left >= pad_w + width:
                continue
            term = x[:, top:top + out_h, left:left + out_w, :] * taps[i, j]
            y = term if y is None else y + term
    return y


def _pair(value):
    return (int(value), int(value)) if isinstance(value, int) else tuple(int(v) for v in value)


_PORTABLE = [False]


class portable_graph:
    """Context manager: while active, :func:`atrous_conv` builds the graph form every
    exporter and runtime accepts (explicit ``tf.pad`` + ``"VALID"`` on TensorFlow).
    :mod:`keras_seg.export` traces the model inside it."""

    def __enter__(self):
        self._previous = _PORTABLE[0]
        _PORTABLE[0] = True
        return self

    def __exit__(self, *exc):
        _PORTABLE[0] = self._previous
        return False


def _drop_outside_taps(x, kernel, rate):
    """Cut the rows / columns of taps that see only padding (static sizes only)."""
    shape = x.shape
    kh, kw = kernel.shape[0], kernel.shape[1]
    rate = list(rate)
    for axis, size, k in ((0, shape[1], kh), (1, shape[2], kw)):
        if size is None or k == 1 or k % 2 == 0 or rate[axis] < size:
            continue
        centre = k // 2
        kernel = kernel[centre:centre + 1] if axis == 0 else kernel[:, centre:centre + 1]
        rate[axis] = 1
    return kernel, tuple(rate)


def fused_batch_norm(x, gamma, beta, mean, variance, epsilon, training):
    """Batch normalization over the last axis of ``x`` in one fused kernel (PyTorch
    backend), or ``None`` where this shim has nothing faster to offer.

    Problem worked around: on the PyTorch backend Keras' ``BatchNormalization`` computes
    the moments and the normalization as about eight separate eager operations, each a
    pass over the feature map, and autograd records as many for the backward pass:
    training-mode BatchNorm was 24% of a DeepLab v3 step (benchmarks/profile_dilated.md).
    ``torch.native_batch_norm`` does it in one kernel (forward and backward); a
    channels-last map moved to NCHW by ``movedim`` is a view in torch's channels-last
    memory format, which that kernel reads as it lies.

    Args:
        x: ``float32 (B, H, W, C)`` (any rank >= 2, channels last).
        gamma, beta: ``(C,)`` scale and offset.
        mean, variance: ``(C,)`` moving statistics (used when not ``training``).
        epsilon: added to the variance.
        training: normalize with the batch statistics (``True``) or the moving ones.

    Returns:
        ``(outputs, batch_mean, batch_variance)`` (the batch statistics, variance biased
        as Keras keeps it, are ``None`` when not ``training``), or ``None`` on the other
        backends and for other dtypes: the caller then uses Keras' own computation.
    """
    if keras.backend.backend() != "torch" or keras.backend.standardize_dtype(x.dtype) != \
            "float32" or len(x.shape) < 2:
        return None
    import torch

    x, gamma, beta, mean, variance = (ops.convert_to_tensor(v)
                                      for v in (x, gamma, beta, mean, variance))
    channels_first = torch.movedim(x, -1, 1)
    if training:
        out, batch_mean, inverse_std = torch.native_batch_norm(
            channels_first, gamma, beta, None, None, True, 0.0, epsilon)
        # biased variance, as Keras' moments give it (torch's own moving variance would
        # be the unbiased one); from 1 / sqrt(var + eps) in float64
        batch_variance = (inverse_std.detach().double().pow(-2) - epsilon).clamp_min(0.0)
        return (torch.movedim(out, 1, -1), batch_mean.detach(),
                batch_variance.to(torch.float32))
    out = torch.nn.functional.batch_norm(channels_first, mean, variance, gamma, beta,
                                         training=False, eps=epsilon)
    return torch.movedim(out, 1, -1), None, None


def per_replica_loss(value):
    """``value`` divided by the replicas of the current ``tf.distribute`` strategy.

    Problem worked around: under a ``tf.distribute`` strategy every replica's loss must be
    divided by ``num_replicas_in_sync`` (the replicas' gradients are summed). Keras does it
    inside ``keras.losses.Loss.__call__``; a loss that overrides ``__call__`` (the keras-seg
    losses reduce themselves) must do it itself, else two replicas double the gradients.
    Keras undoes the division for the loss it reports. No effect outside a strategy, with
    one replica, and on the other backends (JAX computes the global loss in one program).
    """
    if keras.backend.backend() == "tensorflow":
        import tensorflow as tf

        replicas = tf.distribute.get_strategy().num_replicas_in_sync
        if replicas > 1:
            value = value * ops.cast(1.0 / replicas, value.dtype)
    return value


def _is_static(size):
    try:
        int(size[0])
        int(size[1])
        return True
    except TypeError:
        return False


def pad_amount(size, multiple):
    """Rows (or columns) to add so that ``size`` becomes a multiple of ``multiple``.

    The same number as ``(-size) % multiple``, for a static or dynamic ``size >= 0``.
    Problem worked around: tf2onnx converts TensorFlow's integer ``FloorMod`` into
    ONNX ``Div``/``Mul``/``Sub``, a truncated remainder, so in the ONNX graph of a
    model exported through TensorFlow ``(-67) % 4`` was -3 instead of 1: the padding
    became a crop and a 67x93 input gave a 64x92 output. With non-negative operands
    the floored and truncated remainders agree.
    """
    return (multiple - size % multiple) % multiple


def _tf_pooling_kernels():
    """Whether :func:`max_pool_with_argmax` and :func:`max_unpool` use TensorFlow's own
    kernels: TensorFlow backend, CPU only (no GPU visible), outside :class:`portable_graph`
    and outside an XLA-compiled function (``jit_compile=True``), where they would not
    compile."""
    if keras.backend.backend() != "tensorflow" or _PORTABLE[0]:
        return False
    import tensorflow as tf

    try:  # a private module: if a TensorFlow release moves it, keep the portable path
        from tensorflow.python.ops import control_flow_util
    except ImportError:
        return False
    if control_flow_util.GraphOrParentsInXlaContext(tf.compat.v1.get_default_graph()):
        return False
    return not tf.config.list_logical_devices("GPU")


def _static_or_dynamic(x, axis):
    """``x.shape[axis]`` when known while tracing, else the scalar tensor ``tf.shape(x)[axis]``."""
    import tensorflow as tf

    return x.shape[axis] if x.shape[axis] is not None else tf.shape(x)[axis]


_INT32_LIMIT = 2 ** 31


def max_pool_with_argmax(x, pool_size, padding):
    """Non-overlapping max pooling that keeps the position of each maximum, through
    TensorFlow's ``MaxPoolWithArgmax`` kernel, or ``None`` where the caller's ``keras.ops``
    formulation (:class:`keras_seg.layers.MaxPoolingWithArgmax2D`) is to be used.

    Problem worked around: ``keras.ops`` has no argmax pooling, and on the TensorFlow
    backend the window-wise formulation (``k * k`` strided slices, their maximum and
    ``where`` selections) is slow on CPU: 172 ms forward + backward for a 2x2 pooling of
    8x128x128x64 (2 threads), its gradient a zero-filled full-size tensor per slice;
    10.5 ms here (Keras' ``MaxPooling2D``: 5 ms). TensorFlow's CPU kernel takes 3.4 ms
    with ``int32`` indices (33 ms with ``int64`` ones, the kernel's default); the
    gradient is written with ``MaxPoolGradWithArgmax`` (int64 indices: TensorFlow has no
    CPU kernel of it for ``int32``), a scatter into zeros. Same numbers as the layer: the
    first maximum in row-major window order wins (the kernel replaces its maximum only on
    a strictly greater value), the gradient flows to it only, a window of ``-inf`` keeps
    its first cell; ``"same"`` pads at the bottom / right as the layer does (TensorFlow's
    own ``"SAME"`` for ``k <= 2``, where it pads the same way; an explicit ``-inf`` pad
    and ``"VALID"`` above, TensorFlow centring its padding). A window holding a NaN
    differs (the kernel skips a NaN after the first cell; the ``keras.ops`` path gives 0
    and an index outside the window). Indices are ``int32`` in the kernel while a
    (padded) image has fewer than ``2**31`` values (``H * W * C``), ``int64`` beyond,
    chosen at run time for dynamic sizes. Not used under :class:`portable_graph`
    (exporters: tf2onnx has no ``MaxPoolGradWithArgmax``), under XLA (no kernel) or with
    a GPU visible (its kernel gives index -1 to a window of ``-inf``; not measured).

    Args:
        x: ``(batch, H, W, C)``, a float dtype.
        pool_size: int ``k``: ``k x k`` windows, stride ``k``.
        padding: ``"valid"`` (trailing rows / columns that do not fill a window are
            dropped) or ``"same"`` (partial windows kept, padded with ``-inf``).

    Returns:
        ``(pooled, indices)``: ``pooled`` ``(batch, H', W', C)`` in ``x``'s dtype and
        ``indices`` (int32, same shape), the flat position ``row * W + col`` of each
        maximum in the ``H x W`` plane of ``x``; or ``None`` (see above).
    """
    if keras.backend.backend() == "torch" and not _PORTABLE[0]:
        return _torch_max_pool_with_argmax(x, pool_size, padding)
    if not _tf_pooling_kernels():
        return None
    import tensorflow as tf

    k = int(pool_size)
    x = tf.convert_to_tensor(x)
    h, w, c = (_static_or_dynamic(x, axis) for axis in (1, 2, 3))
    tf_padding = padding.upper()
    plane_h, plane_w = h, w
    if padding == "same" and k > 2:
        pad_h, pad_w = pad_amount(h, k), pad_amount(w, k)
        x = tf.pad(x, [[0, 0], [0, pad_h], [0, pad_w], [0, 0]],
                   constant_values=float("-inf"))
        plane_h, plane_w, tf_padding = h + pad_h, w + pad_w, "VALID"

    def pool(index_dtype):
        pooled, argmax = _argmax_pool(x, k, tf_padding, index_dtype)
        # argmax = (row * plane_w + col) * C + channel
        if isinstance(c, int) and c & (c - 1) == 0:
            flat = tf.bitwise.right_shift(argmax, tf.cast(c.bit_length() - 1, index_dtype))
        else:
            flat = argmax // tf.cast(c, index_dtype)
        return pooled, tf.cast(_change_plane_width(flat, plane_w, w), "int32")

    if all(isinstance(d, int) for d in (plane_h, plane_w, c)):
        return pool(tf.int32 if plane_h * plane_w * c < _INT32_LIMIT else tf.int64)
    size = tf.cast(plane_h, tf.int64) * tf.cast(plane_w, tf.int64) * tf.cast(c, tf.int64)
    return tf.cond(size < _INT32_LIMIT, lambda: pool(tf.int32), lambda: pool(tf.int64))


def _argmax_pool(x, k, padding, index_dtype):
    """``tf.nn.max_pool_with_argmax`` (indices without the batch) with its gradient through
    ``MaxPoolGradWithArgmax`` (int64 indices, the only CPU kernel)."""
    import tensorflow as tf

    window = [1, k, k, 1]

    @tf.custom_gradient
    def pool(x):
        pooled, argmax = tf.nn.max_pool_with_argmax(x, window, window, padding,
                                                    output_dtype=index_dtype,
                                                    include_batch_in_index=False)

        def grad(d_pooled, *unused):
            return tf.raw_ops.MaxPoolGradWithArgmax(
                input=x, grad=d_pooled, argmax=tf.cast(argmax, tf.int64), ksize=window,
                strides=window, padding=padding)

        return (pooled, argmax), grad

    return pool(x)


def _change_plane_width(index, width, new_width):
    """``row * width + col`` -> ``row * new_width + col`` for an integer tensor of flat
    positions; no division when the widths are equal (a ``tf.cond`` when either is dynamic:
    the integer division of the other branch cost 4 ms on 2M indices)."""
    import tensorflow as tf

    if isinstance(width, int) and isinstance(new_width, int):
        return index if width == new_width else index + (index // width) * (new_width - width)
    width, new_width = tf.cast(width, index.dtype), tf.cast(new_width, index.dtype)
    return tf.cond(tf.equal(width, new_width), lambda: index,
                   lambda: index + (index // width) * (new_width - width))


def max_unpool(values, indices, size, pool_size):
    """Put ``values`` at the positions ``indices`` of a zero ``size`` plane (the inverse
    of :func:`max_pool_with_argmax`) through TensorFlow's ``MaxPoolGradWithArgmax`` kernel,
    or ``None`` where the caller's ``keras.ops`` formulation
    (:class:`keras_seg.layers.MaxUnpooling2D`) is to be used.

    Problem worked around: ``keras.ops`` has no scatter that works alike on every backend,
    and the one-hot ``where`` selections with their depth-to-space reshapes of the
    ``keras.ops`` formulation took 37 ms forward + backward on the TensorFlow backend
    (8x64x64x64 values, k=2, CPU, 2 threads); 26 ms here (Keras' ``UpSampling2D``: 9 ms).
    ``MaxPoolGradWithArgmax`` scatters each value to its index in one pass (5-6 ms); the
    gradient with respect to ``values`` is a gather of the upstream gradient at the same
    indices (10 ms; TensorFlow's own, ``MaxPoolGradGradWithArgmax``, has no CPU kernel).
    Same numbers as the layer for indices inside their window (what the pooling gives).
    An index in the plane but outside its window is put where it points (as
    ``torch.nn.functional.max_unpool2d`` does; the ``keras.ops`` formulation drops it);
    one outside the ``H' k x W' k`` plane raises ``InvalidArgumentError`` (the kernel
    would abort the process). Used where :func:`max_pool_with_argmax` is.

    Args:
        values: ``(batch, H', W', C)``, a float dtype.
        indices: int, same shape: ``row * W + col`` in the ``H x W`` output plane, each
            inside its ``k x k`` window (row ``// k`` and col ``// k`` give the position
            of its value).
        size: ``(H, W)``, static ints or scalar tensors.
        pool_size: int ``k``.

    Returns:
        ``(batch, H, W, C)`` in ``values``' dtype, zeros where no index points (also
        the rows / columns a ``"valid"`` pooling dropped); or ``None`` (see above).
    """
    if keras.backend.backend() == "torch" and not _PORTABLE[0]:
        return _torch_max_unpool(values, indices, size, pool_size)
    if not _tf_pooling_kernels():
        return None
    import tensorflow as tf

    k = int(pool_size)
    values = tf.convert_to_tensor(values)
    b, oh, ow, c = (_static_or_dynamic(values, axis) for axis in range(4))
    h, w = size
    plane_h, plane_w = oh * k, ow * k  # the windows' plane (padded or cropped)
    idx = _change_plane_width(tf.cast(indices, tf.int64), w, plane_w)
    c_t = tf.cast(c, tf.int64)
    argmax = idx * c_t + tf.range(c_t, dtype=tf.int64)
    plane = tf.cast(plane_h, tf.int64) * tf.cast(plane_w, tf.int64) * c_t
    inside = tf.logical_and(tf.reduce_min(argmax) >= 0, tf.reduce_max(argmax) < plane)
    with tf.control_dependencies([tf.debugging.Assert(inside, [
            "MaxUnpooling2D: an index lies outside the unpooled plane (each index must be "
            "row * W + col inside its pooling window)"])]):
        argmax = tf.identity(argmax)
    window = [1, k, k, 1]

    @tf.custom_gradient
    def scatter(v):
        shell = tf.zeros(tf.stack([b, plane_h, plane_w, c]), v.dtype)
        out = tf.raw_ops.MaxPoolGradWithArgmax(input=shell, grad=v, argmax=argmax,
                                               ksize=window, strides=window,
                                               padding="VALID")

        def grad(d_out):
            offsets = tf.reshape(tf.range(tf.cast(b, tf.int64), dtype=tf.int64) * plane,
                                 (-1, 1, 1, 1))
            return tf.gather(tf.reshape(d_out, [-1]), argmax + offsets)

        return out, grad

    out = scatter(values)
    if all(isinstance(v, int) for v in (h, w, plane_h, plane_w)) and (h, w) == (
            plane_h, plane_w):
        return out
    # "valid" pooling dropped trailing rows / columns: zeros; "same" added some: cropped
    out = tf.pad(out, [[0, 0], [0, tf.maximum(h - plane_h, 0)],
                       [0, tf.maximum(w - plane_w, 0)], [0, 0]])
    return out[:, :h, :w, :]


def _torch_max_pool_with_argmax(x, pool_size, padding):
    """:func:`max_pool_with_argmax` on the PyTorch backend: ``max_pool2d`` with
    ``return_indices``, whose indices are the layer's (``row * W + col`` in the input's
    plane), whose first strictly greater value wins a window (the layer's tie rule) and
    whose gradient flows to that maximum only; ``ceil_mode`` keeps the partial windows of
    ``"same"``. A window holding a NaN differs (torch propagates it). The ``keras.ops``
    formulation took 1.1-1.3x max pooling + upsampling in a train step
    (benchmarks/unpooling_speed.md); the NHWC tensor is read as a channels-last view."""
    import torch.nn.functional as F

    k = int(pool_size)
    x = ops.convert_to_tensor(x)
    pooled, indices = F.max_pool2d(x.permute(0, 3, 1, 2), k, k, ceil_mode=padding == "same",
                                   return_indices=True)
    return pooled.permute(0, 2, 3, 1), indices.permute(0, 2, 3, 1).int()


def _torch_max_unpool(values, indices, size, pool_size):
    """:func:`max_unpool` on the PyTorch backend: ``max_unpool2d`` into the ``size``
    plane (the pre-pooling size, which torch accepts within one window of the pooled
    size times ``k``: the rows / columns a ``"valid"`` pooling dropped stay zero, those
    ``"same"`` added are not there). An index in the plane but outside its window is put
    where it points, as in :func:`max_unpool`."""
    import torch
    import torch.nn.functional as F

    k = int(pool_size)
    values, indices = ops.convert_to_tensor(values), ops.convert_to_tensor(indices)
    out = F.max_unpool2d(values.permute(0, 3, 1, 2), indices.permute(0, 3, 1, 2).to(
        torch.int64), k, k, output_size=[int(size[0]), int(size[1])])
    return out.permute(0, 2, 3, 1)

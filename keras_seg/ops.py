"""Backend shims: the only place in the core where a backend is named.

Every function here works around one concrete problem of ``keras.ops`` on one
backend; each says which. Everything else in the package calls ``keras.ops``.
"""

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

"""``BatchNormalization``: Keras' layer, with a fused kernel on the PyTorch backend."""

import keras

from keras_seg import ops as seg_ops


@keras.saving.register_keras_serializable(package="keras_seg")
class BatchNormalization(keras.layers.BatchNormalization):
    """``keras.layers.BatchNormalization`` whose common case runs as one fused kernel on
    the PyTorch backend (:func:`keras_seg.ops.fused_batch_norm`).

    Batch normalization (Ioffe & Szegedy 2015, "Batch Normalization: Accelerating Deep
    Network Training by Reducing Internal Covariate Shift"), as used after the
    convolutions of every keras-seg backbone and head. Same arguments, variables
    (``gamma``, ``beta``, ``moving_mean``, ``moving_variance``), moving-average update
    (``moving = moving * momentum + batch * (1 - momentum)``, batch variance biased) and
    numbers (to float rounding) as the Keras layer, which it is: ``isinstance`` checks,
    ``synchronized`` and checkpoints see a ``keras.layers.BatchNormalization``. The fused
    path is taken on PyTorch for float32 inputs normalized over the last axis, without
    mask, renorm or ``synchronized``; everything else, and the other backends, run
    Keras' own ``call``.

    Args: those of ``keras.layers.BatchNormalization``.

    Input shape: any, channels on ``axis``. Output shape: the input's.
    """

    def call(self, inputs, training=None, mask=None):
        fast = (mask is None and not self.renorm and not self.synchronized
                and self.axis in (-1, len(inputs.shape) - 1)
                and self.center and self.scale
                and keras.backend.standardize_dtype(self.variable_dtype) == "float32")
        if not fast:
            return super().call(inputs, training=training, mask=mask)
        train = bool(training) and self.trainable
        result = seg_ops.fused_batch_norm(inputs, self.gamma, self.beta, self.moving_mean,
                                          self.moving_variance, self.epsilon, train)
        if result is None:
            return super().call(inputs, training=training, mask=mask)
        outputs, mean, variance = result
        if train:
            momentum = self.momentum
            self.moving_mean.assign(self.moving_mean * momentum + mean * (1.0 - momentum))
            self.moving_variance.assign(
                self.moving_variance * momentum + variance * (1.0 - momentum))
        return keras.ops.cast(outputs, self.compute_dtype)

"""The Adaptive Context Module of APCNet (He, Deng, Zhou, Wang & Qiao 2019,
"Adaptive Pyramid Context Network for Semantic Segmentation", CVPR)."""

import keras
from keras import ops

from keras_seg import validation
from keras_seg.layers.atrous import Conv2D
from keras_seg.layers.normalization import BatchNormalization
from keras_seg.layers.pyramid import AdaptiveAveragePooling2D


def _conv_bn(owner, filters, name):
    policy = owner.dtype_policy
    conv = Conv2D(filters, 1, use_bias=False, kernel_initializer="he_normal",
                               dtype=policy, name=name + "_conv")
    norm = BatchNormalization(dtype=policy, name=name + "_bn")
    return conv, norm


@keras.saving.register_keras_serializable(package="keras_seg")
class AdaptiveContextModule(keras.layers.Layer):
    """Adaptive Context Module (ACM) of APCNet at one scale ``s`` (He et al. 2019).

    Two branches on the input ``X`` (``C`` channels):

    - context vectors: ``X`` is average-pooled adaptively to an ``s x s`` grid
      (:class:`AdaptiveAveragePooling2D`, PyTorch's bin boundaries) and reduced by
      a 1x1 conv + BN + ReLU to ``filters`` channels: ``y``, ``s^2`` vectors;
    - global-guided local affinity (GLA): ``X`` is reduced by another 1x1 conv +
      BN + ReLU to ``x`` (``filters`` channels); the global average ``g(x)`` of
      ``x`` is added to every position, and a 1x1 conv (with bias) + sigmoid
      gives each position ``i`` its affinities ``a_i`` to the ``s^2`` sub-regions.

    The adaptive context of position ``i`` is ``z_i = sum_k a_ik y_k`` (the
    ``(H W, s^2) @ (s^2, filters)`` product), and the module returns
    ``x + z`` (the context added back to the reduced local features, the
    paper's residual). The affinities are sigmoids, not a softmax: they are not
    normalised over the sub-regions.

    This is the module as the paper describes it. Reimplementations
    (mmsegmentation) also pass ``g(x)`` and ``z`` through 1x1 conv-BN-ReLU layers
    and add a fusion conv; those are not included.

    Args:
        scale: the grid size ``s`` (APCNet uses 1, 2, 3 and 6).
        filters: width of the reduced features and context vectors (512).

    Input shape: ``(batch, H, W, C)``, H and W possibly dynamic, C known.
    Output shape: ``(batch, H, W, filters)``.
    """

    def __init__(self, scale, filters=512, **kwargs):
        super().__init__(**kwargs)
        validation.positive_int("AdaptiveContextModule", "scale", scale)
        validation.positive_int("AdaptiveContextModule", "filters", filters)
        self.scale = scale
        self.filters = filters

    def build(self, input_shape):
        if input_shape[-1] is None:
            raise ValueError("AdaptiveContextModule: the channel count of the input must be "
                             "known.")
        channels = int(input_shape[-1])
        s, f = self.scale, self.filters
        self.pool = AdaptiveAveragePooling2D(s, dtype=self.dtype_policy, name="pool")
        self.context_conv, self.context_bn = _conv_bn(self, f, "context")
        self.reduce_conv, self.reduce_bn = _conv_bn(self, f, "reduce")
        self.affinity_conv = Conv2D(s * s, 1, dtype=self.dtype_policy,
                                                 name="affinity_conv")
        self.context_conv.build((None, s, s, channels))
        self.context_bn.build((None, s, s, f))
        self.reduce_conv.build((None, None, None, channels))
        self.reduce_bn.build((None, None, None, f))
        self.affinity_conv.build((None, None, None, f))

    def affinity(self, x, training=None):
        """Reduced features ``x`` ``(batch, H, W, filters)`` and the affinities
        ``(batch, H, W, s^2)`` (sigmoid outputs; sub-region ``k = row * s + col``)."""
        local = ops.relu(self.reduce_bn(self.reduce_conv(x), training=training))
        guided = local + ops.mean(local, axis=(1, 2), keepdims=True)
        return local, ops.sigmoid(self.affinity_conv(guided))

    def call(self, x, training=None):
        s, f = self.scale, self.filters
        y = self.pool(x)
        y = ops.relu(self.context_bn(self.context_conv(y), training=training))
        y = ops.reshape(y, (-1, s * s, f))  # row-major: k = row * s + col
        local, affinity = self.affinity(x, training=training)
        context = ops.einsum("nhwk,nkc->nhwc", affinity, y)
        return local + context

    def compute_output_shape(self, input_shape):
        return (*tuple(input_shape)[:3], self.filters)

    def get_config(self):
        return {**super().get_config(), "scale": self.scale, "filters": self.filters}

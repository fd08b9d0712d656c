"""The two self-attention modules of DANet (Fu, Liu, Tian, Li, Bao, Fang & Lu 2019,
"Dual Attention Network for Scene Segmentation", CVPR).

- :class:`PositionAttention` (PAM): every position attends to every other position
  of the feature map (spatial self-attention), scaled by ``gamma`` (initialised to 0).
- :class:`ChannelAttention` (CAM): every channel attends to every other channel,
  scaled by ``beta`` (initialised to 0).

Both work for spatial sizes known only at run time. Memory: the position attention
map has ``(H W)^2`` entries per image, e.g. 4096^2 = 16.8M at 1/8 of a 512x512 input
(64 MiB per image in float32); the channel attention map has only ``C^2``.
"""

import keras
from keras import ops

from keras_seg import ops as seg_ops
from keras_seg import validation
from keras_seg.layers.atrous import Conv2D

CHANNEL_ENERGIES = ("paper", "max_minus")


def _channels(layer, input_shape):
    if input_shape[-1] is None:
        raise ValueError(f"{layer}: the channel count of the input must be known.")
    return int(input_shape[-1])


def _flatten_positions(x, h, w):
    """``(batch, H, W, C)`` -> ``(batch, H * W, C)`` (H, W possibly dynamic)."""
    return ops.reshape(x, (-1, h * w, x.shape[-1]))


@keras.saving.register_keras_serializable(package="keras_seg")
class PositionAttention(keras.layers.Layer):
    """Position attention module of DANet (Fu et al. 2019).

    From the input ``A`` (``C`` channels), three 1x1 convolutions (with bias, as
    the authors' code) give the query ``B`` and key ``C'`` (``C / reduction``
    channels, C/8 in the paper) and the value ``D`` (``C`` channels). With the
    ``N = H W`` positions flattened, the attention ``S = softmax(B C'^T)`` is an
    ``N x N`` matrix whose row ``i`` sums to 1 over all positions ``j``, and

        ``E_i = gamma * sum_j S_ij D_j + A_i``,

    ``gamma`` a learnable scalar initialised to 0 (the module starts as the
    identity). The energies are cast to float32 before the softmax, also under a
    mixed-precision policy.

    Memory: ``S`` holds ``N^2`` values per image - quadratic in the number of
    positions. At the paper's output stride 8 on a 512x512 crop, ``N`` = 64 x 64 =
    4096 and ``S`` takes 64 MiB per image in float32 (plus as much again for the
    energies and, in training, their gradients); at stride 4 it would be 16x that.
    Use it on stride-8 (or coarser) features.

    Args:
        reduction: channel reduction of the query and key, ``C // reduction``
            channels (8 in the paper; at least 1 channel).

    Input shape: ``(batch, H, W, C)``, H and W possibly dynamic, C known.
    Output shape: ``(batch, H, W, C)``.
    """

    def __init__(self, reduction=8, **kwargs):
        super().__init__(**kwargs)
        validation.positive_int("PositionAttention", "reduction", reduction)
        self.reduction = reduction

    def build(self, input_shape):
        channels = _channels("PositionAttention", input_shape)
        key_channels = max(1, channels // self.reduction)
        policy = self.dtype_policy
        shape = (None, None, None, channels)
        self.query_conv = Conv2D(key_channels, 1, dtype=policy, name="query_conv")
        self.key_conv = Conv2D(key_channels, 1, dtype=policy, name="key_conv")
        self.value_conv = Conv2D(channels, 1, dtype=policy, name="value_conv")
        for conv in (self.query_conv, self.key_conv, self.value_conv):
            conv.build(shape)
        self.gamma = self.add_weight(name="gamma", shape=(), initializer="zeros")

    def attention(self, x):
        """The attention map ``S``: ``(batch, H W, H W)``, float32, rows sum to 1."""
        h, w = seg_ops.spatial_shape(x)
        q = _flatten_positions(self.query_conv(x), h, w)
        k = _flatten_positions(self.key_conv(x), h, w)
        energy = ops.matmul(q, ops.transpose(k, (0, 2, 1)))
        return ops.softmax(ops.cast(energy, "float32"), axis=-1)

    def call(self, x):
        h, w = seg_ops.spatial_shape(x)
        attn = ops.cast(self.attention(x), self.compute_dtype)
        v = _flatten_positions(self.value_conv(x), h, w)
        out = ops.reshape(ops.matmul(attn, v), (-1, h, w, x.shape[-1]))
        return self.gamma * out + x

    def compute_output_shape(self, input_shape):
        return tuple(input_shape)

    def get_config(self):
        return {**super().get_config(), "reduction": self.reduction}


@keras.saving.register_keras_serializable(package="keras_seg")
class ChannelAttention(keras.layers.Layer):
    """Channel attention module of DANet (Fu et al. 2019).

    With the input ``A`` flattened to ``N = H W`` positions by ``C`` channels, the
    channel energy is ``A^T A`` (``C x C``: ``energy_ij = sum_p A_pi A_pj``) and

        ``X = softmax(energy)`` (each row over the ``C`` channels),
        ``E_i = beta * sum_j X_ij A_j + A_i`` (``A_j`` the j-th channel map),

    ``beta`` a learnable scalar initialised to 0. No convolution is involved.

    ``energy="paper"`` is the paper's equation (plain softmax of the energy).
    ``energy="max_minus"`` is what the authors' released code computes:
    ``softmax(max_j(energy_ij) - energy_ij)``, which gives the most weight to the
    *least* similar channels. The energy and the softmax are computed in float32
    (the energy sums over all positions, too coarse in bfloat16).

    Memory: ``C^2`` per image (1 MiB at C = 512 in float32), independent of the
    spatial size.

    Args:
        energy: ``"paper"`` (default) or ``"max_minus"`` (the released code).

    Input shape: ``(batch, H, W, C)``, H and W possibly dynamic, C known.
    Output shape: ``(batch, H, W, C)``.
    """

    def __init__(self, energy="paper", **kwargs):
        super().__init__(**kwargs)
        if energy not in CHANNEL_ENERGIES:
            raise ValueError(f"ChannelAttention: energy must be one of {CHANNEL_ENERGIES} "
                             f"('paper': softmax of the energy; 'max_minus': softmax of max - "
                             f"energy, the authors' code); got {energy!r}.")
        self.energy = energy

    def build(self, input_shape):
        _channels("ChannelAttention", input_shape)
        self.beta = self.add_weight(name="beta", shape=(), initializer="zeros")

    def attention(self, x):
        """The attention map ``X``: ``(batch, C, C)``, float32, rows sum to 1."""
        h, w = seg_ops.spatial_shape(x)
        a = _flatten_positions(ops.cast(x, "float32"), h, w)
        energy = ops.matmul(ops.transpose(a, (0, 2, 1)), a)
        if self.energy == "max_minus":
            energy = ops.max(energy, axis=-1, keepdims=True) - energy
        return ops.softmax(energy, axis=-1)

    def call(self, x):
        h, w = seg_ops.spatial_shape(x)
        attn = ops.cast(self.attention(x), self.compute_dtype)
        a = _flatten_positions(x, h, w)
        # out[p, i] = sum_j X_ij a[p, j]
        out = ops.reshape(ops.matmul(a, ops.transpose(attn, (0, 2, 1))),
                          (-1, h, w, x.shape[-1]))
        return self.beta * out + x

    def compute_output_shape(self, input_shape):
        return tuple(input_shape)

    def get_config(self):
        return {**super().get_config(), "energy": self.energy}

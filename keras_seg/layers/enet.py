"""ENet blocks (Paszke, Chaurasia, Kim & Culurciello 2016, "ENet: A Deep Neural
Network Architecture for Real-Time Semantic Segmentation", arXiv:1606.02147)."""

import keras
from keras import layers, ops

from keras_seg import ops as seg_ops
from keras_seg.layers.atrous import Conv2D, Conv2DTranspose
from keras_seg.layers.normalization import BatchNormalization
from keras_seg.layers.pooling import MaxPooling2D, MaxPoolingWithArgmax2D, MaxUnpooling2D

_KINDS = ("regular", "dilated", "asymmetric", "downsampling", "upsampling")
_ACTIVATIONS = ("prelu", "relu")


def _activation(kind, dtype, name):
    if kind == "prelu":
        # one slope per channel, 0.25 at init (Torch's default, which ENet used)
        return layers.PReLU(alpha_initializer=keras.initializers.Constant(0.25),
                            shared_axes=[1, 2], dtype=dtype, name=name)
    return layers.ReLU(dtype=dtype, name=name)


def _match_size(x, reference):
    """Zero-pad (bottom/right) and crop ``x`` to the height and width of ``reference``."""
    h, w = seg_ops.spatial_shape(reference)
    xh, xw = seg_ops.spatial_shape(x)

    def nonneg(v):
        return max(v, 0) if isinstance(v, int) else ops.maximum(v, 0)

    x = ops.pad(x, [[0, 0], [0, nonneg(h - xh)], [0, nonneg(w - xw)], [0, 0]])
    return x[:, :h, :w, :]


def _scaled(d, factor):
    if d is None:
        return None
    return d * factor if factor >= 1 else d // int(round(1 / factor))


@keras.saving.register_keras_serializable(package="keras_seg")
class ENetInitialBlock(keras.layers.Layer):
    """ENet's initial block (Paszke et al. 2016, Fig. 2a).

    A 3x3 stride-2 convolution with ``filters - C`` filters (13 for RGB) next to a
    2x2 stride-2 max pooling of the input (its ``C`` channels), concatenated to
    ``filters`` channels, then BatchNorm and PReLU (one slope per channel). No
    bias.

    Args:
        filters: output channels (16 in the paper); must exceed the input's.

    Input shape: ``(batch, H, W, C)``.
    Output shape: ``(batch, ceil(H / 2), ceil(W / 2), filters)``.
    """

    def __init__(self, filters=16, **kwargs):
        super().__init__(**kwargs)
        self.filters = int(filters)

    def build(self, input_shape):
        c = input_shape[-1]
        if self.filters <= c:
            raise ValueError(f"ENetInitialBlock: filters ({self.filters}) must exceed the input "
                             f"channels ({c}); the paper uses 16 for RGB (13 conv + 3 pooled).")
        d = self.dtype_policy
        self.conv = Conv2D(self.filters - c, 3, strides=2, padding="same", use_bias=False,
                                  dtype=d, name="conv")
        self.pool = MaxPooling2D(2, padding="same", dtype=d, name="pool")
        self.bn = BatchNormalization(dtype=d, name="bn")
        self.act = _activation("prelu", d, "prelu")
        out = self.compute_output_shape(input_shape)
        self.conv.build(input_shape)
        self.bn.build(out)
        self.act.build(out)

    def call(self, x, training=None):
        y = ops.concatenate([self.conv(x), self.pool(x)], axis=-1)
        return self.act(self.bn(y, training=training))

    def compute_output_shape(self, input_shape):
        b, h, w = input_shape[:3]
        return (b, None if h is None else -(-h // 2), None if w is None else -(-w // 2),
                self.filters)

    def get_config(self):
        return {**super().get_config(), "filters": self.filters}


@keras.saving.register_keras_serializable(package="keras_seg")
class ENetBottleneck(keras.layers.Layer):
    """ENet bottleneck module (Paszke et al. 2016, Fig. 2b).

    Main branch: 1x1 projection to ``filters // projection_ratio`` channels (a 2x2
    stride-2 conv when downsampling), BN + activation; the main convolution, BN +
    activation; 1x1 expansion to ``filters``, BN; spatial dropout. It is added to
    the shortcut and activated. No biases. The main convolution by ``kind``:

    - ``"regular"``: 3x3; ``"dilated"``: 3x3 with ``dilation_rate``;
    - ``"asymmetric"``: ``k x 1`` then ``1 x k`` (``k = asymmetric_kernel``, 5);
    - ``"downsampling"``: 3x3 after the strided projection; the shortcut is a 2x2
      max pooling that keeps its indices, zero-padded to ``filters`` channels;
    - ``"upsampling"``: 3x3 stride-2 transposed conv; the shortcut is a 1x1 conv
      + BN to ``filters`` then max unpooling with the indices of the matching
      downsampling bottleneck (:class:`keras_seg.layers.MaxUnpooling2D`).

    Args:
        filters: output channels.
        kind: one of ``"regular"``, ``"dilated"``, ``"asymmetric"``,
            ``"downsampling"``, ``"upsampling"``.
        dilation_rate: the dilation of a ``"dilated"`` bottleneck (2, 4, 8, 16).
        asymmetric_kernel: ``k`` of an ``"asymmetric"`` bottleneck (5).
        dropout_rate: spatial dropout rate (0.01 in stage 1, 0.1 after).
        activation: ``"prelu"`` (encoder; one slope per channel) or ``"relu"``
            (decoder).
        projection_ratio: channel reduction of the projection (4).

    Call arguments and shapes:
        ``"downsampling"``: ``x (batch, H, W, C)`` -> ``[y, indices]``, ``y`` of
        shape ``(batch, H // 2, W // 2, filters)`` and ``indices`` (int32,
        ``(batch, H // 2, W // 2, C)``) for the matching upsampling bottleneck.
        ``"upsampling"``: ``[x, indices, reference]`` with ``x (batch, h, w, C)``,
        the indices of the matching downsampling bottleneck and ``reference`` its
        input ``(batch, H, W, *)`` -> ``(batch, H, W, filters)``.
        Others: ``(batch, H, W, C)`` -> ``(batch, H, W, filters)``; a shortcut
        with ``C != filters`` goes through a 1x1 conv + BN.
    """

    def __init__(self, filters, kind="regular", dilation_rate=1, asymmetric_kernel=5,
                 dropout_rate=0.1, activation="prelu", projection_ratio=4, **kwargs):
        super().__init__(**kwargs)
        if kind not in _KINDS:
            raise ValueError(f"ENetBottleneck: kind must be one of {_KINDS}, got {kind!r}.")
        if activation not in _ACTIVATIONS:
            raise ValueError(f"ENetBottleneck: activation must be one of {_ACTIVATIONS}, got "
                             f"{activation!r}.")
        if kind == "dilated" and int(dilation_rate) < 2:
            raise ValueError("ENetBottleneck: a 'dilated' bottleneck needs dilation_rate >= 2, "
                             f"got {dilation_rate!r}.")
        if not isinstance(filters, int) or filters < projection_ratio:
            raise ValueError(f"ENetBottleneck: filters must be an int >= projection_ratio "
                             f"({projection_ratio}), got {filters!r}.")
        self.filters = filters
        self.kind = kind
        self.dilation_rate = int(dilation_rate)
        self.asymmetric_kernel = int(asymmetric_kernel)
        self.dropout_rate = float(dropout_rate)
        self.activation = activation
        self.projection_ratio = int(projection_ratio)

    def build(self, input_shape):
        if self.kind == "upsampling":
            input_shape = input_shape[0]
        d = self.dtype_policy
        cin = input_shape[-1]
        mid = self.filters // self.projection_ratio
        kind = self.kind
        down = kind == "downsampling"
        self.project = Conv2D(mid, 2 if down else 1, strides=2 if down else 1,
                                     use_bias=False, dtype=d, name="project")
        self.project_bn = BatchNormalization(dtype=d, name="project_bn")
        self.project_act = _activation(self.activation, d, "project_act")
        if kind == "asymmetric":
            k = self.asymmetric_kernel
            self.main = [Conv2D(mid, (k, 1), padding="same", use_bias=False, dtype=d,
                                       name="main_a"),
                         Conv2D(mid, (1, k), padding="same", use_bias=False, dtype=d,
                                       name="main_b")]
        elif kind == "upsampling":
            self.main = [Conv2DTranspose(mid, 3, strides=2, padding="same",
                                                use_bias=False, dtype=d, name="main")]
        else:
            rate = self.dilation_rate if kind == "dilated" else 1
            self.main = [Conv2D(mid, 3, padding="same", dilation_rate=rate,
                                       use_bias=False, dtype=d, name="main")]
        self.main_bn = BatchNormalization(dtype=d, name="main_bn")
        self.main_act = _activation(self.activation, d, "main_act")
        self.expand = Conv2D(self.filters, 1, use_bias=False, dtype=d, name="expand")
        self.expand_bn = BatchNormalization(dtype=d, name="expand_bn")
        self.dropout = layers.SpatialDropout2D(self.dropout_rate, dtype=d, name="dropout")
        self.out_act = _activation(self.activation, d, "out_act")
        self.shortcut = self.shortcut_bn = None
        self.pool = self.unpool = None
        if down:
            self.pool = MaxPoolingWithArgmax2D(2, dtype=d, name="pool")
        elif kind == "upsampling" or cin != self.filters:
            self.shortcut = Conv2D(self.filters, 1, use_bias=False, dtype=d,
                                          name="shortcut")
            self.shortcut_bn = BatchNormalization(dtype=d, name="shortcut_bn")
        if kind == "upsampling":
            self.unpool = MaxUnpooling2D(2, dtype=d, name="unpool")

        # build every sub-layer now, so that saved weights load before the first call
        b, h, w = input_shape[:3]
        factor = 0.5 if down else (2 if kind == "upsampling" else 1)
        h2, w2 = _scaled(h, factor), _scaled(w, factor)
        in_res = (b, h, w)
        out_res = (b, h2, w2)
        self.project.build(input_shape)
        proj_res = out_res if down else in_res
        self.project_bn.build(proj_res + (mid,))
        self.project_act.build(proj_res + (mid,))
        shape = proj_res + (mid,)
        for conv in self.main:
            conv.build(shape)
            shape = conv.compute_output_shape(shape)
        self.main_bn.build(out_res + (mid,))
        self.main_act.build(out_res + (mid,))
        self.expand.build(out_res + (mid,))
        self.expand_bn.build(out_res + (self.filters,))
        self.out_act.build(out_res + (self.filters,))
        if self.shortcut is not None:
            self.shortcut.build(input_shape)
            self.shortcut_bn.build(in_res + (self.filters,))

    def call(self, inputs, training=None):
        if self.kind == "upsampling":
            x, indices, reference = inputs
        else:
            x = inputs
        y = self.project_act(self.project_bn(self.project(x), training=training))
        for conv in self.main:
            y = conv(y)
        if self.kind == "upsampling":
            y = _match_size(y, reference)
        y = self.main_act(self.main_bn(y, training=training))
        y = self.expand_bn(self.expand(y), training=training)
        y = self.dropout(y, training=training)

        if self.kind == "downsampling":
            shortcut, indices = self.pool(x)
            extra = self.filters - x.shape[-1]
            if extra > 0:
                shortcut = ops.pad(shortcut, [[0, 0], [0, 0], [0, 0], [0, extra]])
            return [self.out_act(y + shortcut), indices]
        shortcut = x
        if self.shortcut is not None:
            shortcut = self.shortcut_bn(self.shortcut(x), training=training)
        if self.kind == "upsampling":
            shortcut = self.unpool([shortcut, indices, reference])
        return self.out_act(y + shortcut)

    def compute_output_shape(self, input_shape):
        if self.kind == "upsampling":
            x_shape, _, ref_shape = input_shape
            return (x_shape[0], ref_shape[1], ref_shape[2], self.filters)
        b, h, w, c = input_shape
        if self.kind == "downsampling":
            res = (b, _scaled(h, 0.5), _scaled(w, 0.5))
            return [res + (self.filters,), res + (c,)]
        return (b, h, w, self.filters)

    def compute_output_spec(self, inputs, training=None):
        shape = self.compute_output_shape(
            [t.shape for t in inputs] if self.kind == "upsampling" else inputs.shape)
        if self.kind == "downsampling":
            return [keras.KerasTensor(shape[0], dtype=self.compute_dtype),
                    keras.KerasTensor(shape[1], dtype="int32")]
        return keras.KerasTensor(shape, dtype=self.compute_dtype)

    def get_config(self):
        return {**super().get_config(), "filters": self.filters, "kind": self.kind,
                "dilation_rate": self.dilation_rate,
                "asymmetric_kernel": self.asymmetric_kernel,
                "dropout_rate": self.dropout_rate, "activation": self.activation,
                "projection_ratio": self.projection_ratio}

"""The LinkNet decoder block (Chaurasia & Culurciello 2017, "LinkNet: Exploiting
Encoder Representations for Efficient Semantic Segmentation", VCIP)."""

import keras
from keras import layers

from keras_seg.layers.atrous import Conv2D, Conv2DTranspose
from keras_seg.layers.normalization import BatchNormalization

_UPSAMPLING = ("transpose", "bilinear", "nearest")


@keras.saving.register_keras_serializable(package="keras_seg")
class LinkNetDecoderBlock(keras.layers.Layer):
    """LinkNet decoder block ``m -> n`` (Chaurasia & Culurciello 2017, Fig. 3b).

    1x1 conv ``m -> m/4`` + BN + ReLU; 3x3 transposed conv ``m/4 -> m/4`` with
    stride ``strides`` + BN + ReLU; 1x1 conv ``m/4 -> n`` + BN + ReLU. The
    convolutions have no bias (each is followed by BatchNorm).

    With ``upsampling="bilinear"`` or ``"nearest"`` the transposed conv becomes a
    fixed x``strides`` interpolation followed by a 3x3 conv ``m/4 -> m/4``
    ("resize-convolution"): the same parameters, no learned upsampling.

    Args:
        filters: ``n``, the output channels.
        strides: 2 (upsamples x2; decoder blocks 2-4 of the paper) or 1 (block 1).
        kernel_size: the middle conv's kernel (3 in the paper).
        upsampling: ``"transpose"`` (the paper: transposed conv), ``"bilinear"``
            or ``"nearest"`` (interpolation, then a conv).

    Input shape: ``(batch, H, W, m)``.
    Output shape: ``(batch, strides * H, strides * W, filters)``.
    """

    def __init__(self, filters, strides=2, kernel_size=3, upsampling="transpose", **kwargs):
        super().__init__(**kwargs)
        if not isinstance(filters, int) or filters < 1:
            raise ValueError(f"LinkNetDecoderBlock: filters must be a positive int, got "
                             f"{filters!r}.")
        if strides not in (1, 2):
            raise ValueError(f"LinkNetDecoderBlock: strides must be 1 or 2, got {strides!r}.")
        if upsampling not in _UPSAMPLING:
            raise ValueError(f"LinkNetDecoderBlock: upsampling must be one of {_UPSAMPLING}, "
                             f"got {upsampling!r}.")
        self.filters = filters
        self.strides = strides
        self.kernel_size = kernel_size
        self.upsampling = upsampling

    def build(self, input_shape):
        m = input_shape[-1]
        mid = max(m // 4, 1)
        d = self.dtype_policy
        self.reduce = Conv2D(mid, 1, use_bias=False, dtype=d, name="reduce")
        self.reduce_bn = BatchNormalization(dtype=d, name="reduce_bn")
        self.resize = None
        if self.upsampling == "transpose":
            self.up = Conv2DTranspose(mid, self.kernel_size, strides=self.strides,
                                             padding="same", use_bias=False, dtype=d, name="up")
        else:
            if self.strides > 1:
                self.resize = layers.UpSampling2D(self.strides, interpolation=self.upsampling,
                                                  dtype=d, name="resize")
            self.up = Conv2D(mid, self.kernel_size, padding="same", use_bias=False,
                                    dtype=d, name="up")
        self.up_bn = BatchNormalization(dtype=d, name="up_bn")
        self.expand = Conv2D(self.filters, 1, use_bias=False, dtype=d, name="expand")
        self.expand_bn = BatchNormalization(dtype=d, name="expand_bn")
        s = self.strides
        b, h, w = input_shape[:3]
        up_shape = (b, None if h is None else h * s, None if w is None else w * s, mid)
        self.reduce.build(input_shape)
        self.reduce_bn.build((b, h, w, mid))
        if self.resize is None:
            self.up.build((b, h, w, mid))
        else:
            self.up.build(up_shape)
        self.up_bn.build(up_shape)
        self.expand.build(up_shape)
        self.expand_bn.build(up_shape[:3] + (self.filters,))

    def call(self, x, training=None):
        x = keras.ops.relu(self.reduce_bn(self.reduce(x), training=training))
        if self.resize is not None:
            x = self.resize(x)
        x = keras.ops.relu(self.up_bn(self.up(x), training=training))
        return keras.ops.relu(self.expand_bn(self.expand(x), training=training))

    def compute_output_shape(self, input_shape):
        s = self.strides
        b, h, w = input_shape[:3]
        return (b, None if h is None else h * s, None if w is None else w * s, self.filters)

    def get_config(self):
        return {**super().get_config(), "filters": self.filters, "strides": self.strides,
                "kernel_size": self.kernel_size, "upsampling": self.upsampling}

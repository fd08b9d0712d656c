"""Atrous Spatial Pyramid Pooling (DeepLab v2 / v3 / v3+) and its image-level branch.

- :class:`ImagePooling`: DeepLab v3's image-level feature (Chen et al. 2017,
  "Rethinking Atrous Convolution for Semantic Image Segmentation", Sec. 3.3).
- :class:`ASPP`: DeepLab v3's concat-fused ASPP (1x1 conv + three 3x3 atrous
  convs + image pooling, 256 channels, BN + ReLU, 1x1 projection), with
  DeepLab v3+'s depthwise-separable option (Chen et al. 2018).
- :class:`ASPPSum`: DeepLab v2's sum-fused ASPP head (Chen et al. 2017,
  "DeepLab: Semantic Image Segmentation with Deep Convolutional Nets, Atrous
  Convolution, and Fully Connected CRFs", TPAMI), ASPP-L rates 6, 12, 18, 24
  and ASPP-S rates 2, 4, 8, 12.

Every layer works for spatial sizes known only at run time and for batch size 1.
"""

import keras
from keras import ops

from keras_seg import validation
from keras_seg.layers.atrous import (
    AtrousConv2D,
    AtrousDepthwiseConv2D,
    AtrousSeparableConv2D,
    Conv2D,
)
from keras_seg.layers.normalization import BatchNormalization

ASPP_L_RATES = (6, 12, 18, 24)
ASPP_S_RATES = (2, 4, 8, 12)
ASPP_V3_RATES = (6, 12, 18)


def _check_rates(layer, rates):
    return validation.positive_int_tuple(layer, "rates", rates, "(6, 12, 18)")


def _check_epsilon(layer, value):
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not value > 0:
        raise ValueError(f"{layer}: bn_epsilon must be a positive number, got {value!r}.")
    return float(value)


def _channels(layer, input_shape):
    if input_shape[-1] is None:
        raise ValueError(f"{layer}: the channel count of the input must be known.")
    return int(input_shape[-1])


class _ConvBNReLU:
    """Helper bundling conv (+ BN + ReLU) sublayers of a composite layer."""

    def __init__(self, owner, filters, kernel_size, dilation, separable, name, bn_epsilon=1e-3,
                 bn_between=True):
        policy = owner.dtype_policy
        self.separable = separable and kernel_size > 1
        self.layers = []
        if self.separable and not bn_between:
            # segmentation_models.pytorch: depthwise 3x3 (rate r) straight into the
            # pointwise 1x1 (one SeparableConv2D), then BN + ReLU
            self.layers += [
                AtrousSeparableConv2D(filters, kernel_size, padding="same",
                                      dilation_rate=dilation, use_bias=False,
                                      pointwise_initializer="he_normal", dtype=policy,
                                      name=name + "_sepconv"),
                BatchNormalization(epsilon=bn_epsilon, dtype=policy,
                                                name=name + "_bn"),
                keras.layers.ReLU(dtype=policy, name=name + "_relu"),
            ]
            return
        if self.separable:
            # DeepLab v3+: depthwise 3x3 (rate r) + BN + ReLU, pointwise 1x1 + BN + ReLU
            self.layers += [
                AtrousDepthwiseConv2D(kernel_size, padding="same", dilation_rate=dilation,
                                      use_bias=False, dtype=policy, name=name + "_depthwise"),
                BatchNormalization(epsilon=bn_epsilon, dtype=policy,
                                                name=name + "_depthwise_bn"),
                keras.layers.ReLU(dtype=policy, name=name + "_depthwise_relu"),
            ]
        atrous = not self.separable and dilation > 1
        conv = AtrousConv2D if atrous else Conv2D  # the fast dilated path
        self.layers += [
            conv(filters, 1 if self.separable else kernel_size, padding="same",
                 dilation_rate=1 if self.separable else dilation, use_bias=False,
                 kernel_initializer="he_normal", dtype=policy,
                 name=name + ("_pointwise" if self.separable else "_conv")),
            BatchNormalization(epsilon=bn_epsilon, dtype=policy, name=name + "_bn"),
            keras.layers.ReLU(dtype=policy, name=name + "_relu"),
        ]

    def build(self, shape):
        for layer in self.layers:
            layer.build(shape)
            shape = layer.compute_output_shape(shape)
        return shape

    def __call__(self, x, training=None):
        for layer in self.layers:
            if isinstance(layer, keras.layers.BatchNormalization):
                x = layer(x, training=training)
            else:
                x = layer(x)
        return x


@keras.saving.register_keras_serializable(package="keras_seg")
class ImagePooling(keras.layers.Layer):
    """Image-level feature branch of DeepLab v3's ASPP (Chen et al. 2017, Sec. 3.3).

    Global average pooling over the spatial axes, a 1x1 convolution to
    ``filters`` + BatchNorm + ReLU, then bilinear upsampling back to the
    feature size. Upsampling a 1x1 map bilinearly gives a constant map, so it
    is computed exactly as a broadcast, which works for any (dynamic) size and
    exports as a plain multiplication.

    Batch size 1 in training: the BatchNorm then sees a single value per
    channel; Keras normalizes it to ``beta`` (no error, no NaN).

    Args:
        filters: output channels (256 in DeepLab v3).
        bn_epsilon: epsilon of the BatchNorm (Keras' 1e-3; 1e-5 for PyTorch weights).

    Input shape: ``(batch, H, W, C)``.
    Output shape: ``(batch, H, W, filters)``.
    """

    def __init__(self, filters=256, bn_epsilon=1e-3, **kwargs):
        super().__init__(**kwargs)
        validation.positive_int("ImagePooling", "filters", filters)
        self.filters = filters
        self.bn_epsilon = _check_epsilon("ImagePooling", bn_epsilon)
        # sublayer lists get public names: private ones can collide with TensorFlow's
        # trackable attributes (``_tracked``...) and then are not saved
        self.branch = _ConvBNReLU(self, filters, 1, 1, False, "image_pooling",
                                  self.bn_epsilon)
        self.branch_layers = self.branch.layers

    def build(self, input_shape):
        _channels("ImagePooling", input_shape)
        self.branch.build((None, 1, 1, input_shape[-1]))

    def call(self, x, training=None):
        pooled = ops.mean(x, axis=(1, 2), keepdims=True)
        y = self.branch(pooled, training=training)
        # bilinear upsampling of a 1x1 map = broadcast to (batch, H, W, filters)
        return y * ops.ones_like(x[..., :1])

    def compute_output_shape(self, input_shape):
        return (*input_shape[:3], self.filters)

    def get_config(self):
        return {**super().get_config(), "filters": self.filters, "bn_epsilon": self.bn_epsilon}


@keras.saving.register_keras_serializable(package="keras_seg")
class ASPP(keras.layers.Layer):
    """Atrous Spatial Pyramid Pooling of DeepLab v3 / v3+ (Chen et al. 2017, 2018).

    Parallel branches on the backbone's last feature map: a 1x1 conv, one 3x3
    conv per atrous rate (6, 12, 18 at output stride 16; doubled at output
    stride 8), and the :class:`ImagePooling` branch, each ``filters`` wide with
    BatchNorm + ReLU; concatenated (5 x 256 = 1280 channels in the paper) and
    projected by a 1x1 conv + BatchNorm + ReLU back to ``filters``.

    Args:
        filters: width of every branch and of the projection (256).
        rates: atrous rates of the 3x3 branches.
        image_pooling: add the image-level branch (True in v3 / v3+).
        separable: use depthwise-separable 3x3 branches (depthwise 3x3 at the
            rate + BN + ReLU, then pointwise 1x1 + BN + ReLU), DeepLab v3+'s
            "atrous separable convolution".
        separable_bn_between: with ``separable``: True (default, the paper's code)
            puts BN + ReLU between the depthwise and the pointwise conv (layers
            ``aspp_rate{r}_depthwise`` / ``_depthwise_bn`` / ``_pointwise`` / ``_bn``);
            False chains them directly, one ``SeparableConv2D``
            (``aspp_rate{r}_sepconv``) + BN + ReLU, as segmentation_models.pytorch's
            ``SeparableConv2d``.
        projection: apply the 1x1 projection after the concatenation; False
            returns the concatenation itself.
        dropout: dropout rate after the projection (0 in the papers; DeepLab
            v3+'s released code uses 0.1).
        bn_epsilon: epsilon of every BatchNorm (Keras' 1e-3; 1e-5 for weights
            converted from PyTorch).

    Input shape: ``(batch, H, W, C)``, H and W possibly dynamic.
    Output shape: ``(batch, H, W, filters)``, or ``(batch, H, W, filters * n)``
    with ``n`` branches when ``projection=False``.
    """

    def __init__(self, filters=256, rates=ASPP_V3_RATES, image_pooling=True, separable=False,
                 projection=True, dropout=0.0, bn_epsilon=1e-3, separable_bn_between=True,
                 **kwargs):
        super().__init__(**kwargs)
        self.bn_epsilon = _check_epsilon("ASPP", bn_epsilon)
        validation.positive_int("ASPP", "filters", filters)
        rates = _check_rates("ASPP", rates)
        if not 0.0 <= float(dropout) < 1.0:
            raise ValueError(f"ASPP: dropout must be in [0, 1), got {dropout!r}.")
        self.filters = filters
        self.rates = rates
        self.image_pooling = bool(image_pooling)
        self.separable = bool(separable)
        self.separable_bn_between = bool(separable_bn_between)
        self.projection = bool(projection)
        self.dropout = float(dropout)
        eps = self.bn_epsilon
        self.branches = [_ConvBNReLU(self, filters, 1, 1, False, "aspp_1x1", eps)]
        for r in rates:
            self.branches.append(_ConvBNReLU(self, filters, 3, r, self.separable, f"aspp_rate{r}",
                                             eps, bn_between=self.separable_bn_between))
        self.branch_layers = [layer for b in self.branches for layer in b.layers]
        self.pool = ImagePooling(filters, bn_epsilon=eps, dtype=self.dtype_policy,
                                 name="aspp_image_pooling") if self.image_pooling else None
        self.concat = keras.layers.Concatenate(dtype=self.dtype_policy, name="aspp_concat")
        self.project = (_ConvBNReLU(self, filters, 1, 1, False, "aspp_projection", eps)
                        if self.projection else None)
        self.projection_layers = self.project.layers if self.project else []
        self.drop = (keras.layers.Dropout(self.dropout, dtype=self.dtype_policy,
                                          name="aspp_dropout") if self.dropout else None)

    def _num_branches(self):
        return len(self.branches) + (1 if self.image_pooling else 0)

    def build(self, input_shape):
        _channels("ASPP", input_shape)
        shape = (None, None, None, input_shape[-1])
        for branch in self.branches:
            branch.build(shape)
        if self.pool is not None:
            self.pool.build(shape)
        if self.project is not None:
            self.project.build((None, None, None, self.filters * self._num_branches()))

    def call(self, x, training=None):
        outs = [branch(x, training=training) for branch in self.branches]
        if self.pool is not None:
            outs.append(self.pool(x, training=training))
        y = self.concat(outs)
        if self.project is not None:
            y = self.project(y, training=training)
        if self.drop is not None:
            y = self.drop(y, training=training)
        return y

    def compute_output_shape(self, input_shape):
        width = self.filters if self.projection else self.filters * self._num_branches()
        return (*input_shape[:3], width)

    def get_config(self):
        return {**super().get_config(), "filters": self.filters, "rates": list(self.rates),
                "image_pooling": self.image_pooling, "separable": self.separable,
                "separable_bn_between": self.separable_bn_between,
                "projection": self.projection, "dropout": self.dropout,
                "bn_epsilon": self.bn_epsilon}


@keras.saving.register_keras_serializable(package="keras_seg")
class ASPPSum(keras.layers.Layer):
    """DeepLab v2's sum-fused ASPP head (Chen et al. 2017, TPAMI, Sec. 3.3, Fig. 7).

    ResNet variant (``hidden_filters=None``): one 3x3 convolution per rate, from
    the feature map straight to ``filters`` (= the number of classes), the
    branch outputs summed. VGG variant (``hidden_filters=1024``): each branch is
    fc6 (3x3, rate r, 1024) + ReLU + dropout, fc7 (1x1, 1024) + ReLU + dropout,
    fc8 (1x1 to the classes); the branch outputs summed. Rates: ASPP-L
    (6, 12, 18, 24, :data:`ASPP_L_RATES`) or ASPP-S (2, 4, 8, 12,
    :data:`ASPP_S_RATES`). The sublayers follow the layer's dtype policy (build
    it with ``dtype="float32"`` to compute logits in float32 under mixed
    precision).

    Args:
        filters: output channels (number of classes).
        rates: atrous rates, one branch each.
        hidden_filters: None (ResNet variant) or the width of fc6 / fc7 (1024,
            VGG variant).
        dropout: dropout after fc6 and fc7 in the VGG variant (0.5).

    Input shape: ``(batch, H, W, C)``.
    Output shape: ``(batch, H, W, filters)``.
    """

    def __init__(self, filters, rates=ASPP_L_RATES, hidden_filters=None, dropout=0.5, **kwargs):
        super().__init__(**kwargs)
        validation.positive_int("ASPPSum", "filters", filters)
        rates = _check_rates("ASPPSum", rates)
        if hidden_filters is not None:
            validation.positive_int("ASPPSum", "hidden_filters", hidden_filters)
        if not 0.0 <= float(dropout) < 1.0:
            raise ValueError(f"ASPPSum: dropout must be in [0, 1), got {dropout!r}.")
        self.filters = filters
        self.rates = rates
        self.hidden_filters = hidden_filters
        self.dropout = float(dropout)
        policy = self.dtype_policy
        self.branches = []
        for r in rates:
            if hidden_filters is None:
                branch = [Conv2D(filters, 3, padding="same", dilation_rate=r,
                                              dtype=policy, name=f"aspp_rate{r}_conv")]
            else:
                branch = [
                    Conv2D(hidden_filters, 3, padding="same", dilation_rate=r,
                                        activation="relu", dtype=policy,
                                        name=f"aspp_rate{r}_fc6"),
                    keras.layers.Dropout(self.dropout, dtype=policy, name=f"aspp_rate{r}_drop6"),
                    Conv2D(hidden_filters, 1, activation="relu", dtype=policy,
                                        name=f"aspp_rate{r}_fc7"),
                    keras.layers.Dropout(self.dropout, dtype=policy, name=f"aspp_rate{r}_drop7"),
                    Conv2D(filters, 1, dtype=policy, name=f"aspp_rate{r}_fc8"),
                ]
            self.branches.append(branch)
        self.add = keras.layers.Add(dtype=policy, name="aspp_sum")

    def build(self, input_shape):
        channels = _channels("ASPPSum", input_shape)
        for branch in self.branches:
            shape = (None, None, None, channels)
            for layer in branch:
                layer.build(shape)
                shape = layer.compute_output_shape(shape)

    def call(self, x, training=None):
        outs = []
        for branch in self.branches:
            y = x
            for layer in branch:
                y = layer(y, training=training) if isinstance(layer, keras.layers.Dropout) \
                    else layer(y)
            outs.append(y)
        return outs[0] if len(outs) == 1 else self.add(outs)

    def compute_output_shape(self, input_shape):
        return (*input_shape[:3], self.filters)

    def get_config(self):
        return {**super().get_config(), "filters": self.filters, "rates": list(self.rates),
                "hidden_filters": self.hidden_filters, "dropout": self.dropout}

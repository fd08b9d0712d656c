"""G-FRNet building blocks (Islam, Rochan, Bruce & Wang 2017, "Gated Feedback
Refinement Network for Dense Image Labeling", CVPR).

A :class:`GateUnit` combines two adjacent encoder levels: the deeper one
(more semantic, half the resolution) gates the shallower one (more detail) by
element-wise multiplication. A :class:`GatedRefinement` unit turns the gated
features and the previous, coarser label map into a refined label map at the
gated features' resolution.
"""

import keras
from keras import ops

from keras_seg import ops as seg_ops
from keras_seg import validation
from keras_seg.layers.atrous import Conv2D
from keras_seg.layers.normalization import BatchNormalization


def _check_pair(layer, inputs, what):
    if not isinstance(inputs, (list, tuple)) or len(inputs) != 2:
        raise ValueError(f"{layer} must be called on a list of two tensors {what}.")


def _conv(filters, use_bias, kernel_initializer, dtype, name):
    return Conv2D(filters, 3, padding="same", use_bias=use_bias,
                         kernel_initializer=kernel_initializer, dtype=dtype, name=name)


@keras.saving.register_keras_serializable(package="keras_seg")
class GateUnit(keras.layers.Layer):
    """Gate unit of G-FRNet (Islam et al. 2017, Sec. 3.2, Fig. 3).

    ``gate([shallow, deep]) = relu(bn(conv(shallow))) * up(relu(bn(conv(deep))))``:
    both inputs go through a 3x3 convolution to ``filters`` channels, batch
    normalization and ReLU; the deeper (lower-resolution) one is upsampled
    bilinearly to the shallower one's size, known only at run time (x2 between
    adjacent encoder levels, any ratio works); the two are fused by element-wise
    multiplication (the paper found it better than addition). The convolutions
    have no bias (batch normalization follows).

    Args:
        filters: int, channels of both transformed inputs and of the output.
        interpolation: ``"bilinear"`` or ``"nearest"`` upsampling of the deeper input.
        kernel_initializer: initializer of the convolution kernels.

    Call arguments: ``[shallow, deep]``, ``shallow`` of shape
    ``(batch, H, W, C1)``, ``deep`` of shape ``(batch, H', W', C2)`` (typically
    ``H' = ceil(H / 2)``); ``training`` for batch normalization.
    Output shape: ``(batch, H, W, filters)``.
    """

    def __init__(self, filters, interpolation="bilinear", kernel_initializer="he_normal",
                 **kwargs):
        super().__init__(**kwargs)
        validation.positive_int("GateUnit", "filters", filters)
        if interpolation not in ("bilinear", "nearest"):
            raise ValueError("GateUnit: `interpolation` must be 'bilinear' or 'nearest', got "
                             f"{interpolation!r}.")
        self.filters = filters
        self.interpolation = interpolation
        self.kernel_initializer = keras.initializers.get(kernel_initializer)

    def build(self, input_shape):
        _check_pair("GateUnit", input_shape, "[shallow, deep]")
        shallow, deep = (tuple(s) for s in input_shape)
        self.shallow_conv = _conv(self.filters, False, self.kernel_initializer,
                                  self.dtype_policy, "shallow_conv")
        self.shallow_bn = BatchNormalization(dtype=self.dtype_policy, name="shallow_bn")
        self.deep_conv = _conv(self.filters, False, self.kernel_initializer,
                               self.dtype_policy, "deep_conv")
        self.deep_bn = BatchNormalization(dtype=self.dtype_policy, name="deep_bn")
        self.shallow_conv.build(shallow)
        self.deep_conv.build(deep)
        self.shallow_bn.build(shallow[:-1] + (self.filters,))
        self.deep_bn.build(deep[:-1] + (self.filters,))

    def call(self, inputs, training=None):
        _check_pair("GateUnit", inputs, "[shallow, deep]")
        shallow, deep = inputs
        s = ops.relu(self.shallow_bn(self.shallow_conv(shallow), training=training))
        d = ops.relu(self.deep_bn(self.deep_conv(deep), training=training))
        d = seg_ops.resize(d, seg_ops.spatial_shape(s), self.interpolation)
        return s * d

    def compute_output_shape(self, input_shape):
        shallow = tuple(input_shape[0])
        return shallow[:-1] + (self.filters,)

    def get_config(self):
        return {
            **super().get_config(),
            "filters": self.filters,
            "interpolation": self.interpolation,
            "kernel_initializer": keras.initializers.serialize(self.kernel_initializer),
        }


@keras.saving.register_keras_serializable(package="keras_seg")
class GatedRefinement(keras.layers.Layer):
    """Gated refinement unit of G-FRNet (Islam et al. 2017, Sec. 3.3, Fig. 4).

    ``refine([gated, label_map]) = conv_b(concat(bn(conv_a(gated)), up(label_map)))``:
    the gated features go through a 3x3 convolution to ``num_classes``
    channels and batch normalization; the previous (coarser) label map is
    upsampled bilinearly to the gated features' size (x2 from one stage to the
    next; the size is taken at run time, so odd sizes work); the two
    ``num_classes``-channel maps are concatenated and a 3x3 convolution gives
    the refined label map (``num_classes`` channels, logits). The next stage
    upsamples this map in turn.

    Args:
        num_classes: int, channels of the label maps.
        interpolation: ``"bilinear"`` or ``"nearest"`` upsampling of the label map.
        kernel_initializer: initializer of the convolution kernels.

    Call arguments: ``[gated, label_map]``, ``gated`` of shape
    ``(batch, H, W, C)`` (a :class:`GateUnit` output), ``label_map`` of shape
    ``(batch, H', W', num_classes)``; ``training`` for batch normalization.
    Output shape: ``(batch, H, W, num_classes)``.
    """

    def __init__(self, num_classes, interpolation="bilinear", kernel_initializer="he_normal",
                 **kwargs):
        super().__init__(**kwargs)
        validation.positive_int("GatedRefinement", "num_classes", num_classes)
        if interpolation not in ("bilinear", "nearest"):
            raise ValueError("GatedRefinement: `interpolation` must be 'bilinear' or "
                             f"'nearest', got {interpolation!r}.")
        self.num_classes = num_classes
        self.interpolation = interpolation
        self.kernel_initializer = keras.initializers.get(kernel_initializer)

    def build(self, input_shape):
        _check_pair("GatedRefinement", input_shape, "[gated_features, previous_label_map]")
        gated, label_map = (tuple(s) for s in input_shape)
        if label_map[-1] is not None and label_map[-1] != self.num_classes:
            raise ValueError(f"GatedRefinement(num_classes={self.num_classes}): the previous "
                             f"label map has {label_map[-1]} channels; it must have "
                             f"num_classes = {self.num_classes}.")
        self.feature_conv = _conv(self.num_classes, False, self.kernel_initializer,
                                  self.dtype_policy, "feature_conv")
        self.feature_bn = BatchNormalization(dtype=self.dtype_policy, name="feature_bn")
        self.refine_conv = _conv(self.num_classes, True, self.kernel_initializer,
                                 self.dtype_policy, "refine_conv")
        self.feature_conv.build(gated)
        self.feature_bn.build(gated[:-1] + (self.num_classes,))
        self.refine_conv.build(gated[:-1] + (2 * self.num_classes,))

    def call(self, inputs, training=None):
        _check_pair("GatedRefinement", inputs, "[gated_features, previous_label_map]")
        gated, label_map = inputs
        g = self.feature_bn(self.feature_conv(gated), training=training)
        up = seg_ops.resize(label_map, seg_ops.spatial_shape(g), self.interpolation)
        return self.refine_conv(ops.concatenate([g, ops.cast(up, g.dtype)], axis=-1))

    def compute_output_shape(self, input_shape):
        gated = tuple(input_shape[0])
        return gated[:-1] + (self.num_classes,)

    def get_config(self):
        return {
            **super().get_config(),
            "num_classes": self.num_classes,
            "interpolation": self.interpolation,
            "kernel_initializer": keras.initializers.serialize(self.kernel_initializer),
        }

"""Spatial bookkeeping layers that make every model accept any input size.

These layers operate on NHWC tensors whose height and width may be unknown
until run time (``keras.Input((None, None, C))``); they use ``keras.ops`` only
(plus the shim in :mod:`keras_seg.ops`) and serialize with ``get_config``.
"""

import keras
from keras import ops

from keras_seg import ops as seg_ops
from keras_seg import validation


@keras.saving.register_keras_serializable(package="keras_seg")
class PadToMultiple(keras.layers.Layer):
    """Pad height and width up to the next multiple of ``multiple``.

    Networks with an output stride ``s`` need inputs whose sides are divisible
    by ``s`` so that skip connections line up; padding at the bottom and right
    and cropping the output back (:class:`CropToReference`) lets a model accept
    any size, e.g. 97x75.

    Args:
        multiple: int, the stride to pad to (e.g. 32).
        mode: ``"constant"`` (zeros) or ``"reflect"``.

    Input shape: ``(batch, H, W, C)``.
    Output shape: ``(batch, ceil(H / multiple) * multiple, ceil(W / multiple) * multiple, C)``.
    """

    def __init__(self, multiple, mode="constant", **kwargs):
        super().__init__(**kwargs)
        if int(multiple) < 1:
            raise ValueError(f"`multiple` must be a positive integer, got {multiple}.")
        if mode not in ("constant", "reflect"):
            raise ValueError(f"`mode` must be 'constant' or 'reflect', got {mode!r}.")
        self.multiple = int(multiple)
        self.mode = mode

    def call(self, x):
        if self.multiple == 1:
            return x
        h, w = seg_ops.spatial_shape(x)
        ph = seg_ops.pad_amount(h, self.multiple)
        pw = seg_ops.pad_amount(w, self.multiple)
        return ops.pad(x, [[0, 0], [0, ph], [0, pw], [0, 0]], mode=self.mode)

    def compute_output_shape(self, input_shape):
        def up(d):
            return None if d is None else -(-d // self.multiple) * self.multiple

        return (input_shape[0], up(input_shape[1]), up(input_shape[2]), input_shape[3])

    def get_config(self):
        return {**super().get_config(), "multiple": self.multiple, "mode": self.mode}


@keras.saving.register_keras_serializable(package="keras_seg")
class CropToReference(keras.layers.Layer):
    """Crop a tensor to the height and width of a reference tensor.

    Used to undo :class:`PadToMultiple` (``position="top_left"``) and for
    U-Net's center-cropped skip connections in unpadded mode
    (``position="center"``, Ronneberger et al. 2015).

    Args:
        position: ``"top_left"`` or ``"center"``.

    Call arguments: ``[x, reference]`` with ``x`` of shape ``(batch, H, W, C)``
    and ``reference`` of shape ``(batch, h, w, *)``, ``h <= H``, ``w <= W``.
    Output shape: ``(batch, h, w, C)``.
    """

    def __init__(self, position="top_left", **kwargs):
        super().__init__(**kwargs)
        if position not in ("top_left", "center"):
            raise ValueError(f"`position` must be 'top_left' or 'center', got {position!r}.")
        self.position = position

    def call(self, inputs):
        x, ref = inputs
        h, w = seg_ops.spatial_shape(ref)
        if self.position == "top_left":
            return x[:, :h, :w, :]
        big_h, big_w = seg_ops.spatial_shape(x)
        top = (big_h - h) // 2
        left = (big_w - w) // 2
        return x[:, top : top + h, left : left + w, :]

    def compute_output_shape(self, input_shapes):
        x_shape, ref_shape = input_shapes
        return (x_shape[0], ref_shape[1], ref_shape[2], x_shape[3])

    def get_config(self):
        return {**super().get_config(), "position": self.position}


@keras.saving.register_keras_serializable(package="keras_seg")
class ResizeLike(keras.layers.Layer):
    """Resize a tensor to the spatial size of a reference tensor.

    Works when both sizes are only known at run time (``None`` in the static
    shape), on all backends and inside ``fit`` / export tracing.

    Args:
        interpolation: ``"bilinear"`` or ``"nearest"``.
        align_corners: bilinear only: False (default) samples at half-pixel
            centres, as ``keras.ops.image.resize``, TensorFlow and
            ``torch...interpolate(align_corners=False)`` (torchvision); True aligns
            the corner pixels, as ``align_corners=True`` / ``UpsamplingBilinear2d``
            (segmentation_models.pytorch), through
            :func:`keras_seg.ops.resize_align_corners`.

    Call arguments: ``[x, reference]``, ``x`` of shape ``(batch, H, W, C)``,
    ``reference`` of shape ``(batch, h, w, *)``.
    Output shape: ``(batch, h, w, C)``.
    """

    def __init__(self, interpolation="bilinear", align_corners=False, **kwargs):
        super().__init__(**kwargs)
        if interpolation not in ("bilinear", "nearest"):
            raise ValueError(
                f"`interpolation` must be 'bilinear' or 'nearest', got {interpolation!r}."
            )
        if align_corners and interpolation != "bilinear":
            raise ValueError("ResizeLike: align_corners=True applies to interpolation="
                             f"'bilinear' only, got interpolation={interpolation!r}.")
        self.interpolation = interpolation
        self.align_corners = bool(align_corners)

    def call(self, inputs):
        x, ref = inputs
        if self.align_corners:
            return seg_ops.resize_align_corners(x, seg_ops.spatial_shape(ref))
        return seg_ops.resize(x, seg_ops.spatial_shape(ref), self.interpolation)

    def compute_output_shape(self, input_shapes):
        x_shape, ref_shape = input_shapes
        return (x_shape[0], ref_shape[1], ref_shape[2], x_shape[3])

    def get_config(self):
        return {**super().get_config(), "interpolation": self.interpolation,
                "align_corners": self.align_corners}


@keras.saving.register_keras_serializable(package="keras_seg")
class CropToStride(keras.layers.Layer):
    """Crop a stride-``s`` feature map of a padded network to the real image.

    A model that pads its input to a multiple of its stride computes its
    stride-``s`` maps on the padded image; the part covering the real
    ``H x W`` image is the top-left ``ceil(H / s) x ceil(W / s)``. Used for
    deep-supervision outputs (G-FRNet, U-Net ``deep_supervision=True``) so
    that a label map resized to the output lines up with it.

    Args:
        stride: int, the stride of ``x`` with respect to the image.

    Call arguments: ``[x, image]``, ``x`` of shape ``(batch, h, w, C)`` with
    ``h >= ceil(H / stride)``, ``image`` of shape ``(batch, H, W, *)``.
    Output shape: ``(batch, ceil(H / stride), ceil(W / stride), C)``.
    """

    def __init__(self, stride, **kwargs):
        super().__init__(**kwargs)
        validation.positive_int("CropToStride", "stride", stride)
        self.stride = stride

    def call(self, inputs):
        x, image = inputs
        h, w = seg_ops.spatial_shape(image)
        s = self.stride
        return x[:, : (h + s - 1) // s, : (w + s - 1) // s, :]

    def compute_output_shape(self, input_shapes):
        x_shape, image_shape = input_shapes

        def ceil(d):
            return None if d is None else -(-d // self.stride)

        return (x_shape[0], ceil(image_shape[1]), ceil(image_shape[2]), x_shape[3])

    def get_config(self):
        return {**super().get_config(), "stride": self.stride}

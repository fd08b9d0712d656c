"""The skeleton every architecture builder follows.

A builder

1. checks its common arguments and makes the image input (:func:`begin`);
2. resolves its encoder through :func:`resolve_encoder` (a backbone name, a pyramid
   model, a ``keras.applications`` model or a keras-hub backbone; the pyramid levels
   it needs; the output stride it needs; options that apply to a named backbone
   only), which raises the same clear errors for every architecture;
3. pads the image to its stride (:func:`pad_input`), describes its decoder, and
4. returns :func:`finish`: a :class:`keras_seg.SegmentationModel` that records its
   output stride and padding mode, so inference reads them instead of probing.

Builders whose encoder is fixed by the paper (SegNet, ENet, DeepLab v1, DilatedNet)
answer ``backbone=`` with :func:`refuse_backbone`.
"""

from typing import NamedTuple

import keras

from keras_seg import backbones as backbones_lib
from keras_seg import validation
from keras_seg.layers import CropToReference, PadToMultiple, ResizeLike
from keras_seg.model_base import SegmentationModel, logits_dtype


class Encoder(NamedTuple):
    """A resolved encoder: the pyramid ``model`` and the ``strides`` of its outputs."""

    model: keras.Model
    strides: dict

    @property
    def stride(self):
        """Stride of the deepest output: the multiple the builder pads its input to."""
        return max(self.strides.values())

    def deepest(self):
        """Key of the deepest ``"P{k}"`` level (``"fc7"`` is not a pyramid level)."""
        return max((k for k in self.strides if k.startswith("P")), key=lambda k: int(k[1:]))


def begin(name, num_classes, input_shape):
    """Check ``num_classes`` and ``input_shape``; return ``(input_shape, image_input)``.

    Args:
        name: the model name (for messages).
        num_classes: number of classes, a positive int.
        input_shape: ``(H, W, C)``; H and W may be None.

    Returns:
        ``(input_shape as a tuple, keras.Input named "image")``.
    """
    input_shape = validation.input_shape(name, input_shape)
    validation.num_classes(name, num_classes)
    return input_shape, keras.Input(shape=input_shape, name="image")


def refuse_backbone(name, backbone, encoder):
    """Raise a clear error when a fixed-encoder builder is given ``backbone=``.

    Args:
        name: the model name.
        backbone: the value given (None: nothing to refuse).
        encoder: a description of the paper's encoder and why it is fixed.
    """
    if backbone is not None:
        raise ValueError(
            f"{name}: this architecture has no backbone= option: {encoder}. Got "
            f"backbone={backbone!r}; leave it out (backbone_options=, where the builder has "
            "it, sets the width or weights of the fixed encoder), or choose an architecture "
            "that takes a backbone (UNet, LinkNet, FCN*, DeepLabV2/V3/V3Plus, PSPNet, "
            "RefineNet, DANet, APCNet).")


def resolve_encoder(name, backbone, backbone_options=None, *, input_shape, levels=None,
                    output_stride=None, named_options=None, named_defaults=None):
    """Resolve a builder's encoder, with the same checks for every architecture.

    Args:
        name: the model name (for messages).
        backbone: a name from :func:`keras_seg.backbones.available`, or a ``keras.Model``
            (a pyramid model ``image -> {"P1": ...}``, a ``keras.applications`` model,
            or a keras-hub / keras-cv backbone with ``pyramid_outputs``).
        backbone_options: the user's options of a named backbone (``weights``,
            ``width_multiplier``, ...). Refused with a model instance.
        input_shape: the builder's ``(H, W, C)``; a named backbone is built for
            ``(None, None, C)`` (it sees the padded image), a model's channels are checked.
        levels: ``{level: what the builder uses it for}``, the pyramid levels the
            builder needs (e.g. ``{"P2": "the low-level features of the decoder"}``).
        output_stride: stride the deepest level must have (None: whatever the backbone
            gives). A named backbone is built with it; a model instance must already
            have it (its strides cannot be changed), otherwise a ValueError says so.
        named_options: options the builder sets from its own arguments for a named
            backbone (e.g. ``{"multi_grid": ((1, 2, 4), (1, 2, 4))}``: name -> ``(value,
            default)``). Giving one in ``backbone_options`` with another value is an
            error; with a model instance, a value other than the default is an error
            (the instance keeps its own).
        named_defaults: options applied to a named backbone unless ``backbone_options``
            sets them (e.g. FCN's ``{"fc_layers": True}`` for VGG16).

    Returns:
        An :class:`Encoder` ``(model, strides)``.

    Raises:
        ValueError: unknown backbone name, options that apply to a named backbone
            only, conflicting options, a missing pyramid level, or a model instance at
            another output stride.
    """
    user = dict(backbone_options or {})
    named_options = dict(named_options or {})
    if isinstance(backbone, str):
        options = dict(named_defaults or {})
        options.update(user)
        builder = {k: v for k, (v, _) in named_options.items()}
        if output_stride is not None:
            builder["output_stride"] = output_stride
        for key, value in builder.items():
            if key in user and user[key] != value:
                raise ValueError(
                    f"{name}: {key}={user[key]!r} in backbone_options conflicts with the "
                    f"builder's {key}={value!r}; pass {key} as an argument of {name}.")
            if value is not None:
                options[key] = value
        model = backbones_lib.get(backbone, input_shape=(None, None, input_shape[-1]),
                                  **options)
    elif isinstance(backbone, keras.Model):
        if user:
            raise ValueError(
                f"{name}: backbone_options {sorted(user)} only apply to a backbone given by "
                f"name; build the model {backbone.name!r} with those options instead.")
        changed = sorted(k for k, (v, default) in named_options.items() if v != default)
        if changed:
            raise ValueError(
                f"{name}: {', '.join(changed)} only apply to a backbone given by name; the "
                f"passed-in model {backbone.name!r} keeps its own. Build the model with them "
                f"or pass a backbone name.")
        model = backbones_lib.get(backbone, input_shape=input_shape)
    else:
        raise ValueError(
            f"{name}: backbone must be a name ({', '.join(backbones_lib.available())}) or a "
            f"keras.Model, got {type(backbone).__name__} {backbone!r}.")
    strides = backbones_lib.feature_strides(model)
    encoder = Encoder(model, strides)
    for level, what in (levels or {}).items():
        if level not in strides:
            raise ValueError(f"{name}: the backbone {model.name!r} has no {level!r} feature "
                             f"({what}); it returns {sorted(strides)}.")
    if output_stride is not None and not isinstance(backbone, str):
        actual = strides[encoder.deepest()]
        if actual != output_stride:
            raise ValueError(
                f"{name}: output_stride={output_stride} asked, but the passed-in model "
                f"{model.name!r} computes its deepest feature at stride {actual}, and the "
                "stride of a model instance cannot be changed. Pass output_stride="
                f"{actual} if that is what you want, or the backbone by name (e.g. "
                f"backbone='resnet50', output_stride={output_stride}), which dilates its "
                "last stages.")
    return encoder


def pad_input(inputs, multiple, name):
    """Pad the image at the bottom / right to a multiple of the network stride."""
    return PadToMultiple(multiple, name=f"{name}_pad_to_{multiple}")(inputs)


def crop_output(x, reference, name):
    """Crop ``x`` to the top-left ``H x W`` of ``reference`` (undoes :func:`pad_input`)."""
    return CropToReference("top_left", name=name)([x, reference])


def upsample_to_input(x, padded, inputs, name="logits", align_corners=False):
    """Bilinearly upsample float32 logits to the padded input, then crop to the input.

    Both steps run in float32 (also under a mixed-precision policy), so the
    model's logits stay float32. Upsampling to the padded grid and cropping
    keeps the geometry exact for sizes that are not multiples of the stride.
    ``align_corners`` is :class:`keras_seg.layers.ResizeLike`'s.
    """
    x = ResizeLike("bilinear", align_corners=align_corners, dtype=logits_dtype(),
                   name=name + "_upsample")([x, padded])
    return CropToReference("top_left", dtype=logits_dtype(), name=name)([x, inputs])


def finish(inputs, outputs, name, *, output_stride, padding="same", loss_weights=None):
    """The model a builder returns: a :class:`keras_seg.SegmentationModel`.

    Args:
        inputs: the image input.
        outputs: the float32 logits, or a dict with ``"logits"`` and the auxiliary /
            deep-supervision heads.
        name: model name.
        output_stride: the multiple the model pads its input to (its deepest stride).
        padding: ``"same"`` or ``"valid"`` (U-Net's unpadded convolutions).
        loss_weights: the paper's ``{output: weight}`` (dict outputs only).
    """
    if not isinstance(outputs, dict):
        loss_weights = None
    return SegmentationModel(inputs, outputs, name=name, loss_weights=loss_weights,
                             output_stride=output_stride, padding=padding)

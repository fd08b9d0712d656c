"""Pluggable backbones: feature extractors returning a pyramid of feature maps.

Contract: a backbone is a ``keras.Model`` from an image ``(batch, H, W, C)`` to a
dict ``{"P1": stride 2, "P2": stride 4, ..., "P5": stride 32}`` (fewer levels where
the network has none; dilated backbones keep the deeper levels at their
``output_stride``; VGG with ``fc_layers`` adds ``"fc7"``).

``get(name_or_model, **options)`` resolves a registered name (``available()``), a
``keras.applications`` model instance, or any keras-hub / keras-cv backbone that
exposes ``pyramid_outputs``.
"""

import keras

from keras_seg.backbones.adapters import from_model, probe_strides
from keras_seg.backbones.mobilenetv2 import mobilenetv2
from keras_seg.backbones.pretrained import copy_weights_by_name
from keras_seg.backbones.resnet import resnet18, resnet34, resnet50, resnet101, resnet152
from keras_seg.backbones.vgg import vgg16
from keras_seg.backbones.xception import xception

_REGISTRY = {
    "vgg16": vgg16,
    "resnet18": resnet18,
    "resnet34": resnet34,
    "resnet50": resnet50,
    "resnet101": resnet101,
    "resnet152": resnet152,
    "mobilenetv2": mobilenetv2,
    "xception": xception,
}


def available():
    """Names accepted by :func:`get`, sorted."""
    return sorted(_REGISTRY)


def register(name, builder):
    """Register ``builder(**options) -> keras.Model`` under ``name`` for :func:`get`."""
    _REGISTRY[name.lower()] = builder


def get(backbone, input_shape=None, **options):
    """Resolve a backbone.

    Args:
        backbone: a name from :func:`available` (case-insensitive), or a
            ``keras.Model`` (a keras.applications model with ``include_top=False``,
            a keras-hub / keras-cv backbone with ``pyramid_outputs``, or a model
            that already returns ``{"P1".."P5"}``).
        input_shape: ``(H, W, C)`` for a named backbone (default ``(None, None, 3)``);
            for a model instance it is checked against the model's input.
        **options: forwarded to the named builder (``weights``, ``output_stride``,
            ``multi_grid``, ``width_multiplier``, ...). Not accepted with a model
            instance.

    Returns:
        A ``keras.Model`` image -> ``{"P1": ..., ...}``.

    Raises:
        ValueError: unknown name (the message lists the known ones), options given
            with an instance, or an input channel count that does not match.
    """
    if isinstance(backbone, str):
        key = backbone.lower()
        if key not in _REGISTRY:
            raise ValueError(
                f"Unknown backbone {backbone!r}. Known backbones: {', '.join(available())}. "
                "You can also pass a keras.Model instance."
            )
        if input_shape is not None:
            options["input_shape"] = tuple(input_shape)
        return _REGISTRY[key](**options)
    if isinstance(backbone, keras.Model):
        if options:
            raise ValueError(
                f"Options {sorted(options)} only apply to named backbones; build the model "
                f"{backbone.name!r} with them instead."
            )
        if input_shape is not None:
            own = backbone.inputs[0].shape[-1]
            if own is not None and input_shape[-1] is not None and own != input_shape[-1]:
                raise ValueError(
                    f"Backbone {backbone.name!r} takes {own} input channels but input_shape "
                    f"{tuple(input_shape)} has {input_shape[-1]}. Build the backbone for "
                    f"{input_shape[-1]} channels or change input_shape."
                )
        if _is_pyramid(backbone):
            return backbone
        return from_model(backbone)
    raise TypeError(
        f"backbone must be a name ({', '.join(available())}) or a keras.Model, got "
        f"{type(backbone).__name__}."
    )


def _is_pyramid(model):
    out = model.output
    return isinstance(out, dict) and any(k.startswith("P") for k in out)


def feature_strides(backbone):
    """``{"P1": 2, ...}``: the stride of each output of a pyramid backbone."""
    return probe_strides(backbone)


__all__ = [
    "available",
    "copy_weights_by_name",
    "feature_strides",
    "from_model",
    "get",
    "mobilenetv2",
    "register",
    "resnet18",
    "resnet34",
    "resnet50",
    "resnet101",
    "resnet152",
    "vgg16",
    "xception",
]

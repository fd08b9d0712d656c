"""Turning foreign models into pyramid backbones."""

import keras
import numpy as np

_PROBE = 256


def probe_strides(model, channels=None, probe_size=_PROBE):
    """Return ``{output_name: stride}`` for a model with dict outputs.

    Runs shape inference only (``compute_output_spec``; nothing is computed) on a
    ``probe_size`` x ``probe_size`` input, or on the model's own static input size.
    """
    h, w, c = _probe_shape(model, channels, probe_size)
    spec = model.compute_output_spec(keras.KerasTensor((1, h, w, c)))
    return {k: int(round(h / v.shape[1])) for k, v in spec.items()}


def _probe_shape(model, channels, probe_size):
    shape = model.inputs[0].shape
    h, w, c = shape[1], shape[2], shape[3]
    return (h or probe_size, w or probe_size, c or channels or 3)


def from_model(model, levels=5):
    """Wrap a ``keras.Model`` as a pyramid backbone ``image -> {"P1".."P5"}``.

    - A keras-hub / keras-cv backbone exposing ``pyramid_outputs`` (a dict of
      symbolic tensors keyed ``"P1"``... or any names ordered by stride) is used
      as is, keys mapped to ``P{log2(stride)}``.
    - Any other functional model (e.g. a ``keras.applications`` model built with
      ``include_top=False``) is tapped automatically: for every stride 2, 4, ...,
      32 the *last* layer (in topological order) whose output has exactly that
      stride becomes ``P{k}``. For VGG16 that is ``block{k}_pool``, for ResNet50
      ``conv1_relu`` and ``conv{k}_block*_out``, for MobileNetV2 the last block of
      each stride.

    Args:
        model: a functional ``keras.Model`` with one image input.
        levels: deepest level to expose (5 = stride 32).

    Returns:
        A ``keras.Model`` sharing ``model``'s layers and weights.
    """
    if not isinstance(model, keras.Model):
        raise TypeError(f"Expected a keras.Model, got {type(model).__name__}.")
    if len(model.inputs) != 1:
        raise ValueError(
            f"Backbone {model.name!r} has {len(model.inputs)} inputs; a segmentation "
            "backbone takes exactly one image input."
        )
    pyramid = getattr(model, "pyramid_outputs", None)
    if isinstance(pyramid, dict) and pyramid:
        candidates = dict(pyramid)
    else:
        candidates = {}
        for layer in model.layers[1:]:
            try:
                out = layer.output
            except (AttributeError, ValueError):
                continue
            if isinstance(out, keras.KerasTensor) and len(out.shape) == 4:
                candidates[layer.name] = out
        if not candidates:
            raise ValueError(f"Backbone {model.name!r} has no 4D (NHWC) intermediate outputs.")
    probe = keras.Model(model.inputs, candidates)
    h, w, c = _probe_shape(model, None, _PROBE)
    spec = probe.compute_output_spec(keras.KerasTensor((1, h, w, c)))
    by_stride = {}
    for key in candidates:  # dict order = topological order
        shape = spec[key].shape
        if shape[1] is None:
            continue
        stride = h / shape[1]
        k = np.log2(stride)
        exact = shape[1] * round(stride) == h and shape[2] * round(stride) == w
        if exact and abs(k - round(k)) < 1e-6 and 1 <= round(k) <= levels:
            by_stride[int(round(k))] = key
    if not by_stride:
        raise ValueError(
            f"Could not find any feature map of stride 2..{2**levels} in {model.name!r}. "
            "Pass a model whose intermediate outputs downsample by powers of two, or build "
            "a keras.Model(image, {'P1': ..., 'P5': ...}) yourself."
        )
    outputs = {f"P{k}": candidates[by_stride[k]] for k in sorted(by_stride)}
    return keras.Model(model.inputs, outputs, name=f"{model.name}_pyramid")

"""Moving a PyTorch ``state_dict`` into a keras-seg model: layouts, checks, all-or-nothing.

A *mapping* says, for every weighted Keras layer of the model (found by name, nested
models included), where its weights are in the checkpoint:

- a string: the PyTorch module prefix (``"backbone.layer1.0.conv1"``); the layer's
  type decides the parameter names and layouts (below);
- a :class:`Separable` of two prefixes: a ``SeparableConv2D`` whose depthwise and
  pointwise convolutions are two PyTorch modules;
- a :class:`Custom`: explicit checkpoint keys and a function from their arrays to the
  layer's weights, for the few places where the two libraries order channels
  differently (each use says why).

Layouts: ``Conv2D`` kernel ``(O, I, kh, kw) -> (kh, kw, I, O)``; ``DepthwiseConv2D``
``(C * m, 1, kh, kw) -> (kh, kw, C, m)``; ``Conv2DTranspose`` ``(I, O, kh, kw) ->
(kh, kw, O, I)``; ``Dense`` ``(O, I) -> (I, O)``; ``BatchNormalization`` weight / bias /
running_mean / running_var -> gamma / beta / moving_mean / moving_variance
(``num_batches_tracked`` is a training counter Keras does not keep).
"""

from collections.abc import Callable
from typing import NamedTuple

import keras
import numpy as np

_BN = {"gamma": "weight", "beta": "bias", "moving_mean": "running_mean",
       "moving_variance": "running_var"}
_IGNORED_SUFFIX = "num_batches_tracked"
_SHOWN = 8


class Separable(NamedTuple):
    """A ``SeparableConv2D`` stored as a depthwise and a pointwise PyTorch conv."""

    depthwise: str
    pointwise: str


class Custom(NamedTuple):
    """Explicit checkpoint ``keys`` and ``convert(arrays) -> the layer's weights``."""

    keys: tuple
    convert: Callable


def all_layers(model):
    """Every leaf layer of ``model``: nested models and composite layers (``ASPP``,
    ``PyramidPooling``...) are flattened into the layers they hold, in order."""
    for layer in model.layers:
        if isinstance(layer, keras.Model):
            yield from all_layers(layer)
            continue
        yield from _leaves(layer)


def _leaves(layer):
    subs = list(layer._flatten_layers(include_self=False, recursive=False))
    if not subs:
        yield layer
        return
    for sub in subs:
        yield from _leaves(sub)


def weighted_layers(model):
    """``{name: layer}`` for every layer with weights; names must be unique."""
    out = {}
    for layer in all_layers(model):
        if not layer.weights:
            continue
        if layer.name in out:
            raise ValueError(f"two layers of {model.name!r} are named {layer.name!r}; the "
                             "converter finds layers by name.")
        out[layer.name] = layer
    return out


def _plan_layer(layer, source):
    """``[(keras variable, checkpoint key, expected checkpoint shape, to_keras)]``."""
    shapes = {v.name: tuple(v.shape) for v in layer.weights}
    if isinstance(source, Custom):
        return None  # handled as a whole
    if isinstance(layer, keras.layers.BatchNormalization):
        return [(name, f"{source}.{_BN[name]}", shape, lambda a: a) for name, shape in
                shapes.items()]
    if isinstance(layer, keras.layers.SeparableConv2D):
        if not isinstance(source, Separable):
            raise TypeError(f"mapping of SeparableConv2D {layer.name!r} must be a Separable.")
        plan = []
        for name, shape in shapes.items():
            if name == "depthwise_kernel":
                kh, kw, c, m = shape
                plan.append((name, f"{source.depthwise}.weight", (c * m, 1, kh, kw),
                             _depthwise(c, m)))
            elif name == "pointwise_kernel":
                plan.append((name, f"{source.pointwise}.weight", _conv_shape(shape),
                             _conv))
            else:
                plan.append((name, f"{source.pointwise}.bias", shape, lambda a: a))
        return plan
    if isinstance(layer, keras.layers.DepthwiseConv2D):
        plan = []
        for name, shape in shapes.items():
            if name == "kernel":
                kh, kw, c, m = shape
                plan.append((name, f"{source}.weight", (c * m, 1, kh, kw), _depthwise(c, m)))
            else:
                plan.append((name, f"{source}.bias", shape, lambda a: a))
        return plan
    if isinstance(layer, keras.layers.Conv2DTranspose):
        return [(name, f"{source}.weight", (shape[3], shape[2], shape[0], shape[1]),
                 lambda a: np.transpose(a, (2, 3, 1, 0))) if name == "kernel" else
                (name, f"{source}.bias", shape, lambda a: a) for name, shape in shapes.items()]
    if isinstance(layer, keras.layers.Conv2D):
        return [(name, f"{source}.weight", _conv_shape(shape), _conv) if name == "kernel" else
                (name, f"{source}.bias", shape, lambda a: a) for name, shape in shapes.items()]
    if isinstance(layer, keras.layers.Dense):
        return [(name, f"{source}.weight", shape[::-1], np.transpose) if name == "kernel" else
                (name, f"{source}.bias", shape, lambda a: a) for name, shape in shapes.items()]
    raise TypeError(f"no PyTorch layout is known for the {type(layer).__name__} layer "
                    f"{layer.name!r}; map it with a Custom entry.")


def _conv_shape(shape):
    kh, kw, i, o = shape
    return (o, i, kh, kw)


def _conv(a):
    return np.transpose(a, (2, 3, 1, 0))


def _depthwise(c, m):
    def convert(a):
        kh, kw = a.shape[2:]
        return np.transpose(a.reshape(c, m, kh, kw), (2, 3, 0, 1))
    return convert


def assign(model, state, mapping, arch, ignored=()):
    """Load ``state`` into ``model`` through ``mapping``, all or nothing.

    Args:
        model: the keras-seg model.
        state: ``{checkpoint key: numpy array}`` (see :func:`read_checkpoint`).
        mapping: ``{keras layer name: prefix | Separable | Custom}`` covering every
            weighted layer of ``model``.
        arch: the architecture name, for messages.
        ignored: checkpoint key prefixes the conversion leaves out on purpose (e.g. an
            ImageNet classifier ``"fc."`` when loading a backbone); documented by the
            caller.

    Raises:
        ValueError: a weighted layer the mapping does not cover, checkpoint keys the
            model needs but the file lacks, keys the file has but the model does not
            use, or shapes that differ; the message names the keys and shapes. The
            model's weights are unchanged when this is raised.
    """
    layers = weighted_layers(model)
    seen = sum(len(layer.weights) for layer in layers.values())
    if seen != len(model.weights):
        raise ValueError(f"{arch}: {len(model.weights) - seen} weights of {model.name!r} sit in "
                         "layers the converter cannot reach by name.")
    unmapped = sorted(set(layers) - set(mapping))
    if unmapped:
        raise ValueError(f"{arch}: the model {model.name!r} has weighted layers the converter "
                         f"does not map: {_show(unmapped)}. Was it built with other options "
                         "than from_torch builds?")
    stray = sorted(set(mapping) - set(layers))
    if stray:
        raise ValueError(f"{arch}: the model {model.name!r} has no layers named "
                         f"{_show(stray)}; build it with keras_seg.convert.from_torch or with "
                         "the options listed in keras_seg.convert.TORCH_ARCHITECTURES.")
    used, missing, mismatched, values = set(), [], [], {}
    for name, layer in layers.items():
        source = mapping[name]
        if isinstance(source, Custom):
            absent = [k for k in source.keys if k not in state]
            missing += absent
            used.update(source.keys)
            if absent:
                continue
            new = [np.asarray(w) for w in source.convert([state[k] for k in source.keys])]
            want = [tuple(v.shape) for v in layer.weights]
            got = [w.shape for w in new]
            if got != want:
                mismatched.append(f"{list(source.keys)} -> {name}: converted shapes {got}, the "
                                  f"layer needs {want}")
                continue
            values[name] = new
            continue
        plan = {var: (key, shape, fn) for var, key, shape, fn in _plan_layer(layer, source)}
        new = []
        for var in layer.weights:
            key, shape, fn = plan[var.name]
            used.add(key)
            if key not in state:
                missing.append(key)
                continue
            if tuple(state[key].shape) != tuple(shape):
                mismatched.append(f"{key}: {tuple(state[key].shape)} in the checkpoint, "
                                  f"{tuple(shape)} expected (Keras layer {name!r})")
                continue
            new.append(fn(state[key]))
        if len(new) == len(layer.weights):
            values[name] = new
    unexpected = sorted(k for k in state if k not in used and not k.endswith(_IGNORED_SUFFIX)
                        and not k.startswith(tuple(ignored)))
    problems = []
    if missing:
        problems.append(f"{len(missing)} key(s) the model needs are missing from the "
                        f"checkpoint: {_show(missing)}")
    if unexpected:
        problems.append(f"{len(unexpected)} key(s) of the checkpoint are not used by the "
                        f"model: {_show(unexpected)}")
    if mismatched:
        problems.append(f"{len(mismatched)} shape mismatch(es): {_show(mismatched)}")
    if problems:
        raise ValueError(f"{arch}: the checkpoint does not fit the model {model.name!r} "
                         "(is it a checkpoint of this architecture and encoder?); nothing was "
                         "loaded. " + "; ".join(problems) + ".")
    for name, layer in layers.items():
        arrays = values[name]
        layer.set_weights([np.asarray(a, dtype=keras.backend.standardize_dtype(v.dtype))
                           for a, v in zip(arrays, layer.weights, strict=True)])
    return len(layers)


def _show(items):
    items = list(items)
    shown = ", ".join(repr(i) if not isinstance(i, str) or ":" not in i else i
                      for i in items[:_SHOWN])
    more = f" and {len(items) - _SHOWN} more" if len(items) > _SHOWN else ""
    return f"{shown}{more}"

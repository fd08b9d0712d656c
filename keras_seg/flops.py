"""Backend-agnostic count of the arithmetic of a model at one input size.

Convention: **FLOPs = 2 x multiply-accumulates (MACs)** of the convolution and
dense layers (one multiply and one add per MAC), which is what the segmentation
papers report. Checked on their own numbers at a 3x360x640 input: LinkNet
(Chaurasia & Culurciello 2017) reports 21.2 GFLOPs, :func:`count_flops` gives
20.3 G (10.1 G MACs); ENet (Paszke et al. 2016) reports 3.83 GFLOPs, this gives
3.40 G (1.70 G MACs). Counting MACs as FLOPs would be half the papers' numbers;
the remaining 4% / 11% are the operations not counted here (bias additions,
normalization, activations, pooling, unpooling, resizing, element-wise sums).
:func:`count_macs` gives the MACs.

Per layer, with the output ``H_o x W_o`` and the input ``H_i x W_i``:

- ``Conv2D``: ``H_o W_o C_out k_h k_w C_in / groups``;
- ``Conv2DTranspose``: ``H_i W_i C_in k_h k_w C_out`` (every input pixel is
  scattered through the whole kernel);
- ``DepthwiseConv2D``: ``H_o W_o C_in m k_h k_w`` (``m`` the depth multiplier);
- ``SeparableConv2D``: the depthwise part plus ``H_o W_o C_in m C_out``;
- ``Dense``: ``(number of input vectors) C_in units``.

Nested models (backbones) and layers made of sub-layers are entered, and a
layer called twice counts twice. Shapes are found by tracing the model
symbolically once at the given size (nothing is computed), on any backend.
"""

import math

import keras


def _shape(t):
    return tuple(int(d) for d in t.shape)


def _first_tensor(args):
    for a in args:
        if hasattr(a, "shape"):
            return a
        if isinstance(a, (list, tuple)):
            found = _first_tensor(a)
            if found is not None:
                return found
    return None


def layer_macs(layer, input_shape, output_shape):
    """Multiply-accumulates of one call of ``layer`` (0 for layers not counted).

    Args:
        layer: a keras layer.
        input_shape: the shape of its (first) input, batch included.
        output_shape: the shape of its output.
    """
    # every formula below is per image; the batch is output_shape[0]
    return _per_image_macs(layer, input_shape, output_shape) * output_shape[0]


def _per_image_macs(layer, input_shape, output_shape):
    L = keras.layers
    if isinstance(layer, L.SeparableConv2D):
        kh, kw = layer.kernel_size
        cin = input_shape[-1]
        spatial = math.prod(output_shape[1:-1])
        m = layer.depth_multiplier
        return spatial * cin * m * kh * kw + spatial * cin * m * layer.filters
    if isinstance(layer, L.DepthwiseConv2D):
        kh, kw = layer.kernel_size
        return math.prod(output_shape[1:-1]) * input_shape[-1] * layer.depth_multiplier * kh * kw
    if isinstance(layer, L.Conv2DTranspose):
        kh, kw = layer.kernel_size
        return math.prod(input_shape[1:-1]) * input_shape[-1] * kh * kw * layer.filters
    if isinstance(layer, L.Conv2D):
        kh, kw = layer.kernel_size
        groups = getattr(layer, "groups", 1) or 1
        return math.prod(output_shape[1:-1]) * layer.filters * kh * kw * input_shape[-1] // groups
    if isinstance(layer, L.Dense):
        return math.prod(input_shape[1:-1]) * input_shape[-1] * layer.units
    return 0


_COUNTED = (keras.layers.Conv2D, keras.layers.Conv2DTranspose, keras.layers.DepthwiseConv2D,
            keras.layers.SeparableConv2D, keras.layers.Dense)


def _all_layers(layer):
    out = [layer]
    for sub in getattr(layer, "_layers", []) or []:
        out.extend(_all_layers(sub))
    return out


class _Trace(keras.layers.Layer):
    """Runs ``model`` inside a layer call so that every sub-layer's ``call`` is traced
    on backend tensors of known shape (``compute_output_spec``)."""

    def __init__(self, model, **kwargs):
        super().__init__(**kwargs)
        self.traced = model

    def call(self, x):
        return self.traced(x)


def count_flops(model, input_shape, batch_size=1, per_layer=False):
    """FLOPs (``2 * MACs``) of the convolution and dense layers of ``model``.

    The papers' convention (LinkNet 21.2 GFLOPs, ENet 3.83 GFLOPs at 640x360; see
    the module docstring). Arguments and errors as :func:`count_macs`.
    """
    if per_layer:
        total, table = count_macs(model, input_shape, batch_size, per_layer=True)
        return 2 * total, {k: 2 * v for k, v in table.items()}
    return 2 * count_macs(model, input_shape, batch_size)


def count_macs(model, input_shape, batch_size=1, per_layer=False):
    """Multiply-accumulates of ``model`` on one input of ``input_shape``.

    Per-layer formulas in the module docstring; :func:`count_flops` is twice this.

    Args:
        model: a built ``keras.Model`` (functional or nested; sub-models and
            layers made of sub-layers are entered).
        input_shape: ``(H, W, C)`` of one input image, e.g. ``(360, 640, 3)``.
        batch_size: images per batch (the count scales linearly).
        per_layer: also return ``{layer path: MACs}``.

    Returns:
        The total as an int, or ``(total, per_layer_dict)`` with ``per_layer``.

    Raises:
        ValueError: ``input_shape`` is not a fully known ``(H, W, C)``.
    """
    try:
        shape = tuple(int(d) for d in input_shape)
    except (TypeError, ValueError):
        shape = ()
    if not shape or any(d < 1 for d in shape):
        raise ValueError(f"count_macs: input_shape must be fully known positive ints, e.g. "
                         f"(360, 640, 3); got {input_shape!r}.")
    records = []
    patched = []
    for layer in _all_layers(model):
        if isinstance(layer, _COUNTED) and "call" not in layer.__dict__:
            original = layer.call

            def wrapped(*args, _layer=layer, _call=original, **kwargs):
                out = _call(*args, **kwargs)
                x = _first_tensor(args)
                records.append((_layer, _shape(x), _shape(out)))
                return out

            layer.call = wrapped
            patched.append(layer)
    try:
        _Trace(model)(keras.KerasTensor((batch_size, *shape)))
    finally:
        for layer in patched:
            del layer.call
    total, table = 0, {}
    for layer, in_shape, out_shape in records:
        macs = layer_macs(layer, in_shape, out_shape)
        total += macs
        key = getattr(layer, "path", None) or layer.name
        table[key] = table.get(key, 0) + macs
    return (total, table) if per_layer else total

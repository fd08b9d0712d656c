"""Helpers shared by the native backbone builders."""

from keras_seg import validation

VALID_OUTPUT_STRIDES = (8, 16, 32)


def scale_width(channels, width_multiplier):
    """Scale a channel count, rounding to a multiple of 8 (at least 8)."""
    if width_multiplier == 1.0:
        return channels
    return max(8, int(round(channels * width_multiplier / 8.0)) * 8)


def check_common_args(name, input_shape, output_stride, width_multiplier, weights):
    """Check the arguments every native backbone builder takes (see :mod:`keras_seg.validation`)."""
    validation.output_stride(name, output_stride, VALID_OUTPUT_STRIDES)
    validation.input_shape(name, input_shape)
    if width_multiplier <= 0:
        raise ValueError(f"{name}: width_multiplier must be > 0, got {width_multiplier}.")
    if weights == "imagenet":
        if width_multiplier != 1.0:
            raise ValueError(f"{name}: weights='imagenet' needs width_multiplier=1.0.")
        if int(input_shape[-1]) != 3:
            raise ValueError(
                f"{name}: weights='imagenet' needs 3 input channels (RGB), got input_shape "
                f"{input_shape!r}. Use weights=None for other channel counts."
            )


def stride_schedule(stage_strides, output_stride):
    """Turn per-stage strides into (stride, dilation) pairs for a target output stride.

    Stages are walked in order; once the accumulated stride would pass
    ``output_stride`` the stage keeps stride 1 and dilates its convolutions by
    the stride it gave up (times the dilation already accumulated), as in
    DeepLab (Chen et al. 2017, "Rethinking Atrous Convolution").

    Returns a list of ``(stride, dilation)`` per stage.
    """
    current, rate, out = 1, 1, []
    for s in stage_strides:
        if current * s > output_stride:
            rate *= s
            out.append((1, rate))
        else:
            current *= s
            out.append((s, rate))
    return out


def unit_dilations(dilation, units, multi_grid):
    """Dilation of each unit of a stage; ``multi_grid`` multiplies them cyclically."""
    if not multi_grid:
        return [dilation] * units
    return [dilation * int(multi_grid[i % len(multi_grid)]) for i in range(units)]


def load_weights_arg(model, weights, app_builder, copy_fn=None):
    """Apply the ``weights`` argument of a native builder.

    ``None``: random init. ``"imagenet"``: copy from the keras.applications model
    built by ``app_builder(weights="imagenet")`` (downloads once through keras'
    cache) with ``copy_fn(source, model)`` (default: by layer name). A path: load a
    ``.weights.h5`` file saved from the same configuration.
    """
    if weights is None:
        return model
    if weights == "imagenet":
        if app_builder is None:
            raise ValueError(
                f"{model.name}: no ImageNet weights are available for this backbone (it has no "
                "keras.applications counterpart). Use weights=None or a path to a "
                ".weights.h5 file."
            )
        from keras_seg.backbones.pretrained import copy_weights_by_name

        (copy_fn or copy_weights_by_name)(app_builder(weights="imagenet"), model)
        return model
    if isinstance(weights, str):
        import os

        if not os.path.exists(weights):
            raise FileNotFoundError(
                f"{model.name}: weights file {weights!r} does not exist. Pass None, 'imagenet' "
                "or the path of a .weights.h5 file."
            )
        model.load_weights(weights)
        return model
    raise ValueError(f"{model.name}: weights must be None, 'imagenet' or a file path, got "
                     f"{weights!r}.")

"""Helpers shared by the dilated-convolution builders (dilation, DeepLab, PSPNet)."""

from keras_seg import backbones as backbones_lib
from keras_seg.layers import CropToReference, ResizeLike


def upsample_to_input(x, padded, inputs, name="logits"):
    """Bilinearly upsample float32 logits to the padded input, then crop to the input.

    Both steps run in float32 (also under a mixed-precision policy), so the
    model's logits stay float32. Upsampling to the padded grid and cropping
    keeps the geometry exact for sizes that are not multiples of the stride.
    """
    x = ResizeLike("bilinear", dtype="float32", name=name + "_upsample")([x, padded])
    return CropToReference("top_left", dtype="float32", name=name)([x, inputs])


def build_backbone(name, backbone, backbone_options, input_shape, builder_options):
    """Resolve a backbone as :func:`keras_seg.applications.UNet` does.

    Args:
        name: the model name (for error messages).
        backbone: a backbone name or a ``keras.Model`` (see
            :func:`keras_seg.backbones.get`).
        backbone_options: user options for a named backbone (``width_multiplier``,
            ``weights``...).
        builder_options: options the builder sets from its own arguments
            (``output_stride``, ``multi_grid``); giving them again in
            ``backbone_options`` with another value is an error.

    Returns:
        ``(encoder, strides)``: the pyramid model and ``{"P1": 2, ...}``.
    """
    options = dict(backbone_options or {})
    if isinstance(backbone, str):
        for key, value in builder_options.items():
            if key in options and options[key] != value:
                raise ValueError(
                    f"{name}: {key}={options[key]!r} in backbone_options conflicts with the "
                    f"builder's {key}={value!r}; pass {key} as an argument of the builder.")
            if value is not None:
                options[key] = value
    elif options:
        raise ValueError(f"{name}: backbone_options only apply to a named backbone; build the "
                         "backbone model with those options instead.")
    # the encoder sees the padded image, so it takes any size even when the model's
    # input size is fixed (and its strides are probed at a size it divides)
    encoder = backbones_lib.get(backbone, input_shape=(None, None, input_shape[-1]), **options)
    return encoder, backbones_lib.feature_strides(encoder)


def require_level(name, strides, level, what):
    if level not in strides:
        raise ValueError(f"{name}: the backbone has no {level!r} feature ({what}); it returns "
                         f"{sorted(strides)}.")


def pad_multiple(strides):
    """Stride to pad the input to: the largest stride of the pyramid."""
    return max(strides.values())


def check_output_stride(name, output_stride, allowed=(8, 16)):
    if output_stride not in allowed:
        raise ValueError(f"{name}: output_stride must be one of {allowed}, got "
                         f"{output_stride!r}.")

"""The ``upsampling=`` choice shared by the encoder-decoder builders.

Three families of decoder upsampling (compared in ``tutorials/upsampling_comparison.py``):

- interpolation, ``"bilinear"`` / ``"nearest"``: fixed, nothing learned, cheap;
- ``"unpool"``: max unpooling with the indices stored by the encoder's pooling
  (SegNet): nothing learned, but the indices must be kept in memory;
- ``"transpose"``: a learned transposed convolution ("deconvolution"): learns the
  upsampling, costs parameters and compute, can leave checkerboard artifacts.
"""

from keras import layers

UPSAMPLING_METHODS = ("bilinear", "nearest", "transpose", "unpool")
INTERPOLATIONS = ("bilinear", "nearest")


def check_upsampling(name, upsampling, allowed=UPSAMPLING_METHODS, why=None):
    """Raise a clear ``ValueError`` unless ``upsampling`` is one of ``allowed``.

    ``why`` (optional) explains why a method of :data:`UPSAMPLING_METHODS` that is
    not in ``allowed`` does not apply to this architecture.
    """
    if upsampling in allowed:
        return
    message = f"{name}: upsampling must be one of {allowed}, got {upsampling!r}."
    if why and upsampling in UPSAMPLING_METHODS:
        message += " " + why
    raise ValueError(message)


def interpolate(x, factor, interpolation, name, dtype=None):
    """Upsample an NHWC tensor by the integer ``factor`` with fixed interpolation.

    ``"bilinear"`` uses half-pixel centres (``align_corners=False``), the
    alignment of a bilinear-initialized transposed convolution.
    """
    return layers.UpSampling2D(factor, interpolation=interpolation, dtype=dtype, name=name)(x)

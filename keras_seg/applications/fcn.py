"""FCN-32s / FCN-16s / FCN-8s (Long, Shelhamer & Darrell 2015, "Fully Convolutional
Networks for Semantic Segmentation", CVPR).
"""

from keras import layers

from keras_seg.applications._base import begin, crop_output, finish, pad_input, resolve_encoder
from keras_seg.applications._common import as_float32
from keras_seg.applications._upsampling import INTERPOLATIONS, check_upsampling, interpolate
from keras_seg.layers import BilinearUpsampling

_FIXED = ("final", "all", "none")
_NO_UNPOOL = (
    "Max unpooling puts each value back where the same channel had its maximum in an "
    "encoder pooling; FCN upsamples class-score maps (one channel per class, made by 1x1 "
    "score layers), which no encoder pooling produced, so there are no indices for them, "
    "and its last step (x8 to x32) spans several poolings at once. Use 'transpose' (the "
    "paper: bilinear-initialized deconvolution) or 'bilinear' / 'nearest' (fixed "
    "interpolation); index unpooling is in SegNet and UNet(upsampling='unpool')."
)


def _score(x, num_classes, name):
    """1x1 scoring layer, zero-initialized as in the paper."""
    return layers.Conv2D(num_classes, 1, kernel_initializer="zeros", bias_initializer="zeros",
                         name=name)(x)


def _deconv(x, num_classes, factor, trainable, name, dtype=None):
    """``factor``x upsampling by a bilinear-initialized transposed conv (kernel 2 * factor)."""
    return layers.Conv2DTranspose(num_classes, 2 * factor, strides=factor, padding="same",
                                  use_bias=False, kernel_initializer=BilinearUpsampling(),
                                  trainable=trainable, dtype=dtype, name=name)(x)


def _upscore(x, num_classes, factor, upsampling, trainable, name):
    if upsampling == "transpose":
        return _deconv(x, num_classes, factor, trainable, name)
    return interpolate(x, factor, upsampling, name)


def _fcn(num_classes, skips, input_shape, backbone, backbone_options, fixed_upsampling, name,
         upsampling="transpose"):
    input_shape, inputs = begin(name, num_classes, input_shape)
    if fixed_upsampling not in _FIXED:
        raise ValueError(f"{name}: fixed_upsampling must be one of {_FIXED}, got "
                         f"{fixed_upsampling!r}.")
    check_upsampling(name, upsampling, ("transpose",) + INTERPOLATIONS, why=_NO_UNPOOL)
    if upsampling != "transpose" and fixed_upsampling == "none":
        raise ValueError(f"{name}: fixed_upsampling='none' asks for learnable deconvolutions, "
                         f"but upsampling={upsampling!r} is a fixed interpolation with nothing "
                         "to learn. Use upsampling='transpose' with fixed_upsampling='none', "
                         "or leave fixed_upsampling at 'final'.")
    vgg = isinstance(backbone, str) and backbone.lower() == "vgg16"
    skip_levels = {"P4": "the pool4 skip of FCN-16s / 8s", "P3": "the pool3 skip of FCN-8s"}
    encoder = resolve_encoder(name, backbone, backbone_options, input_shape=input_shape,
                              levels=dict(list(skip_levels.items())[:skips]),
                              named_defaults={"fc_layers": True} if vgg else None)
    strides = encoder.strides
    deepest = "fc7" if "fc7" in strides else encoder.deepest()
    levels = [deepest] + list(skip_levels)[:skips]  # fc7, pool4, pool3
    x = pad_input(inputs, encoder.stride, name)
    feats = encoder.model(x)
    score_names = {"fc7": "score_fr", "P5": "score_pool5", "P4": "score_pool4",
                   "P3": "score_pool3"}
    y = _score(feats[deepest], num_classes, score_names[deepest])
    current = strides[deepest]
    for level in levels[1:]:
        factor = current // strides[level]
        skip_name = {"P4": "pool4", "P3": "pool3"}[level]
        if factor > 1:
            y = _upscore(y, num_classes, factor, upsampling, fixed_upsampling != "all",
                         f"upscore_to_{skip_name}")
        skip = _score(feats[level], num_classes, score_names[level])
        y = layers.Add(name=f"fuse_{skip_name}")([y, skip])
        current = strides[level]
    if current > 1:
        y = _upscore(y, num_classes, current, upsampling, fixed_upsampling == "none",
                     f"upscore{current}")
    y = crop_output(y, inputs, "crop_to_input")
    return finish(inputs, as_float32(y, "logits"), name, output_stride=encoder.stride)


_DOC = """{title} (Long, Shelhamer & Darrell 2015).

    VGG16 with fc6 / fc7 as convolutions (7x7 and 1x1, 4096 channels, dropout 0.5)
    scored by a zero-initialized 1x1 conv to the classes; {skips_doc} The
    deconvolutions have no bias and are initialized to bilinear interpolation
    (:class:`keras_seg.layers.BilinearUpsampling`); the final one is fixed
    (non-trainable), the intermediate ones learn. Skip scores are 1x1 convs,
    zero-initialized, fused by addition. The input is padded to a multiple of
    the backbone's stride (32) and the logits cropped back, so every skip lines
    up and any input size works.

    Args:
        num_classes: number of output classes.
        input_shape: ``(H, W, C)``; H and W may be None (any size).
            Images are float32 in [0, 1] (uint8 divided by 255), as keras-seg's training pipeline
            and :func:`keras_seg.inference.predict` feed them; the model does not rescale its input.
        backbone: ``"vgg16"`` (the paper; built with ``fc_layers=True``), another
            backbone name (its ``"P5"`` is scored when it has no ``"fc7"``) or a
            pyramid ``keras.Model`` (see :func:`keras_seg.backbones.get`).
        backbone_options: dict of options for a named backbone (``weights``,
            ``width_multiplier``, ``fc_filters``, ...).
        fixed_upsampling: ``"final"`` (the paper: only the last deconvolution is
            frozen), ``"all"`` (every deconvolution frozen at bilinear) or
            ``"none"`` (all learnable; needs ``upsampling="transpose"``).
        upsampling: ``"transpose"`` (the paper: bilinear-initialized
            deconvolutions, ``(2f)^2 * classes^2`` weights for a x``f`` step) or
            ``"bilinear"`` / ``"nearest"`` (fixed interpolation, no weights; the
            same function as the frozen bilinear deconvolution away from the
            borders for ``"bilinear"``). ``"unpool"`` is refused: the upsampled
            maps are class scores, which no encoder pooling produced, so there
            are no pooling indices for them.
        name: model name.

    Returns:
        A functional ``keras.Model``: ``(batch, H, W, C)`` -> float32 logits
        ``(batch, H, W, num_classes)``.
    """


def FCN32s(num_classes, input_shape=(None, None, 3), backbone="vgg16", backbone_options=None,
           fixed_upsampling="final", upsampling="transpose", name="fcn32s"):
    return _fcn(num_classes, 0, input_shape, backbone, backbone_options, fixed_upsampling, name,
                upsampling)


def FCN16s(num_classes, input_shape=(None, None, 3), backbone="vgg16", backbone_options=None,
           fixed_upsampling="final", upsampling="transpose", name="fcn16s"):
    return _fcn(num_classes, 1, input_shape, backbone, backbone_options, fixed_upsampling, name,
                upsampling)


def FCN8s(num_classes, input_shape=(None, None, 3), backbone="vgg16", backbone_options=None,
          fixed_upsampling="final", upsampling="transpose", name="fcn8s"):
    return _fcn(num_classes, 2, input_shape, backbone, backbone_options, fixed_upsampling, name,
                upsampling)


FCN32s.__doc__ = _DOC.format(
    title="FCN-32s",
    skips_doc="the stride-32 scores are upsampled x32 by one deconvolution (kernel 64, "
              "stride 32).")
FCN16s.__doc__ = _DOC.format(
    title="FCN-16s",
    skips_doc="the stride-32 scores go x2 up (deconv kernel 4, stride 2), are added to the "
              "scores of pool4, and the sum goes x16 up (kernel 32, stride 16).")
FCN8s.__doc__ = _DOC.format(
    title="FCN-8s",
    skips_doc="the stride-32 scores go x2 up (deconv kernel 4, stride 2) and are added to "
              "the scores of pool4; that sum goes x2 up and is added to the scores of pool3; "
              "the result goes x8 up (kernel 16, stride 8).")

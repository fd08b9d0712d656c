"""FCN-32s / FCN-16s / FCN-8s (Long, Shelhamer & Darrell 2015, "Fully Convolutional
Networks for Semantic Segmentation", CVPR).

``FCN32s`` also builds torchvision's ``fcn_resnet50`` / ``fcn_resnet101`` (a dilated
ResNet at output stride 8, torchvision's ``FCNHead``, a bilinear resize of the logits to
the input, an optional auxiliary head): see its ``head``, ``output_stride``, ``aux``,
``pad_to_stride`` and ``bn_epsilon`` options.
"""

from keras import layers

from keras_seg import validation
from keras_seg.applications._base import (
    begin,
    crop_output,
    finish,
    pad_input,
    resolve_encoder,
    upsample_to_input,
)
from keras_seg.applications._common import as_float32, fcn_head
from keras_seg.applications._upsampling import INTERPOLATIONS, check_upsampling, interpolate
from keras_seg.layers import BilinearUpsampling
from keras_seg.layers.atrous import Conv2D, Conv2DTranspose

_FIXED = ("final", "all", "none")
_HEADS = ("score", "fcn_head")
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
    return Conv2D(num_classes, 1, kernel_initializer="zeros", bias_initializer="zeros",
                         name=name)(x)


def _deconv(x, num_classes, factor, trainable, name, dtype=None):
    """``factor``x upsampling by a bilinear-initialized transposed conv (kernel 2 * factor)."""
    return Conv2DTranspose(num_classes, 2 * factor, strides=factor, padding="same",
                                  use_bias=False, kernel_initializer=BilinearUpsampling(),
                                  trainable=trainable, dtype=dtype, name=name)(x)


def _upscore(x, num_classes, factor, upsampling, trainable, name):
    if upsampling == "transpose":
        return _deconv(x, num_classes, factor, trainable, name)
    return interpolate(x, factor, upsampling, name)


def _check_torchvision_options(name, head, output_stride, pad_to_stride, upsampling):
    """Validate FCN-32s' ``head`` / ``output_stride`` / ``pad_to_stride`` (before building)."""
    validation.one_of(name, "head", head, _HEADS)
    if output_stride is not None:
        validation.output_stride(name, output_stride)
    if pad_to_stride not in (True, False):
        raise ValueError(f"{name}: pad_to_stride must be True or False, got {pad_to_stride!r}.")
    if not pad_to_stride and upsampling != "bilinear":
        raise ValueError(
            f"{name}: pad_to_stride=False needs upsampling='bilinear' (got {upsampling!r}): "
            "without padding the last feature map is not the input divided by the stride, "
            "so only a bilinear resize of the logits to the input size (what torchvision's "
            "FCN does) lines them up with the image; an x-stride deconvolution or "
            "UpSampling2D would be misaligned. Keep pad_to_stride=True with "
            f"upsampling={upsampling!r}.")


def _fcn(num_classes, skips, input_shape, backbone, backbone_options, fixed_upsampling, name,
         upsampling="transpose", head="score", output_stride=None, aux=False,
         pad_to_stride=True, bn_epsilon=1e-3):
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
    _check_torchvision_options(name, head, output_stride, pad_to_stride, upsampling)
    vgg = isinstance(backbone, str) and backbone.lower() == "vgg16"
    skip_levels = {"P4": "the pool4 skip of FCN-16s / 8s", "P3": "the pool3 skip of FCN-8s"}
    levels_needed = dict(list(skip_levels.items())[:skips])
    if aux:
        levels_needed["P4"] = "the input of the auxiliary head (aux=True)"
    encoder = resolve_encoder(name, backbone, backbone_options, input_shape=input_shape,
                              levels=levels_needed, output_stride=output_stride,
                              named_defaults={"fc_layers": True} if vgg else None)
    strides = encoder.strides
    deepest = "fc7" if "fc7" in strides else encoder.deepest()
    if head == "fcn_head" and deepest == "fc7":
        raise ValueError(
            f"{name}: head='fcn_head' is torchvision's FCNHead (3x3 conv + BN + ReLU + "
            "dropout + 1x1 conv) put on the last stage of a ResNet in place of the paper's "
            "fc6 / fc7; this backbone already ends in fc6 / fc7, which the paper scores with "
            "head='score'. Use head='score', or drop fc6 / fc7 (backbone_options="
            "{'fc_layers': False}) to put the FCN head on pool5.")
    levels = [deepest] + list(skip_levels)[:skips]  # fc7, pool4, pool3
    x = pad_input(inputs, encoder.stride, name) if pad_to_stride else inputs
    feats = encoder.model(x)
    score_names = {"fc7": "score_fr", "P5": "score_pool5", "P4": "score_pool4",
                   "P3": "score_pool3"}
    if head == "fcn_head":
        y = fcn_head(feats[deepest], num_classes, "head", bn_epsilon=bn_epsilon)
    else:
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
    if pad_to_stride:
        if current > 1:
            y = _upscore(y, num_classes, current, upsampling, fixed_upsampling == "none",
                         f"upscore{current}")
        y = crop_output(y, inputs, "crop_to_input")
        logits = as_float32(y, "logits")
    else:  # upsampling == "bilinear": resize to the input size, as torchvision
        logits = upsample_to_input(y, inputs, inputs)
    if not aux:
        return finish(inputs, logits, name, output_stride=encoder.stride)
    side = fcn_head(feats["P4"], num_classes, "aux", bn_epsilon=bn_epsilon)
    side = upsample_to_input(side, x, inputs, name="aux")
    return finish(inputs, {"logits": logits, "aux": side}, name, output_stride=encoder.stride,
                  loss_weights={"logits": 1.0, "aux": 0.5})


_DOC = """{title} (Long, Shelhamer & Darrell 2015).

    VGG16 with fc6 / fc7 as convolutions (7x7 and 1x1, 4096 channels, dropout 0.5)
    scored by a zero-initialized 1x1 conv to the classes; {skips_doc} The
    deconvolutions have no bias and are initialized to bilinear interpolation
    (:class:`keras_seg.layers.BilinearUpsampling`); the final one is fixed
    (non-trainable), the intermediate ones learn. Skip scores are 1x1 convs,
    zero-initialized, fused by addition. The input is padded to a multiple of
    the backbone's stride (32) and the logits cropped back, so every skip lines
    up and any input size works.{extra_notes}

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
            are no pooling indices for them.{extra_args}
        name: model name.

    Returns:
        A functional ``keras.Model``: ``(batch, H, W, C)`` -> float32 logits
        ``(batch, H, W, num_classes)``{extra_returns}.
    """


def FCN32s(num_classes, input_shape=(None, None, 3), backbone="vgg16", backbone_options=None,
           fixed_upsampling="final", upsampling="transpose", head="score", output_stride=None,
           aux=False, pad_to_stride=True, bn_epsilon=1e-3, name="fcn32s"):
    return _fcn(num_classes, 0, input_shape, backbone, backbone_options, fixed_upsampling, name,
                upsampling, head=head, output_stride=output_stride, aux=aux,
                pad_to_stride=pad_to_stride, bn_epsilon=bn_epsilon)


def FCN16s(num_classes, input_shape=(None, None, 3), backbone="vgg16", backbone_options=None,
           fixed_upsampling="final", upsampling="transpose", name="fcn16s"):
    return _fcn(num_classes, 1, input_shape, backbone, backbone_options, fixed_upsampling, name,
                upsampling)


def FCN8s(num_classes, input_shape=(None, None, 3), backbone="vgg16", backbone_options=None,
          fixed_upsampling="final", upsampling="transpose", name="fcn8s"):
    return _fcn(num_classes, 2, input_shape, backbone, backbone_options, fixed_upsampling, name,
                upsampling)


_FCN32S_ARGS = """
        head: what turns the deepest features into class scores: ``"score"`` (the
            paper: a zero-initialized 1x1 conv, layer ``score_fr`` on fc7 or
            ``score_pool5`` on P5) or ``"fcn_head"`` (torchvision's ``FCNHead`` of
            ``fcn_resnet50`` / ``fcn_resnet101``: a 3x3 conv to a quarter of the
            channels, no bias, + BatchNorm + ReLU + dropout 0.1 + a 1x1 conv to the
            classes, layers ``head_conv`` / ``head_bn`` / ``head_classifier``; see
            :func:`keras_seg.applications._common.fcn_head`). ``"fcn_head"`` replaces
            fc6 / fc7, so a backbone that ends in fc7 (``"vgg16"`` with its default
            ``fc_layers=True``) is refused with it (ValueError).
        output_stride: stride of the deepest features: None (the backbone's own: 32,
            the paper), or 8 / 16 / 32; a named backbone is dilated to it (torchvision's
            FCN: 8, with ``backbone_options=TORCHVISION_DILATED`` from
            :mod:`keras_seg.convert._torchvision`), a passed-in model must already have
            it (ValueError otherwise). The final x``stride`` upsampling follows it.
        aux: add torchvision's auxiliary head (an ``"fcn_head"`` on the ``"P4"``
            features, the stride-16 stage or ``layer3`` of a dilated ResNet, resized
            bilinearly to the input whatever ``upsampling`` is): the model then
            returns ``{{"logits", "aux"}}``, losses weighted 1 and 0.5 (torchvision's
            training reference). Not in the paper (False); the backbone must have a
            ``"P4"`` level (ValueError otherwise).
        pad_to_stride: True (the paper, default) pads the input at the bottom / right to
            a multiple of the stride and crops the logits back; False runs the network on
            the image as it is, as torchvision's FCN does, and resizes the logits to the
            input size (half-pixel centres, ``align_corners=False``); needed for parity
            with torchvision at sizes that are not multiples of the stride. False needs
            ``upsampling="bilinear"`` (ValueError otherwise).
        bn_epsilon: epsilon of the BatchNorms of ``head="fcn_head"`` and of the
            auxiliary head (Keras' 1e-3; PyTorch's 1e-5 for converted weights); the
            paper's head has no BatchNorm. The backbone's are its own
            (``backbone_options``)."""

FCN32s.__doc__ = _DOC.format(
    title="FCN-32s",
    skips_doc="the stride-32 scores are upsampled x32 by one deconvolution (kernel 64, "
              "stride 32).",
    extra_notes="""

    torchvision's ``fcn_resnet50`` / ``fcn_resnet101`` (``torchvision.models.segmentation``)
    are ``FCN32s(backbone="resnet50", backbone_options=TORCHVISION_DILATED,
    output_stride=8, head="fcn_head", upsampling="bilinear", pad_to_stride=False,
    bn_epsilon=1e-5, aux=...)`` (``TORCHVISION_DILATED`` is in
    :mod:`keras_seg.convert._torchvision`; :func:`keras_seg.convert.from_torch` builds
    and loads them); the options below that are not the paper's exist for them. They
    are FCN-32s' only: FCN-16s / 8s have no torchvision counterpart.""",
    extra_args=_FCN32S_ARGS,
    extra_returns='; with ``aux=True`` a dict\n        ``{"logits": ..., "aux": ...}`` '
                  "of two such maps")
FCN16s.__doc__ = _DOC.format(
    title="FCN-16s",
    skips_doc="the stride-32 scores go x2 up (deconv kernel 4, stride 2), are added to the "
              "scores of pool4, and the sum goes x16 up (kernel 32, stride 16).",
    extra_notes="", extra_args="", extra_returns="")
FCN8s.__doc__ = _DOC.format(
    title="FCN-8s",
    skips_doc="the stride-32 scores go x2 up (deconv kernel 4, stride 2) and are added to "
              "the scores of pool4; that sum goes x2 up and is added to the scores of pool3; "
              "the result goes x8 up (kernel 16, stride 8).",
    extra_notes="", extra_args="", extra_returns="")

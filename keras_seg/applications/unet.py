"""U-Net (Ronneberger, Fischer & Brox 2015, "U-Net: Convolutional Networks for
Biomedical Image Segmentation", MICCAI).
"""

from keras import layers

from keras_seg import validation
from keras_seg.applications._base import begin, crop_output, finish, pad_input, resolve_encoder
from keras_seg.applications._common import conv_bn_relu, logits_head
from keras_seg.applications._upsampling import INTERPOLATIONS, check_upsampling, interpolate
from keras_seg.layers import (
    CropToReference,
    CropToStride,
    MaxPooling2D,
    MaxPoolingWithArgmax2D,
    MaxUnpooling2D,
)
from keras_seg.layers.atrous import Conv2D, Conv2DTranspose
from keras_seg.model_base import logits_dtype


def unet_valid_sizes(depth=4, start=1, stop=1024):
    """Input sides that the unpadded U-Net (``padding="valid"``) tiles exactly.

    A side is valid when every 2x2 max pooling sees an even size. Returns a list
    of ``(input_side, output_side)`` pairs, e.g. ``(572, 388)`` for depth 4.
    """
    out = []
    for side in range(start, stop + 1):
        o = unet_valid_output_side(side, depth)
        if o is not None:
            out.append((side, o))
    return out


def unet_valid_output_side(side, depth=4):
    """Output side of the unpadded U-Net for an input side, or None if it does not tile."""
    s = side
    for _ in range(depth):
        s -= 4
        if s <= 0 or s % 2:
            return None
        s //= 2
    s -= 4
    if s <= 0:
        return None
    for _ in range(depth):
        s = 2 * s - 4
    return s if s > 0 else None


def _check_valid_side(side, depth):
    if side is None or unet_valid_output_side(side, depth) is not None:
        return
    near = [s for s, _ in unet_valid_sizes(depth, max(1, side - 64), side + 64)]
    raise ValueError(
        f"UNet(padding='valid', depth={depth}): an input side of {side} does not tile (every "
        f"2x2 max pooling needs an even size). Nearest sides that work: "
        f"{sorted(near, key=lambda s: abs(s - side))[:4]}, e.g. 572 -> 388 as in the paper. "
        "Or use padding='same', which takes any size."
    )


def _upsample(x, filters, factor, mode, name, switch=None, interpolation_conv=True):
    """Upsample by ``factor`` to ``filters`` channels (the paper's up-conv halves the width).

    ``"transpose"``: 2x2 up-convolution. ``"bilinear"`` / ``"nearest"``: resize, then a 1x1
    conv to ``filters`` (without it when ``interpolation_conv`` is False: the channels are
    kept). ``"unpool"``: a 1x1 conv to ``filters`` (the channels of the
    pooling whose indices are used), then max unpooling with ``switch = (pre-pooling
    tensor, indices)``.
    """
    if mode == "transpose":
        return Conv2DTranspose(filters, factor, strides=factor,
                                      kernel_initializer="he_normal", name=name + "_upconv")(x)
    if mode == "unpool":
        before, indices = switch
        x = Conv2D(filters, 1, kernel_initializer="he_normal", name=name + "_proj")(x)
        return MaxUnpooling2D(factor, name=name + "_unpool")([x, indices, before])
    x = interpolate(x, factor, mode, name + "_" + mode)
    if not interpolation_conv:
        return x
    return Conv2D(filters, 1, kernel_initializer="he_normal", name=name + "_proj")(x)


def _double_conv(x, filters, padding, batch_norm, name, bn_epsilon=1e-3):
    x = conv_bn_relu(x, filters, 3, name + "_1", batch_norm=batch_norm, padding=padding,
                     bn_epsilon=bn_epsilon)
    return conv_bn_relu(x, filters, 3, name + "_2", batch_norm=batch_norm, padding=padding,
                        bn_epsilon=bn_epsilon)


def _head(x, num_classes, kernel):
    """The classifier ``"logits"``: the paper's 1x1 conv, or a ``kernel`` x ``kernel`` conv
    (``padding="same"``, with bias, float32) as segmentation_models.pytorch's 3x3 head."""
    if kernel == 1:
        return logits_head(x, num_classes)
    return Conv2D(num_classes, kernel, padding="same", dtype=logits_dtype(),
                         name="logits")(x)


def _check_epsilon(name, bn_epsilon):
    if isinstance(bn_epsilon, bool) or not isinstance(bn_epsilon, (int, float)) \
            or not bn_epsilon > 0:
        raise ValueError(f"{name}: bn_epsilon must be a positive number (Keras 1e-3, PyTorch "
                         f"1e-5), got {bn_epsilon!r}.")


def UNet(
    num_classes,
    input_shape=(None, None, 3),
    filters=64,
    depth=4,
    padding="same",
    batch_norm=None,
    upsampling="transpose",
    dropout=0.5,
    backbone=None,
    backbone_options=None,
    decoder_filters=(256, 128, 64, 32, 16),
    deep_supervision=False,
    interpolation_conv=True,
    head_kernel=1,
    bn_epsilon=1e-3,
    name="unet",
):
    """U-Net (Ronneberger et al. 2015).

    Paper configuration (the defaults): contracting path of ``depth`` = 4 max
    poolings with widths 64-128-256-512-1024, each level two 3x3 conv + ReLU
    (He-normal init); dropout at the end of the contracting path; expanding path
    of 2x2 up-convolutions halving the width, concatenation with the skip
    (center-cropped in unpadded mode), two 3x3 conv + ReLU; a 1x1 conv to the
    classes: 23 convolutional layers. ``UNet(2, (572, 572, 1), padding="valid")``
    maps a 572x572 tile to a 388x388 output, as in the paper.

    segmentation_models.pytorch's ``Unet`` (what ``keras_seg.convert`` loads) is
    ``backbone="resnet34"`` (etc.) with ``backbone_options=TORCH_STYLE``,
    ``upsampling="nearest", interpolation_conv=False, head_kernel=3, bn_epsilon=1e-5``.

    Args:
        num_classes: number of output channels (logits).
        input_shape: ``(H, W, C)``; H and W may be None (any size).
            Images are float32 in [0, 1] (uint8 divided by 255), as keras-seg's training pipeline
            and :func:`keras_seg.inference.predict` feed them; the model does not rescale its input.
        filters: width of the first level; level ``k`` has ``filters * 2**k``.
        depth: number of down-sampling steps (4 in the paper).
        padding: ``"same"`` (output size = input size for any input, padding the
            input to a multiple of ``2**depth`` internally and cropping back) or
            ``"valid"`` (the paper's unpadded convolutions: the output is smaller
            than the input, see :func:`unet_valid_sizes`).
        batch_norm: add BatchNormalization after each 3x3 conv. Default None means
            False for the paper's encoder (the paper has none) and True with a
            backbone (its decoder follows the BN encoder).
        upsampling: how the expanding path upsamples, each step halving the width:
            ``"transpose"`` (the paper's 2x2 up-convolution: ``2 * 2 * c * c/2``
            weights + ``c/2`` biases from ``c`` channels), ``"bilinear"`` /
            ``"nearest"`` (fixed x2 interpolation, then a 1x1 conv halving the
            width: ``c * c/2`` weights + ``c/2`` biases),
            or ``"unpool"`` (a 1x1 conv halving the width, then max unpooling with
            the indices of the matching contracting-path pooling, which becomes a
            :class:`keras_seg.layers.MaxPoolingWithArgmax2D`: as SegNet, same
            parameters as the 1x1 variants). ``"unpool"`` needs the paper's own
            encoder with ``padding="same"``: a backbone's encoder records no
            pooling indices, and unpadded convolutions shrink the decoder maps so
            that they no longer line up with the stored indices.
        dropout: dropout rate at the end of the contracting path (0.5; 0 disables).
        backbone: None for the paper's encoder, or a backbone name / model
            (see :func:`keras_seg.backbones.get`), e.g. ``"resnet34"``: its pyramid
            levels become the skips and the decoder has one stage per stride
            (``"P5"`` upsampled and concatenated as ``[upsampled, skip]`` with ``"P4"``,
            ..., ``"P1"``, then a last stage at the input resolution without a skip;
            the layout of segmentation_models.pytorch's ``Unet``).
        backbone_options: dict of options for a named backbone (``weights``,
            ``output_stride``, ``width_multiplier``...).
        decoder_filters: decoder widths, deepest first, with a backbone (the last
            ``n`` are used for ``n`` decoder stages).
        deep_supervision: add a float32 1x1 classifier on the output of every
            decoder level below full resolution (not in the paper; a common
            option, as in UNet++) and return a dict of outputs, see Returns.
        interpolation_conv: with ``upsampling="bilinear"`` / ``"nearest"``, the 1x1
            conv after each interpolation that halves the width (True, the default).
            False keeps the interpolated map's channels: each decoder stage then
            concatenates it at full width with the skip and its first 3x3 conv
            reduces it, as segmentation_models.pytorch's ``Unet`` does (nearest x2,
            no projection). A ValueError with ``"transpose"`` / ``"unpool"``, whose
            upsampling sets the width itself.
        head_kernel: kernel of the classifier (1: the paper's 1x1 conv;
            segmentation_models.pytorch's ``Unet`` head is a 3x3 conv, ``head_kernel=3``,
            padded ``"same"``). Odd; 1 with ``padding="valid"`` (a larger kernel
            would shrink the output again). The deep-supervision heads stay 1x1.
        bn_epsilon: epsilon of the U-Net's own BatchNorms (the decoder's, and the
            encoder's with ``batch_norm=True``): Keras' 1e-3 by default, PyTorch's
            1e-5 for converted checkpoints. A backbone's BatchNorms are set by its
            own options (``backbone_options``).
        name: model name.

    Returns:
        A functional ``keras.Model``: ``(batch, H, W, C)`` -> float32 logits
        ``(batch, H, W, num_classes)`` (``padding="same"``), or
        ``(batch, H', W', num_classes)`` with ``H' = unet_valid_output_side(H)``
        (``padding="valid"``). With ``deep_supervision=True``, a dict: ``"logits"``
        (that main output, first), then ``"level{k}"`` for the decoder level at
        stride ``2**k`` (``k = 1 .. depth - 1``; with a backbone, one per decoder
        stage coarser than the input), float32 ``(batch, ceil(H / 2**k),
        ceil(W / 2**k), num_classes)`` with ``padding="same"`` (the part covering
        the image) and the decoder level's own size with ``padding="valid"``.
        :func:`keras_seg.inference_model` keeps ``"logits"`` only. The model is then a
        :class:`keras_seg.model_base.SegmentationModel` (every output weighted 1) that
        trains with ``model.fit(images, masks)`` on one label map.
    """
    input_shape, inputs = begin(name, num_classes, input_shape)
    validation.one_of(name, "padding", padding, ("same", "valid"))
    check_upsampling(name, upsampling)
    validation.positive_int(name, "depth", depth)
    _check_epsilon(name, bn_epsilon)
    if isinstance(head_kernel, bool) or not isinstance(head_kernel, int) or head_kernel < 1 \
            or head_kernel % 2 == 0:
        raise ValueError(f"{name}: head_kernel must be a positive odd int (1: the paper's 1x1 "
                         f"classifier, 3: segmentation_models.pytorch's), got {head_kernel!r}.")
    if head_kernel != 1 and padding == "valid":
        raise ValueError(f"{name}: head_kernel={head_kernel} needs padding='same'; the unpadded "
                         "U-Net's output sizes (unet_valid_sizes) assume the paper's 1x1 "
                         "classifier.")
    if not isinstance(interpolation_conv, bool):
        raise ValueError(f"{name}: interpolation_conv must be True or False, got "
                         f"{interpolation_conv!r}.")
    if not interpolation_conv and upsampling not in INTERPOLATIONS:
        raise ValueError(f"{name}: interpolation_conv=False drops the 1x1 conv after an "
                         f"interpolation; it needs upsampling in {INTERPOLATIONS}, got "
                         f"{upsampling!r} (whose upsampling sets the width itself).")
    if upsampling == "unpool" and backbone is not None:
        raise ValueError(
            f"{name}: upsampling='unpool' needs the max-pooling indices of the encoder, and a "
            f"backbone encoder ({backbone!r}) records none (it downsamples with strided "
            "convolutions or plain pooling). Use backbone=None (the paper's encoder, whose "
            "poolings then keep their indices) or upsampling in "
            f"{('transpose',) + INTERPOLATIONS}.")
    if upsampling == "unpool" and padding != "same":
        raise ValueError(
            f"{name}: upsampling='unpool' needs padding='same': with padding='valid' every "
            "3x3 convolution shrinks the decoder maps, so they no longer line up with the "
            "pooling indices stored by the contracting path. Use padding='same', or "
            f"upsampling in {('transpose',) + INTERPOLATIONS} for the unpadded U-Net.")
    if backbone is not None:
        if padding != "same":
            raise ValueError(f"{name}: a backbone encoder needs padding='same'.")
        return _backbone_unet(num_classes, input_shape, inputs, backbone, backbone_options,
                              decoder_filters, batch_norm is not False, upsampling, name,
                              deep_supervision, interpolation_conv, head_kernel, bn_epsilon)
    if backbone_options:
        raise ValueError(f"{name}: backbone_options given without a backbone.")
    batch_norm = bool(batch_norm)
    if padding == "valid":
        _check_valid_side(input_shape[0], depth)
        _check_valid_side(input_shape[1], depth)

    x = pad_input(inputs, 2**depth, name) if padding == "same" else inputs
    skips, switches = [], []
    for level in range(depth):
        x = _double_conv(x, filters * 2**level, padding, batch_norm, f"down{level + 1}",
                         bn_epsilon)
        skips.append(x)
        if upsampling == "unpool":
            before = x
            x, indices = MaxPoolingWithArgmax2D(2, name=f"pool{level + 1}")(x)
            switches.append((before, indices))
        else:
            x = MaxPooling2D(2, name=f"pool{level + 1}")(x)
    x = _double_conv(x, filters * 2**depth, padding, batch_norm, "bottom", bn_epsilon)
    if dropout:
        x = layers.Dropout(dropout, name="bottom_dropout")(x)
    side_outputs = {}
    for level in reversed(range(depth)):
        width = filters * 2**level
        x = _upsample(x, width, 2, upsampling, f"up{level + 1}",
                      switches[level] if switches else None, interpolation_conv)
        skip = skips[level]
        if padding == "valid":
            skip = CropToReference("center", name=f"up{level + 1}_crop_skip")([skip, x])
        x = layers.Concatenate(name=f"up{level + 1}_concat")([skip, x])
        x = _double_conv(x, width, padding, batch_norm, f"up{level + 1}", bn_epsilon)
        if deep_supervision and level > 0:
            side_outputs[level] = _side_output(x, inputs, num_classes, level,
                                               crop=padding == "same")
    if padding == "same":
        x = crop_output(x, inputs, "crop_to_input")
    outputs = _head(x, num_classes, head_kernel)
    return finish(inputs, _with_side_outputs(outputs, side_outputs, deep_supervision), name,
                  output_stride=2**depth, padding=padding)


def _side_output(x, inputs, num_classes, level, crop):
    """Deep-supervision head ``"level{k}"`` at stride ``2**level``."""
    key = f"level{level}"
    if not crop:
        return logits_head(x, num_classes, name=key)
    y = logits_head(x, num_classes, name=key + "_logits")
    return CropToStride(2**level, dtype=logits_dtype(), name=key)([y, inputs])


def _with_side_outputs(outputs, side_outputs, deep_supervision):
    if not deep_supervision:
        return outputs
    named = {"logits": outputs}
    named.update({f"level{k}": side_outputs[k] for k in sorted(side_outputs)})
    return named


def _backbone_unet(num_classes, input_shape, inputs, backbone, options, decoder_filters,
                   batch_norm, upsampling, name, deep_supervision=False,
                   interpolation_conv=True, head_kernel=1, bn_epsilon=1e-3):
    encoder = resolve_encoder(name, backbone, options, input_shape=input_shape)
    strides = encoder.strides
    # deepest level at each distinct stride, deepest first
    per_stride = {}
    for key in sorted((k for k in strides if k.startswith("P")), key=lambda k: int(k[1:])):
        per_stride[strides[key]] = key
    order = sorted(per_stride, reverse=True)
    targets = order[1:] + ([1] if order[-1] > 1 else [])
    if len(decoder_filters) < len(targets):
        raise ValueError(f"{name}: decoder_filters needs at least {len(targets)} widths for this "
                         f"backbone, got {decoder_filters!r}.")
    widths = list(decoder_filters)[-len(targets):]

    x = pad_input(inputs, max(order), name)
    feats = encoder.model(x)
    x = feats[per_stride[order[0]]]
    current = order[0]
    side_outputs = {}
    for i, (target, width) in enumerate(zip(targets, widths, strict=True)):
        stage = f"decoder{i + 1}"
        x = _upsample(x, width, current // target, upsampling, stage,
                      interpolation_conv=interpolation_conv)
        if target in per_stride:
            x = layers.Concatenate(name=stage + "_concat")([x, feats[per_stride[target]]])
        x = _double_conv(x, width, "same", batch_norm, stage, bn_epsilon)
        current = target
        if deep_supervision and target > 1:
            level = target.bit_length() - 1  # target == 2**level
            side_outputs[level] = _side_output(x, inputs, num_classes, level, crop=True)
    x = crop_output(x, inputs, "crop_to_input")
    outputs = _head(x, num_classes, head_kernel)
    return finish(inputs, _with_side_outputs(outputs, side_outputs, deep_supervision), name,
                  output_stride=max(order))

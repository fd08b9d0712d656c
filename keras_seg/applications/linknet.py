"""LinkNet (Chaurasia & Culurciello 2017, "LinkNet: Exploiting Encoder Representations
for Efficient Semantic Segmentation", VCIP).
"""

import keras
from keras import layers

from keras_seg.applications._base import begin, crop_output, finish, pad_input, resolve_encoder
from keras_seg.applications._upsampling import INTERPOLATIONS, check_upsampling, interpolate
from keras_seg.layers import LinkNetDecoderBlock
from keras_seg.layers.atrous import Conv2D, Conv2DTranspose
from keras_seg.layers.normalization import BatchNormalization
from keras_seg.model_base import logits_dtype

_STEM_POOL = "pool1_pool"  # the native ResNets' max pooling: the input of encoder block 1


def _with_stem_pool(encoder):
    """Add the input of encoder block 1 (the stem's max pooling) to a native ResNet's
    pyramid, as ``"stem"``; other backbones are returned unchanged."""
    names = {layer.name for layer in encoder.layers}
    if _STEM_POOL not in names or not isinstance(encoder.output, dict):
        return encoder
    outputs = {**encoder.output, "stem": encoder.get_layer(_STEM_POOL).output}
    return keras.Model(encoder.inputs, outputs, name=encoder.name)


_NO_UNPOOL = (
    "Max unpooling needs the indices of non-overlapping max poolings in the encoder; "
    "LinkNet's ResNet encoder downsamples with strided convolutions (its only pooling, the "
    "stem's 3x3 stride-2 max pooling, overlaps), so there are no indices to unpool with. "
    "Index unpooling is in SegNet (its default) and UNet(upsampling='unpool')."
)


def _check_options(name, decoder_kernel, decoder_bias, bn_epsilon, final_block):
    if isinstance(decoder_kernel, bool) or not isinstance(decoder_kernel, int) \
            or decoder_kernel < 1:
        raise ValueError(f"{name}: decoder_kernel must be a positive int (3: the paper, 4: "
                         f"segmentation_models.pytorch), got {decoder_kernel!r}.")
    if not isinstance(decoder_bias, bool):
        raise ValueError(f"{name}: decoder_bias must be True or False, got {decoder_bias!r}.")
    if isinstance(bn_epsilon, bool) or not isinstance(bn_epsilon, (int, float)) \
            or not bn_epsilon > 0:
        raise ValueError(f"{name}: bn_epsilon must be a positive number (Keras 1e-3, PyTorch "
                         f"1e-5), got {bn_epsilon!r}.")
    if final_block not in _FINAL_BLOCKS:
        raise ValueError(f"{name}: final_block must be one of {_FINAL_BLOCKS}, got "
                         f"{final_block!r}.")


_FINAL_BLOCKS = ("full_conv", "decoder_block")


def _bn_relu(y, name, bn_epsilon):
    y = BatchNormalization(epsilon=bn_epsilon, name=name + "_bn")(y)
    return layers.Activation("relu", name=name + "_relu")(y)


def _decoder_block(y, filters, strides, kernel, upsampling, bias, bn_epsilon, name):
    """:class:`keras_seg.layers.LinkNetDecoderBlock` built from plain layers, with a bias
    on the middle conv and a BatchNorm epsilon (which the layer does not have).

    Layers: ``{name}_reduce_conv`` (1x1 to m/4, no bias) / ``_bn`` / ``_relu``;
    ``{name}_up_conv`` (``kernel`` x ``kernel`` transposed conv with stride ``strides``,
    or ``{name}_up_resize`` + conv) / ``_bn`` / ``_relu``; ``{name}_expand_conv`` (1x1 to
    ``filters``, no bias) / ``_bn`` / ``_relu``.
    """
    mid = max(int(y.shape[-1]) // 4, 1)
    y = Conv2D(mid, 1, use_bias=False, name=name + "_reduce_conv")(y)
    y = _bn_relu(y, name + "_reduce", bn_epsilon)
    if upsampling == "transpose":
        y = Conv2DTranspose(mid, kernel, strides=strides, padding="same", use_bias=bias,
                                   name=name + "_up_conv")(y)
    else:
        if strides > 1:
            y = interpolate(y, strides, upsampling, name + "_up_resize")
        y = Conv2D(mid, kernel, padding="same", use_bias=bias, name=name + "_up_conv")(y)
    y = _bn_relu(y, name + "_up", bn_epsilon)
    y = Conv2D(filters, 1, use_bias=False, name=name + "_expand_conv")(y)
    return _bn_relu(y, name + "_expand", bn_epsilon)


def LinkNet(num_classes, input_shape=(None, None, 3), backbone="resnet18",
            backbone_options=None, upsampling="transpose", decoder_kernel=3,
            decoder_bias=False, bn_epsilon=1e-3, final_block="full_conv", name="linknet"):
    """LinkNet (Chaurasia & Culurciello 2017).

    Encoder: ResNet-18 (initial 7x7 stride-2 conv + 3x3 max pooling, then four
    encoder blocks of 64, 128, 256, 512 channels at strides 4, 8, 16, 32).
    Decoder: four :class:`keras_seg.layers.LinkNetDecoderBlock` (1x1 conv to m/4,
    3x3 transposed conv, 1x1 conv to n, each + BN + ReLU): 512->256, 256->128 and
    128->64 upsample x2, 64->64 keeps the stride; the output of decoder block i
    is **added** to the input of encoder block i (the "link"). Final block: 3x3
    transposed conv stride 2 (64->32) + BN + ReLU, 3x3 conv 32->32 + BN + ReLU,
    2x2 transposed conv stride 2 to the classes. 11.5M parameters (paper). The
    input is padded to a multiple of 32 and the logits cropped back (any size).

    segmentation_models.pytorch's ``Linknet`` (what ``keras_seg.convert`` loads) is
    ``decoder_kernel=4, decoder_bias=True, bn_epsilon=1e-5, final_block="decoder_block"``
    with ``backbone_options=TORCH_STYLE``.

    Args:
        num_classes: number of output classes.
        input_shape: ``(H, W, C)``; H and W may be None (any size).
            Images are float32 in [0, 1] (uint8 divided by 255), as keras-seg's training pipeline
            and :func:`keras_seg.inference.predict` feed them; the model does not rescale its input.
        backbone: ``"resnet18"`` (the paper), another backbone name or a pyramid
            ``keras.Model`` (:func:`keras_seg.backbones.get`). Its ``"P2"``...``"P5"``
            levels are the encoder blocks' outputs; ``"P2"`` must be at stride 4.
            For the native ResNets the input of encoder block 1 (after the stem's
            max pooling) is tapped for the last link; other backbones have no
            link after decoder block 1.
        backbone_options: dict of options for a named backbone (``weights``,
            ``width_multiplier``...).
        upsampling: ``"transpose"`` (the paper: transposed convolutions) or
            ``"bilinear"`` / ``"nearest"`` (fixed interpolation). With
            interpolation, each decoder block's 3x3 transposed conv becomes
            interpolation + 3x3 conv (same parameters), the final 3x3 transposed
            conv becomes interpolation + 3x3 conv (same parameters), and the last
            2x2 transposed conv to the classes becomes a 1x1 conv to the classes
            followed by the x2 interpolation of the logits (``4 * 32 * classes``
            -> ``32 * classes`` weights; the order does not matter, both steps are
            linear and interpolation weights sum to 1). ``"unpool"`` is refused:
            the ResNet encoder keeps no pooling indices.
        decoder_kernel: kernel of the middle (upsampling) conv of every decoder
            block: 3 in the paper; 4 in segmentation_models.pytorch, whose
            ``ConvTranspose2d(k=4, s=2, padding=1)`` is Keras'
            ``Conv2DTranspose(4, 2, padding="same")`` (the same 2H x 2W output
            window; tested against PyTorch).
        decoder_bias: a bias on that middle conv (False: the paper's blocks have
            none, each conv is followed by BatchNorm; True: segmentation_models.pytorch's
            ``ConvTranspose2d`` keeps its bias before the BatchNorm). The 1x1 convs
            never have one.
        bn_epsilon: epsilon of the decoder's and final block's BatchNorms (Keras'
            1e-3 by default, PyTorch's 1e-5 for converted checkpoints; a backbone's
            own BatchNorms follow ``backbone_options``).
            With ``decoder_bias=True`` or a ``bn_epsilon`` other than 1e-3 the decoder
            blocks are built from plain layers (``decoder{i}_reduce_conv``,
            ``_reduce_bn``, ``_up_conv``, ``_up_bn``, ``_expand_conv``, ``_expand_bn``)
            instead of the :class:`keras_seg.layers.LinkNetDecoderBlock` layer, which
            has neither option; they compute the same block.
        final_block: ``"full_conv"`` (the paper): decoder block 1 keeps the stride
            and links with the input of encoder block 1 (stride 4), then the final
            block above (full-conv, conv, full-conv to the classes).
            ``"decoder_block"`` (segmentation_models.pytorch's ``Linknet``): decoder
            block 1 upsamples x2 and links with the backbone's ``"P1"`` (the stem
            conv's output at stride 2, before the max pooling), a fifth decoder
            block ``"decoder0"`` (no link) upsamples to the input resolution with
            half of decoder block 1's width (32 for the ResNets, SMP's
            ``prefinal_channels``), and a 1x1 conv (with bias) maps it to the
            classes. Needs a backbone with ``"P1"`` at stride 2.
        name: model name.

    Returns:
        A functional ``keras.Model``: ``(batch, H, W, C)`` -> float32 logits
        ``(batch, H, W, num_classes)``.
    """
    input_shape, inputs = begin(name, num_classes, input_shape)
    check_upsampling(name, upsampling, ("transpose",) + INTERPOLATIONS, why=_NO_UNPOOL)
    _check_options(name, decoder_kernel, decoder_bias, bn_epsilon, final_block)
    smp_layout = final_block == "decoder_block"
    levels = ("P1", "P2", "P3", "P4", "P5") if smp_layout else ("P2", "P3", "P4", "P5")
    encoder = resolve_encoder(name, backbone, backbone_options, input_shape=input_shape,
                              levels={k: "the input of a decoder block" for k in levels})
    strides = encoder.strides
    if strides["P2"] != 4:
        raise ValueError(f"{name}: the backbone must return P2 at stride 4 (the first encoder "
                         f"block); got strides {strides}.")
    if smp_layout and strides["P1"] != 2:
        raise ValueError(f"{name}: final_block='decoder_block' links decoder block 1 with P1, "
                         f"which must be at stride 2; got strides {strides}.")
    plain_blocks = decoder_bias or bn_epsilon != 1e-3
    stride = max(strides[k] for k in levels)
    x = pad_input(inputs, stride, name)
    feats = (encoder.model if smp_layout else _with_stem_pool(encoder.model))(x)
    y = feats["P5"]
    # decoder i+1 feeds the link at the input of encoder block i+1 = output of block i
    links = [("decoder4", "P4"), ("decoder3", "P3"), ("decoder2", "P2"),
             ("decoder1", "P1" if smp_layout else "stem")]
    current = strides["P5"]
    for block, skip_key in links:
        target = strides.get(skip_key, 4) if skip_key != "stem" else 4
        filters = int(feats[skip_key].shape[-1]) if skip_key in feats else int(y.shape[-1])
        if plain_blocks:
            y = _decoder_block(y, filters, current // target, decoder_kernel, upsampling,
                               decoder_bias, bn_epsilon, block)
        else:
            y = LinkNetDecoderBlock(filters, strides=current // target,
                                    kernel_size=decoder_kernel, upsampling=upsampling,
                                    name=block)(y)
        if skip_key in feats:
            y = layers.Add(name=f"{block}_link")([y, feats[skip_key]])
        current = target
    final = max(int(y.shape[-1]) // 2, 1)
    if smp_layout:
        if plain_blocks:
            y = _decoder_block(y, final, current, decoder_kernel, upsampling, decoder_bias,
                               bn_epsilon, "decoder0")
        else:
            y = LinkNetDecoderBlock(final, strides=current, kernel_size=decoder_kernel,
                                    upsampling=upsampling, name="decoder0")(y)
        y = Conv2D(num_classes, 1, dtype=logits_dtype(), name="logits_conv")(y)
        y = crop_output(y, inputs, "crop_to_input")
        outputs = layers.Activation("linear", dtype=logits_dtype(), name="logits")(y)
        return finish(inputs, outputs, name, output_stride=stride)
    if upsampling == "transpose":
        y = Conv2DTranspose(final, 3, strides=2, padding="same", use_bias=False,
                                   name="final_up1")(y)
    else:
        y = interpolate(y, 2, upsampling, "final_up1_resize")
        y = Conv2D(final, 3, padding="same", use_bias=False, name="final_up1")(y)
    y = BatchNormalization(epsilon=bn_epsilon, name="final_up1_bn")(y)
    y = layers.Activation("relu", name="final_up1_relu")(y)
    y = Conv2D(final, 3, padding="same", use_bias=False, name="final_conv")(y)
    y = BatchNormalization(epsilon=bn_epsilon, name="final_conv_bn")(y)
    y = layers.Activation("relu", name="final_conv_relu")(y)
    if upsampling == "transpose":
        y = Conv2DTranspose(num_classes, 2, strides=2, dtype=logits_dtype(),
                                   name="logits_up")(y)
    else:
        y = Conv2D(num_classes, 1, dtype=logits_dtype(), name="logits_up")(y)
        y = interpolate(y, 2, upsampling, "logits_up_resize", dtype=logits_dtype())
    y = crop_output(y, inputs, "crop_to_input")
    outputs = layers.Activation("linear", dtype=logits_dtype(), name="logits")(y)
    return finish(inputs, outputs, name, output_stride=stride)

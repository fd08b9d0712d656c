"""LinkNet (Chaurasia & Culurciello 2017, "LinkNet: Exploiting Encoder Representations
for Efficient Semantic Segmentation", VCIP).
"""

import keras
from keras import layers

from keras_seg.applications._base import begin, crop_output, finish, pad_input, resolve_encoder
from keras_seg.applications._upsampling import INTERPOLATIONS, check_upsampling, interpolate
from keras_seg.layers import LinkNetDecoderBlock
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


def LinkNet(num_classes, input_shape=(None, None, 3), backbone="resnet18",
            backbone_options=None, upsampling="transpose", name="linknet"):
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
        name: model name.

    Returns:
        A functional ``keras.Model``: ``(batch, H, W, C)`` -> float32 logits
        ``(batch, H, W, num_classes)``.
    """
    input_shape, inputs = begin(name, num_classes, input_shape)
    check_upsampling(name, upsampling, ("transpose",) + INTERPOLATIONS, why=_NO_UNPOOL)
    levels = ("P2", "P3", "P4", "P5")
    encoder = resolve_encoder(name, backbone, backbone_options, input_shape=input_shape,
                              levels={k: "the input of a decoder block" for k in levels})
    strides = encoder.strides
    if strides["P2"] != 4:
        raise ValueError(f"{name}: the backbone must return P2 at stride 4 (the first encoder "
                         f"block); got strides {strides}.")
    stride = max(strides[k] for k in levels)
    x = pad_input(inputs, stride, name)
    feats = _with_stem_pool(encoder.model)(x)
    y = feats["P5"]
    # decoder i+1 feeds the link at the input of encoder block i+1 = output of block i
    links = [("decoder4", "P4"), ("decoder3", "P3"), ("decoder2", "P2"), ("decoder1", "stem")]
    current = strides["P5"]
    for block, skip_key in links:
        target = strides.get(skip_key, 4) if skip_key != "stem" else 4
        filters = int(feats[skip_key].shape[-1]) if skip_key in feats else int(y.shape[-1])
        y = LinkNetDecoderBlock(filters, strides=current // target, upsampling=upsampling,
                                name=block)(y)
        if skip_key in feats:
            y = layers.Add(name=f"{block}_link")([y, feats[skip_key]])
        current = target
    final = max(int(y.shape[-1]) // 2, 1)
    if upsampling == "transpose":
        y = layers.Conv2DTranspose(final, 3, strides=2, padding="same", use_bias=False,
                                   name="final_up1")(y)
    else:
        y = interpolate(y, 2, upsampling, "final_up1_resize")
        y = layers.Conv2D(final, 3, padding="same", use_bias=False, name="final_up1")(y)
    y = layers.BatchNormalization(name="final_up1_bn")(y)
    y = layers.Activation("relu", name="final_up1_relu")(y)
    y = layers.Conv2D(final, 3, padding="same", use_bias=False, name="final_conv")(y)
    y = layers.BatchNormalization(name="final_conv_bn")(y)
    y = layers.Activation("relu", name="final_conv_relu")(y)
    if upsampling == "transpose":
        y = layers.Conv2DTranspose(num_classes, 2, strides=2, dtype=logits_dtype(),
                                   name="logits_up")(y)
    else:
        y = layers.Conv2D(num_classes, 1, dtype=logits_dtype(), name="logits_up")(y)
        y = interpolate(y, 2, upsampling, "logits_up_resize", dtype=logits_dtype())
    y = crop_output(y, inputs, "crop_to_input")
    outputs = layers.Activation("linear", dtype=logits_dtype(), name="logits")(y)
    return finish(inputs, outputs, name, output_stride=stride)

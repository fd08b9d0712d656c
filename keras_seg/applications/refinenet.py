"""RefineNet (Lin, Milan, Shen & Reid 2017, "RefineNet: Multi-Path Refinement
Networks for High-Resolution Semantic Segmentation", CVPR).
"""

from keras import initializers

from keras_seg import validation
from keras_seg.applications._base import begin, finish, pad_input, resolve_encoder
from keras_seg.applications._common import logits_head
from keras_seg.layers import (
    ChainedResidualPooling,
    CropToReference,
    MultiResolutionFusion,
    ResidualConvUnit,
    ResizeLike,
)
from keras_seg.layers.atrous import Conv2D
from keras_seg.model_base import logits_dtype

_LEVELS = ("P5", "P4", "P3", "P2")  # res5 .. res2, RefineNet-4 .. RefineNet-1


def _rcu(name):
    # residual branch zero-initialized: every RCU starts as the identity
    return ResidualConvUnit(residual_initializer="zeros", name=name)


def _refine_block(paths, filters, crp_blocks, name):
    """One RefineNet block: 2 RCUs per path, fusion, chained pooling, output RCU."""
    adapted = []
    for i, x in enumerate(paths):
        for r in range(2):
            x = _rcu(f"{name}_path{i + 1}_rcu{r + 1}")(x)
        adapted.append(x)
    if len(adapted) > 1:
        # variance-preserving fusion: each path's conv has variance 1 / (n * fan_in)
        init = initializers.VarianceScaling(1.0 / len(adapted), "fan_in", "truncated_normal")
        x = MultiResolutionFusion(filters, kernel_initializer=init, name=f"{name}_mrf")(adapted)
    else:  # a single path goes through the fusion unchanged (RefineNet-4)
        x = adapted[0]
    x = ChainedResidualPooling(crp_blocks, kernel_initializer="zeros", name=f"{name}_crp")(x)
    return _rcu(f"{name}_out_rcu")(x)


def RefineNet(
    num_classes,
    input_shape=(None, None, 3),
    backbone="resnet101",
    backbone_options=None,
    filters=(512, 256, 256, 256),
    crp_blocks=2,
    name="refinenet",
):
    """4-cascaded RefineNet (Lin et al. 2017), on ResNet-101 by default.

    The four ResNet stage outputs res5, res4, res3, res2 (pyramid levels P5..P2,
    strides 32, 16, 8, 4) feed RefineNet-4..RefineNet-1. Each level is first
    adapted to its path width by a 3x3 convolution without bias (512 for
    RefineNet-4, 256 for the others, as the paper; the authors' code does this
    dimension reduction with a 3x3 conv). RefineNet-4 takes res5 alone;
    RefineNet-k (k < 4) takes the output of RefineNet-(k+1) and res(k+1). Each
    block: two Residual Conv Units per input path, Multi-Resolution Fusion (3x3
    conv per path to the block width, bilinear upsampling to the largest
    input, sum), Chained Residual Pooling (``crp_blocks`` blocks of 5x5 max
    pool + 3x3 conv) and one output RCU. Head: two RCUs and a 1x1 convolution
    to the classes at 1/4 resolution, upsampled bilinearly to the input.

    Initialization: the decoder has no normalization, and with He-normal
    kernels everywhere its activations grow about 5x per block (logits of
    standard deviation ~700 at init), which diverges under SGD. The paper does
    not specify the initialization of the new layers; here the second
    convolution of every RCU and the convolutions of every CRP are
    zero-initialized (each residual unit starts as the identity, as in Goyal
    et al. 2017's zero-init residuals), each of the ``n`` fusion convolutions
    of an MRF has variance ``1 / (n * fan_in)`` (the sum keeps the scale); the
    adaptation convolutions are He-normal and the classifier Glorot-uniform.

    Args:
        num_classes: number of output channels (logits).
        input_shape: ``(H, W, C)``; H and W may be None (any size; the input is
            padded to the backbone's stride internally and the output cropped back).
            Images are float32 in [0, 1] (uint8 divided by 255), as keras-seg's training pipeline
            and :func:`keras_seg.inference.predict` feed them; the model does not rescale its input.
        backbone: a backbone name (default ``"resnet101"``, the paper's) or a
            pyramid / keras.applications model (see :func:`keras_seg.backbones.get`);
            it must provide P2..P5.
        backbone_options: dict of options for a named backbone (``weights``,
            ``width_multiplier``, ``output_stride``...).
        filters: path widths of RefineNet-4, -3, -2, -1 (512, 256, 256, 256).
        crp_blocks: pooling blocks in each Chained Residual Pooling (2, Fig. 2).
        name: model name.

    Returns:
        A functional ``keras.Model``: ``(batch, H, W, C)`` -> float32 logits
        ``(batch, H, W, num_classes)``.
    """
    input_shape, inputs = begin(name, num_classes, input_shape)
    filters = validation.positive_int_tuple(
        name, "filters", filters, "(512, 256, 256, 256), the widths of RefineNet-4 to -1",
        length=4)
    validation.positive_int(name, "crp_blocks", crp_blocks)
    encoder = resolve_encoder(
        name, backbone, backbone_options, input_shape=input_shape,
        levels={k: "an input of the RefineNet cascade (res2..res5)" for k in _LEVELS})
    stride = max(encoder.strides[k] for k in _LEVELS)
    x = pad_input(inputs, stride, name)
    feats = encoder.model(x)
    previous = None
    for i, (level, width) in enumerate(zip(_LEVELS, filters, strict=True)):
        block = f"refinenet{4 - i}"
        adapted = Conv2D(width, 3, padding="same", use_bias=False,
                                kernel_initializer="he_normal", name=f"{block}_adapt")(feats[level])
        paths = [adapted] if previous is None else [previous, adapted]
        previous = _refine_block(paths, width, crp_blocks, block)
    y = previous
    for r in range(2):
        y = _rcu(f"head_rcu{r + 1}")(y)
    y = logits_head(y, num_classes, name="head_logits")
    y = ResizeLike("bilinear", dtype=logits_dtype(), name="upsample_to_input")([y, x])
    outputs = CropToReference("top_left", dtype=logits_dtype(), name="logits")([y, inputs])
    return finish(inputs, outputs, name, output_stride=stride)

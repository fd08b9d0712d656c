"""ENet (Paszke, Chaurasia, Kim & Culurciello 2016, "ENet: A Deep Neural Network
Architecture for Real-Time Semantic Segmentation", arXiv:1606.02147).
"""


from keras_seg.applications._base import begin, crop_output, finish, pad_input, refuse_backbone
from keras_seg.applications._common import as_float32
from keras_seg.layers import ENetBottleneck, ENetInitialBlock
from keras_seg.layers.atrous import Conv2DTranspose
from keras_seg.model_base import logits_dtype

# stages 2 and 3 after their first module: (kind, dilation)
_STAGE_2_3 = (("regular", 1), ("dilated", 2), ("asymmetric", 1), ("dilated", 4),
              ("regular", 1), ("dilated", 8), ("asymmetric", 1), ("dilated", 16))


def ENet(num_classes, input_shape=(None, None, 3), filters=(16, 64, 128),
         encoder_blocks=(4, 8, 8), name="enet", backbone=None):
    """ENet (Paszke et al. 2016), the paper's Table 1.

    - initial: 3x3 stride-2 conv (13 filters) concatenated with a 2x2 max pooling
      of the input = 16 channels (:class:`keras_seg.layers.ENetInitialBlock`);
    - stage 1: bottleneck 1.0 downsampling to 64 (keeps its pooling indices),
      1.1-1.4 regular (spatial dropout 0.01);
    - stage 2: 2.0 downsampling to 128, then regular, dilated 2, asymmetric 5,
      dilated 4, regular, dilated 8, asymmetric 5, dilated 16 (dropout 0.1);
    - stage 3: stage 2 without 2.0;
    - stage 4 (ReLU): 4.0 upsampling to 64 (max unpooling with the indices of 2.0),
      4.1, 4.2 regular; stage 5 (ReLU): 5.0 upsampling to 16 (indices of 1.0), 5.1;
    - fullconv: 2x2 stride-2 transposed conv to ``num_classes``.

    Bottlenecks (:class:`keras_seg.layers.ENetBottleneck`) project to a quarter
    of their output width, have no biases, BatchNorm and PReLU (one slope per
    channel) in the encoder, ReLU in the decoder. 0.37M parameters (paper). The
    input is padded to a multiple of 8 and the logits cropped back (any size).

    Args:
        num_classes: number of output classes (width of the final transposed conv).
        input_shape: ``(H, W, C)``; H and W may be None (any size); C < filters[0].
            Images are float32 in [0, 1] (uint8 divided by 255), as keras-seg's training pipeline
            and :func:`keras_seg.inference.predict` feed them; the model does not rescale its input.
        filters: widths of the initial block, stage 1 and stages 2-3
            (``(16, 64, 128)`` in the paper); the decoder mirrors them.
        encoder_blocks: how many modules follow the downsampling bottleneck in
            stage 1 (regular), stage 2 and stage 3 (taken in the table's order,
            regular, dilated 2, asymmetric 5, ..., repeated if longer):
            ``(4, 8, 8)`` in the paper; smaller values give a shallower ENet.
        name: model name.
        backbone: not an option: ENet's encoder is part of the architecture (its
            bottlenecks keep the pooling indices the decoder unpools with); any value
            other than None raises a ValueError.

    Returns:
        A :class:`keras_seg.SegmentationModel`: ``(batch, H, W, C)`` -> float32 logits
        ``(batch, H, W, num_classes)``; output stride 8.
    """
    refuse_backbone(name, backbone, "its encoder bottlenecks keep the pooling indices that "
                    "the decoder unpools with (set its size with filters= / encoder_blocks=)")
    input_shape, inputs = begin(name, num_classes, input_shape)
    filters = tuple(filters)
    if len(filters) != 3 or any(not isinstance(f, int) or f < 4 for f in filters):
        raise ValueError(f"{name}: filters must be 3 ints >= 4 (initial, stage 1, stages 2-3), "
                         f"got {filters!r}.")
    if filters[0] <= input_shape[-1]:
        raise ValueError(f"{name}: filters[0] ({filters[0]}) must exceed the input channels "
                         f"({input_shape[-1]}): the initial block concatenates a conv with "
                         "the max-pooled input.")
    blocks = tuple(encoder_blocks)
    if len(blocks) != 3 or any(not isinstance(b, int) or b < 0 for b in blocks):
        raise ValueError(f"{name}: encoder_blocks must be 3 ints >= 0 (modules after 1.0, "
                         f"after 2.0, in stage 3), got {encoder_blocks!r}.")
    f0, f1, f2 = filters
    stride = 8
    x = pad_input(inputs, stride, name)
    x = ENetInitialBlock(f0, name="initial")(x)
    before1 = x
    x, indices1 = ENetBottleneck(f1, "downsampling", dropout_rate=0.01, name="bottleneck1_0")(x)
    for i in range(1, blocks[0] + 1):
        x = ENetBottleneck(f1, "regular", dropout_rate=0.01, name=f"bottleneck1_{i}")(x)
    before2 = x
    x, indices2 = ENetBottleneck(f2, "downsampling", name="bottleneck2_0")(x)
    for stage, count in ((2, blocks[1]), (3, blocks[2])):
        for i in range(1, count + 1):
            kind, rate = _STAGE_2_3[(i - 1) % len(_STAGE_2_3)]
            x = ENetBottleneck(f2, kind, dilation_rate=rate, name=f"bottleneck{stage}_{i}")(x)
    x = ENetBottleneck(f1, "upsampling", activation="relu",
                       name="bottleneck4_0")([x, indices2, before2])
    for i in (1, 2):
        x = ENetBottleneck(f1, "regular", activation="relu", name=f"bottleneck4_{i}")(x)
    x = ENetBottleneck(f0, "upsampling", activation="relu",
                       name="bottleneck5_0")([x, indices1, before1])
    x = ENetBottleneck(f0, "regular", activation="relu", name="bottleneck5_1")(x)
    x = Conv2DTranspose(num_classes, 2, strides=2, dtype=logits_dtype(), name="fullconv")(x)
    x = crop_output(x, inputs, "crop_to_input")
    return finish(inputs, as_float32(x, "logits"), name, output_stride=stride)

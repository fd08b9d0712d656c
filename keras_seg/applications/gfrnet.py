"""G-FRNet (Islam, Rochan, Bruce & Wang 2017, "Gated Feedback Refinement Network for
Dense Image Labeling", CVPR).
"""

from keras import Model

from keras_seg import validation
from keras_seg.applications._base import begin, finish, pad_input, resolve_encoder
from keras_seg.layers import CropToReference, CropToStride, GatedRefinement, GateUnit
from keras_seg.layers.atrous import Conv2D
from keras_seg.model_base import logits_dtype

#: Deep-supervision outputs of :func:`GFRNet` and their strides w.r.t. the input.
#: ``"logits"`` is the main, full-resolution prediction (the fifth stage).
GFRNET_OUTPUT_STRIDES = {"logits": 1, "stage1": 16, "stage2": 8, "stage3": 4, "stage4": 2,
                         "coarse": 32}

#: The paper's loss weights: one cross-entropy per prediction (the coarse map and
#: every refinement stage), each against the label map resized to its size, all
#: weighted 1 (Islam et al. 2017, Sec. 3.4). For the losses' deep supervision.
GFRNET_LOSS_WEIGHTS = {key: 1.0 for key in GFRNET_OUTPUT_STRIDES}

_VGG_CONVS = (2, 2, 3, 3, 3)


def _vgg_encoder(input_shape, options, name):
    """VGG16 levels: the last conv of each block (strides 1..16) and pool5 (stride 32)."""
    # output stride 32: five refinement stages of x2
    bb = resolve_encoder(name, "vgg16", options, input_shape=input_shape, output_stride=32,
                         levels={"P5": "the input of the coarse label map"}).model
    names = {layer.name for layer in bb.layers}
    taps = {}
    for s, n in enumerate(_VGG_CONVS, start=1):
        tap = f"block{s}_relu{n}" if f"block{s}_relu{n}" in names else f"block{s}_conv{n}"
        taps[f"C{s}"] = bb.get_layer(tap).output
    taps["P5"] = bb.output["P5"]
    return Model(bb.input, taps, name=bb.name)


def GFRNet(
    num_classes,
    input_shape=(None, None, 3),
    deep_supervision=True,
    backbone="vgg16",
    backbone_options=None,
    gate_filters=None,
    name="gfrnet",
):
    """Gated Feedback Refinement Network, G-FRNet (Islam et al. 2017), VGG16 encoder.

    Encoder: the 13 convolutions of VGG16; its levels are the last convolution
    of each block (conv1_2, conv2_2, conv3_3, conv4_3, conv5_3 at strides 1, 2,
    4, 8, 16) and pool5 (stride 32). A 3x3 convolution of pool5 gives the coarse
    label map (stride 32). A :class:`~keras_seg.layers.GateUnit` between each
    pair of adjacent levels (each input 3x3 conv + BN + ReLU, the deeper one
    upsampled x2, multiplied) feeds a
    :class:`~keras_seg.layers.GatedRefinement` unit that refines the previous
    label map at the shallower level's resolution: five refinement stages,
    stride 32 -> 16 -> 8 -> 4 -> 2 -> 1. The label-map path (coarse conv and
    refinement units) runs in float32 under mixed precision. The input is padded
    to a multiple of 32 and every output cropped back.

    Deep supervision (the paper trains with a loss at every stage, all weighted
    1, see :data:`GFRNET_LOSS_WEIGHTS`): with ``deep_supervision=True`` (default,
    the paper's training model) the model returns a dict of float32 logits, the
    main output first; for an ``H x W`` input:

    - ``"logits"``: fifth stage, ``(batch, H, W, num_classes)``;
    - ``"stage1"`` .. ``"stage4"``: stages 1-4 at strides 16, 8, 4, 2,
      ``(batch, ceil(H / s), ceil(W / s), num_classes)``;
    - ``"coarse"``: the coarse map, stride 32, same rule.

    :func:`keras_seg.inference_model` keeps ``"logits"`` only. With
    ``deep_supervision=False`` the model returns the ``"logits"`` tensor alone.
    With deep supervision the model is a
    :class:`keras_seg.model_base.SegmentationModel` storing those weights:
    ``model.fit(images, masks)`` trains every stage on the one label map (the
    keras-seg losses resize it to each stage by nearest neighbour).

    Args:
        num_classes: number of classes (channels of every label map).
        input_shape: ``(H, W, C)``; H and W may be None (any size).
            Images are float32 in [0, 1] (uint8 divided by 255), as keras-seg's training pipeline
            and :func:`keras_seg.inference.predict` feed them; the model does not rescale its input.
        deep_supervision: return every stage's prediction (see above).
        backbone: ``"vgg16"`` (the paper's encoder; the only one supported, since
            G-FRNet taps the stride-1 conv1_2 features).
        backbone_options: options of :func:`keras_seg.backbones.vgg16`
            (``weights``, ``batch_norm``, ``width_multiplier``).
        gate_filters: widths of the five gate units, stage 1 first. Default None:
            the shallower input's width (512, 512, 256, 128, 64 for VGG16).
        name: model name.

    Returns:
        A functional ``keras.Model``: ``(batch, H, W, C)`` -> the dict above, or
        float32 logits ``(batch, H, W, num_classes)``.
    """
    input_shape, inputs = begin(name, num_classes, input_shape)
    if not isinstance(backbone, str) or backbone.lower() != "vgg16":
        raise ValueError(f"{name}: backbone must be 'vgg16' (G-FRNet gates the stride-1 to "
                         f"stride-32 VGG16 levels), got {backbone!r}.")
    encoder = _vgg_encoder(input_shape, backbone_options, name)
    levels = [f"C{s}" for s in range(1, 6)] + ["P5"]
    widths = [encoder.output[k].shape[-1] for k in levels]
    if gate_filters is None:
        gate_filters = tuple(reversed(widths[:5]))
    gate_filters = validation.positive_int_tuple(name, "gate_filters", gate_filters,
                                                 "(512, 512, 256, 128, 64), stage 1 first",
                                                 length=5)
    x = pad_input(inputs, 32, name)
    feats = encoder(x)
    label_map = Conv2D(num_classes, 3, padding="same", dtype=logits_dtype(),
                              kernel_initializer="he_normal", name="coarse_conv")(feats["P5"])
    outputs = {"coarse": CropToStride(32, dtype=logits_dtype(), name="coarse")([label_map, inputs])}
    for stage in range(1, 6):
        shallow, deep = levels[5 - stage], levels[6 - stage]
        gated = GateUnit(gate_filters[stage - 1], name=f"gate{stage}")([feats[shallow],
                                                                         feats[deep]])
        label_map = GatedRefinement(num_classes, dtype=logits_dtype(),
                                    name=f"refine{stage}")([gated, label_map])
        if stage < 5:
            stride = 2 ** (5 - stage)
            outputs[f"stage{stage}"] = CropToStride(stride, dtype=logits_dtype(),
                                                    name=f"stage{stage}")([label_map, inputs])
    logits = CropToReference("top_left", dtype=logits_dtype(), name="logits")([label_map, inputs])
    if not deep_supervision:
        return finish(inputs, logits, name, output_stride=32)
    ordered = {"logits": logits}
    ordered.update({f"stage{k}": outputs[f"stage{k}"] for k in range(1, 5)})
    ordered["coarse"] = outputs["coarse"]
    return finish(inputs, ordered, name, output_stride=32, loss_weights=GFRNET_LOSS_WEIGHTS)

"""DANet (Fu, Liu, Tian, Li, Bao, Fang & Lu 2019, "Dual Attention Network for Scene
Segmentation", CVPR)."""

from keras import layers

from keras_seg import validation
from keras_seg.applications._base import (
    begin,
    finish,
    pad_input,
    resolve_encoder,
    upsample_to_input,
)
from keras_seg.applications._common import conv_bn_relu, logits_head
from keras_seg.layers import ChannelAttention, PositionAttention
from keras_seg.model_base import MAIN_OUTPUT

PAM_OUTPUT = "pam"
CAM_OUTPUT = "cam"


def danet_loss_weights():
    """Loss weights of the outputs of ``DANet(aux=True)``: ``{"logits": 1.0, "pam": 1.0,
    "cam": 1.0}`` (the authors' code sums the three cross-entropies unweighted).

    Usable as ``model.compile(loss=..., loss_weights=danet_loss_weights())``.
    """
    return {MAIN_OUTPUT: 1.0, PAM_OUTPUT: 1.0, CAM_OUTPUT: 1.0}


def DANet(
    num_classes=21,
    input_shape=(None, None, 3),
    backbone="resnet101",
    backbone_options=None,
    output_stride=8,
    multi_grid=None,
    filters=512,
    reduction=8,
    channel_energy="paper",
    dropout=0.1,
    aux=False,
    name="danet",
):
    """DANet, the dual attention network (Fu et al. 2019).

    A dilated ResNet (ResNet-101 by default, the paper's main model; ResNet-50
    in its ablations) at output stride 8 gives ``X`` (2048 channels). Two
    parallel heads:

    - position branch: 3x3 conv ``filters`` (512 = 2048 / 4) + BN + ReLU,
      :class:`keras_seg.layers.PositionAttention` (query / key 1x1 convs to
      512 / ``reduction`` = 64, value 1x1 conv 512, softmax over all ``H W``
      positions, ``gamma`` initialised to 0), 3x3 conv 512 + BN + ReLU;
    - channel branch: 3x3 conv 512 + BN + ReLU,
      :class:`keras_seg.layers.ChannelAttention` (``C x C`` attention,
      ``beta`` initialised to 0), 3x3 conv 512 + BN + ReLU.

    The two are summed, then dropout 0.1 and a 1x1 conv to the classes; the
    logits are upsampled x8 bilinearly to the input. The paper's best
    Cityscapes model also uses multi-grid in the last stage (``multi_grid=(1,
    2, 4)``); the base model (the default) does not.

    Memory: the position attention map is ``(H/8 * W/8)^2`` per image, i.e.
    quadratic in the image area: 4096^2 entries = 64 MiB in float32 at 512x512
    (1 GiB at 1024x1024), plus the energies and, in training, their gradients.
    Crop or tile large images (see the inference tools).

    With ``aux=True`` each branch also gets its own classifier (dropout 0.1 +
    1x1 conv), as the paper's auxiliary outputs; the model then returns a dict
    ``{"logits": sum-branch logits, "pam": position-branch logits, "cam":
    channel-branch logits}``, all float32 ``(batch, H, W, num_classes)``, as a
    :class:`keras_seg.model_base.SegmentationModel` that fits on one label map
    with the three losses weighted equally, as the authors' code does
    (:func:`danet_loss_weights`); :func:`keras_seg.inference_model` keeps
    ``"logits"`` only.

    Args:
        num_classes: number of classes (21 for PASCAL VOC; 19 for Cityscapes).
        input_shape: ``(H, W, C)``; H and W may be None.
            Images are float32 in [0, 1] (uint8 divided by 255), as keras-seg's training pipeline
            and :func:`keras_seg.inference.predict` feed them; the model does not rescale its input.
        backbone: backbone name (``"resnet101"``, ``"resnet50"``...) or a pyramid
            ``keras.Model`` (its ``"P5"`` is used).
        backbone_options: options of a named backbone (``width_multiplier``,
            ``weights``...).
        output_stride: 8 (paper) or 16. A named backbone is dilated to it; a
            passed-in model must already have it (ValueError otherwise).
        multi_grid: unit-rate multipliers of the last stage of a named
            backbone, e.g. ``(1, 2, 4)``; None (the base model).
        filters: width of the reduction convs and of the attention modules
            (512).
        reduction: query / key channel reduction of the position attention (8).
        channel_energy: ``"paper"`` (softmax of the channel energy, as the paper) or
            ``"max_minus"`` (softmax of max - energy, the authors' code); see
            :class:`keras_seg.layers.ChannelAttention`.
        dropout: dropout before each classifier (0.1).
        aux: add the per-branch classifiers and return a dict of outputs.
        name: model name.

    Returns:
        A functional ``keras.Model``: ``(batch, H, W, C)`` -> float32 logits
        ``(batch, H, W, num_classes)``, or with ``aux=True`` the dict above.
    """
    input_shape, inputs = begin(name, num_classes, input_shape)
    validation.output_stride(name, output_stride, (8, 16))
    validation.positive_int(name, "filters", filters)
    encoder = resolve_encoder(
        name, backbone, backbone_options, input_shape=input_shape,
        levels={"P5": "the input of the attention heads"}, output_stride=output_stride,
        named_options={"multi_grid": (validation.multi_grid(name, multi_grid), None)})
    padded = pad_input(inputs, encoder.stride, name)
    x = encoder.model(padded)["P5"]

    p = conv_bn_relu(x, filters, 3, "pam_reduce")
    p = PositionAttention(reduction=reduction, name="position_attention")(p)
    p = conv_bn_relu(p, filters, 3, "pam_fuse")
    c = conv_bn_relu(x, filters, 3, "cam_reduce")
    c = ChannelAttention(energy=channel_energy, name="channel_attention")(c)
    c = conv_bn_relu(c, filters, 3, "cam_fuse")

    y = layers.Add(name="attention_sum")([p, c])
    y = layers.Dropout(dropout, name="head_dropout")(y)
    y = logits_head(y, num_classes, name="classifier")
    logits = upsample_to_input(y, padded, inputs, name=MAIN_OUTPUT)
    if not aux:
        return finish(inputs, logits, name, output_stride=encoder.stride)
    outputs = {MAIN_OUTPUT: logits}
    for key, branch in ((PAM_OUTPUT, p), (CAM_OUTPUT, c)):
        z = layers.Dropout(dropout, name=f"{key}_dropout")(branch)
        z = logits_head(z, num_classes, name=f"{key}_classifier")
        outputs[key] = upsample_to_input(z, padded, inputs, name=key)
    return finish(inputs, outputs, name, output_stride=encoder.stride,
                  loss_weights=danet_loss_weights())

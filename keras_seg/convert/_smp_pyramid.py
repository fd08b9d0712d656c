"""segmentation_models.pytorch 0.6: ``DeepLabV3``, ``DeepLabV3Plus`` and ``PSPNet`` on the
ResNet-18/34/50/101 encoders (``"smp/<Model>-<encoder>"``).

SMP's ResNet encoders are torchvision's ResNets (``encoder.*``, mapped by
:func:`keras_seg.convert.resnet.resnet_mapping`); a dilated stage has every conv dilated
(``replace_strides_with_dilation``: keras-seg's ``dilate_first_unit=True``). Every
resize is bilinear with ``align_corners=True`` (``nn.Upsample`` /
``UpsamplingBilinear2d``; the image-pooling branch's ``align_corners=False`` resize of a
1x1 map is a broadcast either way). SMP refuses inputs whose sides are not multiples of
its encoder's output stride (``SegmentationModel.check_input_shape``): 8 for DeepLabV3
(output stride 8) and PSPNet (``encoder_depth=3``: the stride-8 ``layer2``), 16 for
DeepLabV3Plus (output stride 16); those are the entries' ``input_multiple``.

The defaults of SMP 0.6 that these entries reproduce, as keras-seg builder options:

- ``DeepLabV3``: encoder output stride 8, ASPP rates (12, 24, 36), plain (not separable)
  ASPP with dropout 0.5 after the projection, a 3x3 conv + BN + ReLU after the ASPP
  (``decoder.conv`` / ``decoder.bn``), a 1x1 head conv with bias, x8 upsampling.
- ``DeepLabV3Plus``: encoder output stride 16, ASPP rates (12, 24, 36) (not halved at
  16), separable ASPP branches whose ``SeparableConv2d`` is depthwise + pointwise with
  nothing between, dropout 0.5 after the projection, a separable 3x3 conv + BN + ReLU
  after the ASPP, x4 upsampling to the stride-4 ``layer1`` output (``features[2]``,
  keras-seg's ``"P2"``) projected by a 1x1 conv 48 + BN + ReLU, concatenated as
  ``[aspp, low-level]``, ONE separable 3x3 conv 256 + BN + ReLU, a 1x1 head conv with
  bias, x4 upsampling.
- ``PSPNet``: ``encoder_depth=3`` (the pyramid pooling reads ``layer2``, stride 8, no
  dilation), bins (1, 2, 3, 6) with PyTorch's adaptive-pooling bin edges, a 1x1 conv
  to C/4 + BN + ReLU per bin but no BN (a conv bias instead) on the 1x1 bin,
  concatenated as ``[bins..., input]``, a 1x1 fusion conv 512 + BN + ReLU,
  ``Dropout2d(0.2)``, a 3x3 head conv with bias, x8 upsampling.

All BatchNorms have PyTorch's epsilon 1e-5. SMP's optional classification head
(``aux_params``: ``classification_head.*``) is not converted.
"""

import keras
import numpy as np

from keras_seg.backbones.resnet import TORCH_STYLE
from keras_seg.convert import _torch
from keras_seg.convert._engine import Custom, Separable
from keras_seg.convert._registry import TorchArchitecture, register
from keras_seg.convert._torchvision import aspp_mapping
from keras_seg.convert.resnet import VARIANTS, resnet_mapping

#: SMP 0.6's ``decoder_atrous_rates`` default (DeepLabV3 and DeepLabV3Plus)
SMP_RATES = (12, 24, 36)
_HEAD = "segmentation_head.0"
#: PSPNet's ``encoder_depth=3`` never runs ``layer3`` / ``layer4``, but SMP builds the
#: whole ResNet, so its checkpoints hold their (unused) weights
_PSP_UNUSED = ("encoder.layer3.", "encoder.layer4.")


def infer_smp(state):
    """``{"num_classes"}`` from an SMP checkpoint (its ``segmentation_head.0`` conv)."""
    key = f"{_HEAD}.weight"
    if key not in state:
        raise ValueError(f"the checkpoint has no {key!r}: it is not a segmentation_models."
                         f"pytorch model (its first keys: {list(state)[:4]}).")
    extra = sorted(k for k in state if k.startswith("classification_head."))
    if extra:
        raise ValueError(
            f"the checkpoint has a classification head ({extra[0]!r}...: SMP's aux_params); "
            "keras-seg does not convert that head. Drop its classification_head.* keys "
            "(the segmentation model does not use them) and convert again.")
    return {"num_classes": int(state[key].shape[0])}


def _separable(prefix):
    """SMP's ``SeparableConv2d`` at ``prefix`` (``.0`` depthwise, ``.1`` pointwise)."""
    return Separable(f"{prefix}.0", f"{prefix}.1")


def smp_aspp_mapping(prefix, rates, separable):
    """SMP's ``ASPP`` at ``prefix`` -> keras-seg's :class:`ASPP` layers: torchvision's
    layout (:func:`keras_seg.convert._torchvision.aspp_mapping`); a separable branch
    ``convs.{i}`` is ``SeparableConv2d`` (``.0``) + BN (``.1``), keras-seg's
    ``aspp_rate{r}_sepconv`` (``separable_bn_between=False``) + ``_bn``."""
    out = aspp_mapping(prefix, rates)
    if separable:
        for i, r in enumerate(rates):
            del out[f"aspp_rate{r}_conv"]
            out[f"aspp_rate{r}_sepconv"] = _separable(f"{prefix}convs.{i + 1}.0")
    return out


# === DeepLabV3 ===

def _deeplabv3_build(variant):
    def build(num_classes, input_shape=(None, None, 3)):
        from keras_seg.applications import DeepLabV3

        return DeepLabV3(num_classes, input_shape=input_shape, backbone=variant,
                         backbone_options=dict(TORCH_STYLE), output_stride=8,
                         multi_grid=None, atrous_rates=SMP_RATES, head_conv=True,
                         aspp_dropout=0.5, align_corners=True, bn_epsilon=1e-5,
                         name=f"smp_deeplabv3_{variant}")
    return build


def _deeplabv3_mapping(model):
    out = resnet_mapping(model, "encoder.")
    out.update(aspp_mapping("decoder.aspp.", SMP_RATES))
    out.update({"head_conv": "decoder.conv", "head_bn": "decoder.bn", "classifier": _HEAD})
    return out


# === DeepLabV3Plus ===

def _deeplabv3plus_build(variant):
    def build(num_classes, input_shape=(None, None, 3)):
        from keras_seg.applications import DeepLabV3Plus

        return DeepLabV3Plus(num_classes, input_shape=input_shape, backbone=variant,
                             backbone_options=dict(TORCH_STYLE), output_stride=16,
                             multi_grid=None, atrous_rates=SMP_RATES, separable=True,
                             separable_bn_between=False, post_aspp_conv=True,
                             decoder_convs=1, aspp_dropout=0.5, align_corners=True,
                             bn_epsilon=1e-5, name=f"smp_deeplabv3plus_{variant}")
    return build


def _deeplabv3plus_mapping(model):
    # decoder.aspp is Sequential(ASPP, SeparableConv2d, BatchNorm2d, ReLU)
    out = resnet_mapping(model, "encoder.")
    out.update(smp_aspp_mapping("decoder.aspp.0.", SMP_RATES, separable=True))
    out.update({"post_aspp_sepconv": _separable("decoder.aspp.1"),
                "post_aspp_bn": "decoder.aspp.2",
                "decoder_low_level_conv": "decoder.block1.0",
                "decoder_low_level_bn": "decoder.block1.1",
                "decoder_conv1_sepconv": _separable("decoder.block2.0"),
                "decoder_conv1_bn": "decoder.block2.1",
                "classifier": _HEAD})
    return out


# === PSPNet ===

_PSP_BINS = (1, 2, 3, 6)


def _pspnet_build(variant):
    def build(num_classes, input_shape=(None, None, 3)):
        from keras_seg.applications import PSPNet

        return PSPNet(num_classes, input_shape=input_shape, backbone=variant,
                      backbone_options=dict(TORCH_STYLE), bins=_PSP_BINS, filters=512,
                      dropout=0.2, spatial_dropout=True, encoder_depth=3, fusion_kernel=1,
                      head_kernel=3, single_bin_batchnorm=False, align_corners=True,
                      bn_epsilon=1e-5, name=f"smp_pspnet_{variant}")
    return build


def _fusion_kernel(pyramid_input_channels):
    """``decoder.conv.0`` -> ``head_conv``: SMP concatenates ``[bins..., input]``,
    keras-seg's :class:`PyramidPooling` ``[input, bins...]`` (the same channels in
    another order), so the kernel's input axis is rotated to keras-seg's order."""
    def convert(arrays):
        (weight,) = arrays
        kernel = np.transpose(weight, (2, 3, 1, 0))  # (O, I, kh, kw) -> (kh, kw, I, O)
        pooled = kernel.shape[2] - pyramid_input_channels
        return [np.concatenate([kernel[:, :, pooled:], kernel[:, :, :pooled]], axis=2)]
    return convert


def _find_layer(model, name):
    """The layer ``name`` of ``model`` or of a model nested in it."""
    for layer in model.layers:
        if layer.name == name:
            return layer
        if isinstance(layer, keras.Model):
            found = _find_layer(layer, name)
            if found is not None:
                return found
    return None


def _pspnet_mapping(model):
    out = resnet_mapping(model, "encoder.")
    pyramid = _find_layer(model, "pyramid_pooling")
    if pyramid is None:
        raise ValueError(f"the model {model.name!r} has no 'pyramid_pooling' layer; build it "
                         "with keras_seg.convert.from_torch (see the entry's keras_builder).")
    for i, b in enumerate(pyramid.bins):
        block = f"decoder.psp.blocks.{i}.pool.1"  # pool = Sequential(AdaptiveAvgPool2d, Conv2dReLU)
        out[f"ppm_bin{b}_conv"] = f"{block}.0"
        if b != 1 or pyramid.single_bin_batchnorm:
            out[f"ppm_bin{b}_bn"] = f"{block}.1"
    channels = int(pyramid.convs[0].kernel.shape[2])
    out["head_conv"] = Custom(("decoder.conv.0.weight",), _fusion_kernel(channels))
    out["head_bn"] = "decoder.conv.1"
    out["classifier"] = _HEAD
    return out


# === registration ===

def _torch_model(model_name, variant):
    def make(num_classes):
        smp = _torch.import_smp()
        return getattr(smp, model_name)(encoder_name=variant, encoder_weights=None,
                                        classes=num_classes)
    return make


def torch_outputs(module, x):
    """SMP's mask output (no ``aux_params``) as keras-seg's ``{"logits"}``."""
    return {"logits": module(x)}


_ENCODER = "backbone={v!r}, backbone_options=TORCH_STYLE"
_MODELS = {
    "DeepLabV3": dict(
        build=_deeplabv3_build, mapping=_deeplabv3_mapping, multiple=8, ignored=(),
        call=("DeepLabV3(" + _ENCODER + ", output_stride=8, multi_grid=None, "
              "atrous_rates=(12, 24, 36), head_conv=True, aspp_dropout=0.5, "
              "align_corners=True, bn_epsilon=1e-5)"),
        notes=("SMP's ResNet dilated to output stride 8 (every unit of layer3 / layer4 "
               "dilated), ASPP rates (12, 24, 36), a 3x3 conv + BN + ReLU after the ASPP, "
               "dropout 0.5, align_corners=True upsampling x8, BN epsilon 1e-5. Input sides "
               "must be multiples of 8 in SMP.")),
    "DeepLabV3Plus": dict(
        build=_deeplabv3plus_build, mapping=_deeplabv3plus_mapping, multiple=16, ignored=(),
        call=("DeepLabV3Plus(" + _ENCODER + ", output_stride=16, multi_grid=None, "
              "atrous_rates=(12, 24, 36), separable=True, separable_bn_between=False, "
              "post_aspp_conv=True, decoder_convs=1, aspp_dropout=0.5, align_corners=True, "
              "bn_epsilon=1e-5)"),
        notes=("SMP's ResNet at output stride 16 (layer4 dilated by 2), ASPP rates "
               "(12, 24, 36) at output stride 16, separable convs without BN between the "
               "depthwise and pointwise parts, a separable 3x3 conv after the ASPP, one "
               "separable decoder conv (the paper: two), dropout 0.5, align_corners=True "
               "upsampling (x4 twice), BN epsilon 1e-5. Input sides must be multiples of "
               "16 in SMP.")),
    "PSPNet": dict(
        build=_pspnet_build, mapping=_pspnet_mapping, multiple=8, ignored=_PSP_UNUSED,
        call=("PSPNet(" + _ENCODER + ", encoder_depth=3, bins=(1, 2, 3, 6), filters=512, "
              "fusion_kernel=1, head_kernel=3, dropout=0.2, spatial_dropout=True, "
              "single_bin_batchnorm=False, align_corners=True, bn_epsilon=1e-5)"),
        notes=("SMP's encoder_depth=3: the pyramid pooling reads layer2 (stride 8, no "
               "dilation); layer3 / layer4 are in SMP's checkpoints but never run, and are "
               "not loaded (encoder.layer3.*, encoder.layer4.*). No BN on the 1x1 bin (a "
               "conv bias instead), a 1x1 fusion conv (paper: 3x3) whose input channels are "
               "reordered from SMP's [bins..., input] concatenation, Dropout2d 0.2, a 3x3 "
               "head conv, align_corners=True upsampling x8, BN epsilon 1e-5. Input sides "
               "must be multiples of 8 in SMP.")),
}


for _model_name, _spec in _MODELS.items():
    for _variant in VARIANTS:
        register(TorchArchitecture(
            name=f"smp/{_model_name}-{_variant}", source="smp",
            keras_builder=_spec["call"].format(v=_variant),
            infer=infer_smp, build=_spec["build"](_variant), mapping=_spec["mapping"],
            torch_model=_torch_model(_model_name, _variant), torch_outputs=torch_outputs,
            input_multiple=_spec["multiple"], ignored=_spec["ignored"],
            reported=("segmentation_models.pytorch publishes ImageNet encoders, not trained "
                      f"{_model_name} models; convert your own checkpoint "
                      "(model.state_dict(), .pth or .safetensors)."),
            notes=_spec["notes"]))

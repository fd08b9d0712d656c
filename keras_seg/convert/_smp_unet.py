"""segmentation_models.pytorch 0.6: ``Unet`` and ``Linknet`` on the ResNet encoders.

SMP's encoders ``resnet18..101`` are torchvision's ResNets (``encoder.*``; the
``"P1"`` feature is the stem's ReLU output at stride 2, before the max pooling), so
the keras-seg backbone is the ResNet with ``TORCH_STYLE``. The decoders differ from
the papers in ways that are options of the keras-seg builders:

- ``Unet``: five decoder blocks (``decoder.blocks.{0..4}``), each a nearest x2
  upsampling **without** a projection conv, ``cat([upsampled, skip])`` with P4, P3,
  P2, P1 (none for the last block, at the input resolution), then two
  ``Conv2dReLU`` (3x3 conv without bias, BN, ReLU: ``conv1.0`` / ``conv1.1``,
  ``conv2.0`` / ``conv2.1``), widths 256-128-64-32-16; a 3x3 segmentation head with
  bias (``segmentation_head.0``). keras-seg: ``UNet(backbone=..., upsampling="nearest",
  interpolation_conv=False, head_kernel=3, bn_epsilon=1e-5)``, whose backbone decoder
  concatenates in the same ``[upsampled, skip]`` order (no channel permutation).
- ``Linknet``: five decoder blocks (``decoder.blocks.{0..4}.block.{0,1,2}``): 1x1 conv
  to in/4 + BN + ReLU, ``ConvTranspose2d(k=4, s=2, p=1)`` **with** bias + BN + ReLU,
  1x1 conv + BN + ReLU, then ``+ skip`` with P4, P3, P2, P1; the fifth block goes to
  32 channels at the input resolution without a skip; a 1x1 head with bias.
  keras-seg: ``LinkNet(backbone=..., decoder_kernel=4, decoder_bias=True,
  bn_epsilon=1e-5, final_block="decoder_block")``; SMP's block ``i`` is keras-seg's
  ``decoder{4 - i}``.

SMP's optional classification head (``aux_params``: ``classification_head.*``) is not
converted.
"""

from keras_seg.backbones.resnet import TORCH_STYLE
from keras_seg.convert import _torch
from keras_seg.convert._registry import TorchArchitecture, register
from keras_seg.convert.resnet import VARIANTS, resnet_mapping

_HEAD = "segmentation_head.0"
_BLOCKS = 5


def infer_classes(state):
    """``{"num_classes"}`` from an SMP ``Unet`` / ``Linknet`` checkpoint."""
    aux = sorted(k for k in state if k.startswith("classification_head."))
    if aux:
        raise ValueError(f"the checkpoint has SMP's classification head ({aux[:4]}, from "
                         "aux_params); keras_seg.convert does not convert the classification "
                         "head. Remove its classification_head.* keys to convert the "
                         "segmentation model alone.")
    key = f"{_HEAD}.weight"
    if key not in state:
        raise ValueError(f"the checkpoint has no {key!r}: it is not a segmentation_models."
                         f"pytorch model (its first keys: {list(state)[:4]}).")
    return {"num_classes": int(state[key].shape[0])}


def torch_outputs(module, x):
    """SMP's mask logits as keras-seg's ``{"logits"}``."""
    return {"logits": module(x)}


def _torch_model(cls_name, variant):
    def make(num_classes):
        cls = getattr(_torch.import_smp(), cls_name)
        return cls(encoder_name=variant, encoder_weights=None, classes=num_classes)
    return make


# --- Unet ---------------------------------------------------------------------------

def _unet_build(variant):
    def build(num_classes, input_shape=(None, None, 3)):
        from keras_seg.applications import UNet

        return UNet(num_classes, input_shape=input_shape, backbone=variant,
                    backbone_options=dict(TORCH_STYLE), upsampling="nearest",
                    interpolation_conv=False, head_kernel=3, bn_epsilon=1e-5,
                    name=f"smp_unet_{variant}")
    return build


def _unet_mapping(model):
    out = resnet_mapping(model, "encoder.")
    # keras-seg's decoder{i} concatenates [upsampled, skip] like SMP's block i - 1: the
    # first conv's input channels are in the same order, no permutation.
    for i in range(_BLOCKS):
        for conv in (1, 2):
            out[f"decoder{i + 1}_{conv}_conv"] = f"decoder.blocks.{i}.conv{conv}.0"
            out[f"decoder{i + 1}_{conv}_bn"] = f"decoder.blocks.{i}.conv{conv}.1"
    out["logits"] = _HEAD
    return out


# --- Linknet ------------------------------------------------------------------------

def _linknet_build(variant):
    def build(num_classes, input_shape=(None, None, 3)):
        from keras_seg.applications import LinkNet

        return LinkNet(num_classes, input_shape=input_shape, backbone=variant,
                       backbone_options=dict(TORCH_STYLE), decoder_kernel=4,
                       decoder_bias=True, bn_epsilon=1e-5, final_block="decoder_block",
                       name=f"smp_linknet_{variant}")
    return build


def _linknet_mapping(model):
    out = resnet_mapping(model, "encoder.")
    for i in range(_BLOCKS):
        ours, theirs = f"decoder{_BLOCKS - 1 - i}", f"decoder.blocks.{i}.block"
        for k, part in enumerate(("reduce", "up", "expand")):
            out[f"{ours}_{part}_conv"] = f"{theirs}.{k}.0"
            out[f"{ours}_{part}_bn"] = f"{theirs}.{k}.1"
    out["logits_conv"] = _HEAD
    return out


_SIZES = ("Inputs: multiples of 32 (SMP's Linknet refuses other sizes; its Unet resizes each "
          "stage to the skip's size, where keras-seg pads to 32 and crops back: the two agree "
          "at multiples of 32 only). ")
_ENCODER = ("Encoder: torchvision's ResNet (TORCH_STYLE; SMP's 'imagenet' encoder weights "
            "are torchvision's, see torchvision/<resnet>). SMP's classification head "
            "(aux_params, classification_head.*) is not converted.")

for _variant in VARIANTS:
    register(TorchArchitecture(
        name=f"smp/Unet-{_variant}", source="smp",
        keras_builder=(f"UNet(num_classes, backbone={_variant!r}, backbone_options=TORCH_STYLE, "
                       "upsampling='nearest', interpolation_conv=False, head_kernel=3, "
                       "bn_epsilon=1e-5)"),
        infer=infer_classes, build=_unet_build(_variant), mapping=_unet_mapping,
        torch_model=_torch_model("Unet", _variant), torch_outputs=torch_outputs,
        input_multiple=32,
        notes=("Decoder widths 256-128-64-32-16 on P5..P1 plus a last stage at the input "
               "resolution; nearest x2 upsampling without the 1x1 projection conv, "
               "concatenated [upsampled, skip]; 3x3 conv (no bias) + BN (epsilon 1e-5) + "
               "ReLU twice per stage; a 3x3 classifier with bias. " + _SIZES + _ENCODER)))
    register(TorchArchitecture(
        name=f"smp/Linknet-{_variant}", source="smp",
        keras_builder=(f"LinkNet(num_classes, backbone={_variant!r}, "
                       "backbone_options=TORCH_STYLE, decoder_kernel=4, decoder_bias=True, "
                       "bn_epsilon=1e-5, final_block='decoder_block')"),
        infer=infer_classes, build=_linknet_build(_variant), mapping=_linknet_mapping,
        torch_model=_torch_model("Linknet", _variant), torch_outputs=torch_outputs,
        input_multiple=32,
        notes=("Decoder blocks with a 4x4 stride-2 transposed conv (with bias, before BN "
               "epsilon 1e-5); decoder block 1 upsamples to stride 2 and links with P1 (the "
               "stem conv's output), a fifth block goes to 32 channels at the input "
               "resolution, then a 1x1 classifier (instead of the paper's full-conv / conv / "
               "full-conv final block). " + _SIZES + _ENCODER)))

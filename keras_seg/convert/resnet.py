"""torchvision / timm ImageNet ResNets as keras-seg pyramid backbones.

The PyTorch ResNets (torchvision's ``resnet18..101``, timm's ``resnet18..101``, and the
encoders of segmentation_models.pytorch, which are torchvision's) name their modules
``conv1``, ``bn1``, ``layer{1..4}.{unit}.conv{1,2,3}`` / ``bn{1,2,3}`` and
``layer{k}.0.downsample.{0,1}``; keras-seg's ResNet names them ``conv1_conv``,
``conv1_bn`` and ``conv{k+1}_block{unit+1}_{1,2,3}_conv`` / ``_bn``, ``_0_conv`` /
``_0_bn``. The layout differences are options of
:func:`keras_seg.backbones.resnet.build_resnet` (``TORCH_STYLE``).
"""

import re

from keras_seg.convert import _torch
from keras_seg.convert._engine import all_layers
from keras_seg.convert._registry import TorchArchitecture, register

VARIANTS = ("resnet18", "resnet34", "resnet50", "resnet101")
_BLOCK = re.compile(r"^conv(\d)_block(\d+)_(\d)_(conv|bn)$")

# torchvision's published ImageNet weights (torchvision.models.ResNet*_Weights.IMAGENET1K_V1)
_TV_URLS = {
    "resnet18": "https://download.pytorch.org/models/resnet18-f37072fd.pth",
    "resnet34": "https://download.pytorch.org/models/resnet34-b627a593.pth",
    "resnet50": "https://download.pytorch.org/models/resnet50-0676ba61.pth",
    "resnet101": "https://download.pytorch.org/models/resnet101-63fe2227.pth",
}
_TV_TOP1 = {"resnet18": 69.758, "resnet34": 73.314, "resnet50": 76.13, "resnet101": 77.374}


def resnet_mapping(model, prefix=""):
    """``{keras layer name: checkpoint prefix}`` for the ResNet layers of ``model``.

    Args:
        model: a keras-seg model holding a keras-seg ResNet (nested or not).
        prefix: the PyTorch prefix of the ResNet (``""`` for a bare torchvision /
            timm ResNet, ``"backbone."`` in torchvision's segmentation models,
            ``"encoder."`` in segmentation_models.pytorch).

    Returns:
        The mapping of every ``conv1_*`` / ``conv{k}_block{u}_*`` layer found.
    """
    out = {}
    for layer in all_layers(model):
        name = layer.name
        if not layer.weights:
            continue
        if name == "conv1_conv":
            out[name] = prefix + "conv1"
        elif name == "conv1_bn":
            out[name] = prefix + "bn1"
        else:
            m = _BLOCK.match(name)
            if m is None:
                continue
            stage, unit, index, kind = int(m[1]), int(m[2]), int(m[3]), m[4]
            block = f"{prefix}layer{stage - 1}.{unit - 1}."
            if index == 0:
                out[name] = block + ("downsample.0" if kind == "conv" else "downsample.1")
            else:
                out[name] = block + f"{kind}{index}"
    return out


def torch_resnet_features(module, x):
    """Run a torchvision / timm ResNet ``module`` on NCHW ``x``: ``{"P1".."P5"}``."""
    act = getattr(module, "relu", None) or module.act1
    y = act(module.bn1(module.conv1(x)))
    out = {"P1": y}
    y = module.maxpool(y)
    for k in range(1, 5):
        y = getattr(module, f"layer{k}")(y)
        out[f"P{k + 1}"] = y
    return out


def _build(variant):
    def build(input_shape=(None, None, 3), **_):
        from keras_seg.backbones.resnet import TORCH_STYLE, build_resnet

        return build_resnet(variant, input_shape=input_shape, **TORCH_STYLE)
    return build


def _torchvision_model(variant):
    def make(**_):
        return getattr(_torch.import_torchvision().models, variant)(weights=None)
    return make


def _timm_model(variant):
    def make(**_):
        return _torch.import_timm().create_model(variant, pretrained=False)
    return make


_NOTES = ("ResNet v1.5 (stride on the 3x3 conv), no conv biases, symmetric padding, BN "
          "epsilon 1e-5 (keras_seg.backbones.resnet.TORCH_STYLE). The ImageNet classifier "
          "(fc.weight, fc.bias) is not part of a pyramid backbone and is not loaded.")

for _variant in VARIANTS:
    _call = f"keras_seg.backbones.{_variant}(**TORCH_STYLE) or get({_variant!r}, weights=FILE)"
    register(TorchArchitecture(
        name=f"torchvision/{_variant}", source="torchvision", keras_builder=_call,
        infer=lambda state: {}, build=_build(_variant), mapping=resnet_mapping,
        torch_model=_torchvision_model(_variant), torch_outputs=torch_resnet_features,
        ignored=("fc.",), checkpoints={"IMAGENET1K_V1": _TV_URLS[_variant]},
        reported=f"ImageNet top-1 {_TV_TOP1[_variant]}% (torchvision, IMAGENET1K_V1)",
        notes=_NOTES))
    register(TorchArchitecture(
        name=f"timm/{_variant}", source="timm", keras_builder=_call,
        infer=lambda state: {}, build=_build(_variant), mapping=resnet_mapping,
        torch_model=_timm_model(_variant), torch_outputs=torch_resnet_features,
        ignored=("fc.",), reported="timm's ImageNet ResNets (checkpoints on the Hugging "
        "Face hub, e.g. timm/resnet50.a1_in1k: model.safetensors)", notes=_NOTES))

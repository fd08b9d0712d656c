"""torchvision's segmentation models: ``deeplabv3_resnet50/101`` and ``fcn_resnet50/101``.

torchvision builds both on a dilated ResNet at output stride 8
(``replace_stride_with_dilation=[False, True, True]``: the first unit of a dilated
stage keeps the previous rate), takes images of any size without padding, resizes
the logits to the input with ``align_corners=False``, and has an optional auxiliary
``FCNHead`` on ``layer3`` (stride 16). Its checkpoints name the ResNet ``backbone.*``,
the head ``classifier.*`` and the auxiliary head ``aux_classifier.*``.
"""

from keras_seg.backbones.resnet import TORCH_STYLE
from keras_seg.convert import _torch
from keras_seg.convert._registry import TorchArchitecture, register
from keras_seg.convert.resnet import resnet_mapping

#: backbone options of torchvision's dilated ResNets
TORCHVISION_DILATED = {**TORCH_STYLE, "dilate_first_unit": False}
_RATES = (12, 24, 36)
_URLS = {
    "deeplabv3_resnet50": "https://download.pytorch.org/models/deeplabv3_resnet50_coco-cd0a2569.pth",
    "deeplabv3_resnet101":
        "https://download.pytorch.org/models/deeplabv3_resnet101_coco-586e9e4e.pth",
    "fcn_resnet50": "https://download.pytorch.org/models/fcn_resnet50_coco-1167a1af.pth",
    "fcn_resnet101": "https://download.pytorch.org/models/fcn_resnet101_coco-7ecb50ca.pth",
}
# torchvision's reported figures for COCO_WITH_VOC_LABELS_V1 (COCO val2017, the 20 VOC classes)
_REPORTED = {
    "deeplabv3_resnet50": (66.4, 92.4),
    "deeplabv3_resnet101": (67.4, 92.4),
    "fcn_resnet50": (60.5, 91.4),
    "fcn_resnet101": (63.7, 91.9),
}


def infer_heads(state, head="classifier.4"):
    """``{"num_classes", "aux"}`` from a torchvision segmentation checkpoint."""
    key = f"{head}.weight"
    if key not in state:
        raise ValueError(f"the checkpoint has no {key!r}: it is not a torchvision segmentation "
                         f"model of this kind (its first keys: {list(state)[:4]}).")
    num_classes = int(state[key].shape[0])
    aux = "aux_classifier.4.weight" in state
    if aux and int(state["aux_classifier.4.weight"].shape[0]) != num_classes:
        raise ValueError(f"{key} has {num_classes} classes but aux_classifier.4.weight has "
                         f"{state['aux_classifier.4.weight'].shape[0]}.")
    return {"num_classes": num_classes, "aux": aux}


def aux_mapping():
    """The auxiliary ``FCNHead`` (keras-seg ``fcn_head(..., "aux")``)."""
    return {"aux_conv": "aux_classifier.0", "aux_bn": "aux_classifier.1",
            "aux_classifier": "aux_classifier.4"}


def aspp_mapping(prefix, rates):
    """torchvision's ``ASPP`` module at ``prefix`` -> keras-seg's :class:`ASPP` layers.

    Its branches are ``convs.0`` (1x1), ``convs.1..3`` (the rates), ``convs.4`` (image
    pooling: ``AdaptiveAvgPool2d``, conv, BN), concatenated in that order as keras-seg's,
    then ``project.0`` / ``project.1`` (conv, BN)."""
    out = {"aspp_1x1_conv": f"{prefix}convs.0.0", "aspp_1x1_bn": f"{prefix}convs.0.1",
           "image_pooling_conv": f"{prefix}convs.4.1", "image_pooling_bn": f"{prefix}convs.4.2",
           "aspp_projection_conv": f"{prefix}project.0",
           "aspp_projection_bn": f"{prefix}project.1"}
    for i, r in enumerate(rates):
        out[f"aspp_rate{r}_conv"] = f"{prefix}convs.{i + 1}.0"
        out[f"aspp_rate{r}_bn"] = f"{prefix}convs.{i + 1}.1"
    return out


def _deeplabv3_build(variant):
    def build(num_classes, aux, input_shape=(None, None, 3)):
        from keras_seg.applications import DeepLabV3

        return DeepLabV3(num_classes, input_shape=input_shape, backbone=variant,
                         backbone_options=dict(TORCHVISION_DILATED), output_stride=8,
                         multi_grid=None, atrous_rates=_RATES, head_conv=True,
                         aspp_dropout=0.5, aux=aux, pad_to_stride=False, bn_epsilon=1e-5,
                         name=f"deeplabv3_{variant}")
    return build


def _deeplabv3_mapping(model):
    out = resnet_mapping(model, "backbone.")
    out.update(aspp_mapping("classifier.0.", _RATES))
    out.update({"head_conv": "classifier.1", "head_bn": "classifier.2",
                "classifier": "classifier.4"})
    out.update(aux_mapping())
    return {k: v for k, v in out.items() if k in {layer.name for layer in _layers(model)}}


def _fcn_build(variant):
    def build(num_classes, aux, input_shape=(None, None, 3)):
        from keras_seg.applications import FCN32s

        return FCN32s(num_classes, input_shape=input_shape, backbone=variant,
                      backbone_options=dict(TORCHVISION_DILATED), output_stride=8,
                      head="fcn_head", upsampling="bilinear", aux=aux, pad_to_stride=False,
                      bn_epsilon=1e-5, name=f"fcn_{variant}")
    return build


def _fcn_mapping(model):
    """torchvision's ``FCNHead`` ``classifier`` (``0`` conv, ``1`` BN, ``4`` conv; ``2`` is
    the ReLU and ``3`` the dropout) -> keras-seg's ``fcn_head(..., "head")``."""
    out = resnet_mapping(model, "backbone.")
    out.update({"head_conv": "classifier.0", "head_bn": "classifier.1",
                "head_classifier": "classifier.4"})
    out.update(aux_mapping())
    return {k: v for k, v in out.items() if k in {layer.name for layer in _layers(model)}}


def _layers(model):
    from keras_seg.convert._engine import all_layers

    return list(all_layers(model))


def _torch_model(name):
    def make(num_classes, aux):
        segmentation = _torch.import_torchvision().models.segmentation
        return getattr(segmentation, name)(weights=None, weights_backbone=None,
                                           num_classes=num_classes, aux_loss=aux)
    return make


def torch_outputs(module, x):
    """torchvision's ``{"out", "aux"}`` as keras-seg's ``{"logits", "aux"}``."""
    out = module(x)
    return {"logits": out["out"], **({"aux": out["aux"]} if "aux" in out else {})}


def _register(name, keras_builder, build, mapping, notes):
    """One torchvision segmentation model: its COCO_WITH_VOC_LABELS_V1 checkpoint and figures."""
    miou, acc = _REPORTED[name]
    register(TorchArchitecture(
        name=f"torchvision/{name}", source="torchvision", keras_builder=keras_builder,
        infer=infer_heads, build=build, mapping=mapping, torch_model=_torch_model(name),
        torch_outputs=torch_outputs, checkpoints={"COCO_WITH_VOC_LABELS_V1": _URLS[name]},
        reported=(f"COCO_WITH_VOC_LABELS_V1: mIoU {miou}, pixel accuracy {acc} (torchvision, "
                  "COCO val2017 on the 20 VOC classes)"),
        notes=notes))


def _register_deeplabv3(variant):
    _register(
        f"deeplabv3_{variant}",
        keras_builder=(f"DeepLabV3(backbone={variant!r}, backbone_options=TORCHVISION_DILATED, "
                       "output_stride=8, multi_grid=None, atrous_rates=(12, 24, 36), "
                       "head_conv=True, aspp_dropout=0.5, aux=AUX, pad_to_stride=False, "
                       "bn_epsilon=1e-5)"),
        build=_deeplabv3_build(variant), mapping=_deeplabv3_mapping,
        notes=("torchvision's dilated ResNet (first unit of a dilated stage at the previous "
               "rate), a 3x3 conv + BN + ReLU after the ASPP, dropout 0.5, no input padding, "
               "optional auxiliary FCN head on P4 (loss weight 0.5)."))


def _register_fcn(variant):
    _register(
        f"fcn_{variant}",
        keras_builder=(f"FCN32s(backbone={variant!r}, backbone_options=TORCHVISION_DILATED, "
                       "output_stride=8, head='fcn_head', upsampling='bilinear', aux=AUX, "
                       "pad_to_stride=False, bn_epsilon=1e-5)"),
        build=_fcn_build(variant), mapping=_fcn_mapping,
        notes=("Not the paper's FCN-32s / 8s on VGG16: torchvision's dilated ResNet at "
               "output stride 8 (first unit of a dilated stage at the previous rate), "
               "its FCNHead (3x3 conv to 512 channels, no bias, + BN + ReLU + dropout 0.1 "
               "+ 1x1 conv) in place of fc6 / fc7 and the 1x1 score layer, the logits "
               "resized bilinearly to the input (align_corners=False) instead of a x32 "
               "deconvolution, no input padding, optional auxiliary FCN head on P4 "
               "(layer3, loss weight 0.5)."))


for _variant in ("resnet50", "resnet101"):
    _register_deeplabv3(_variant)
    _register_fcn(_variant)

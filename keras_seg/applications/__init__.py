"""Segmentation architectures, each a builder returning a functional ``keras.Model``.

Use as ``keras_seg.applications.UNet(num_classes=2)``. :data:`MODELS` maps the
command-line names to the builders.
"""

from keras_seg.applications.apcnet import APCNet
from keras_seg.applications.danet import DANet
from keras_seg.applications.deeplab import DeepLabV1, DeepLabV2, DeepLabV3, DeepLabV3Plus
from keras_seg.applications.dilation import DilatedNet
from keras_seg.applications.enet import ENet
from keras_seg.applications.fcn import FCN8s, FCN16s, FCN32s
from keras_seg.applications.gfrnet import GFRNET_LOSS_WEIGHTS, GFRNET_OUTPUT_STRIDES, GFRNet
from keras_seg.applications.linknet import LinkNet
from keras_seg.applications.pspnet import PSPNet
from keras_seg.applications.refinenet import RefineNet
from keras_seg.applications.segnet import SegNet
from keras_seg.applications.unet import UNet, unet_valid_output_side, unet_valid_sizes

MODELS = {
    "fcn32s": FCN32s,
    "fcn16s": FCN16s,
    "fcn8s": FCN8s,
    "segnet": SegNet,
    "linknet": LinkNet,
    "enet": ENet,
    "unet": UNet,
    "dilatednet": DilatedNet,
    "deeplabv1": DeepLabV1,
    "deeplabv2": DeepLabV2,
    "deeplabv3": DeepLabV3,
    "deeplabv3plus": DeepLabV3Plus,
    "pspnet": PSPNet,
    "refinenet": RefineNet,
    "gfrnet": GFRNet,
    "danet": DANet,
    "apcnet": APCNet,
}


def available():
    """Names of the architectures (keys of :data:`MODELS`)."""
    return sorted(MODELS)


def build(name, num_classes, *, backbone=None, backbone_options=None, **options):
    """Build the architecture registered as ``name`` (what ``keras-seg train --model`` does).

    Args:
        name: a key of :data:`MODELS` (see :func:`available`).
        num_classes: number of classes.
        backbone: backbone name or ``keras.Model`` (None: the paper's); refused with a
            clear error by the builders that have a fixed encoder.
        backbone_options: options of a named backbone (None: none).
        **options: other keyword arguments of the builder.

    Returns:
        The builder's ``keras.Model``.

    Raises:
        ValueError: unknown ``name`` (the message lists the known ones), or any error of
            the builder.
    """
    if name not in MODELS:
        raise ValueError(f"Unknown model {name!r}; choose one of {', '.join(available())}.")
    kwargs = dict(options)
    if backbone is not None:
        kwargs["backbone"] = backbone
    if backbone_options:
        kwargs["backbone_options"] = backbone_options
    return MODELS[name](num_classes=num_classes, **kwargs)


__all__ = ["MODELS", "UNet", "available", "build", "unet_valid_output_side", "unet_valid_sizes"]
__all__ += ["FCN8s", "FCN16s", "FCN32s", "SegNet"]
__all__ += ["DeepLabV1", "DeepLabV2", "DeepLabV3", "DeepLabV3Plus", "DilatedNet", "PSPNet"]
__all__ += ["ENet", "LinkNet"]
__all__ += ["GFRNET_LOSS_WEIGHTS", "GFRNET_OUTPUT_STRIDES", "GFRNet", "RefineNet"]
__all__ += ["APCNet", "DANet"]

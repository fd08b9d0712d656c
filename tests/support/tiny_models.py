"""The one table of tiny model configurations: one case per harness run.

Every name of ``keras_seg.applications.MODELS`` has at least one case (a test in
``tests/models/test_all_models.py`` fails otherwise: add a case for a new model).
``tests/models/test_all_models.py`` runs the shared harness (``harness.check_model``)
once per case; ``tests/inference/test_export_all_models.py`` exports the one case per
name marked ``export=True``; the architecture tests build a case again (``case(id).build()``,
no fit) to assert its structure.

The configurations are the smallest that still learn in a few compiled SGD steps: the
paper's VGG-16 / ResNet-18 at ``width_multiplier=0.125`` where a model is tied to it,
and the five-conv dilated stand-in of ``tiny_pyramid.py`` under the heads that sit on
deep backbones (DeepLab v2 / v3 / v3+, PSPNet, DANet, APCNet). Auxiliary and
deep-supervision heads are switched on where a model has them (export must drop them).
``expected_trainable_params`` comes from the reference formulas of ``param_counts.py``.
"""

from collections.abc import Callable
from dataclasses import dataclass, field

from keras_seg import applications

from .param_counts import (
    RESNET18_TINY_WIDTHS,
    VGG16_TINY_WIDTHS,
    apcnet_head_params,
    aspp_params,
    conv,
    danet_head_params,
    deeplabv1_params,
    dilatednet_params,
    fcn_trainable,
    gfrnet_decoder_params,
    linknet_params,
    msc_params,
    pspnet_aux_params,
    pspnet_head_params,
    refinenet_decoder_params,
    resnet18_params,
    segnet_params,
    tiny_pyramid_params,
    tiny_pyramid_widths,
    unet_deep_supervision_params,
    unet_reference_params,
    v3plus_head_params,
    vgg16_conv_params,
)
from .tiny_pyramid import tiny_pyramid

W = {"width_multiplier": 0.125}
FCN_TINY = {**W, "fc_filters": 256}  # fc6 / fc7: 256 * 0.125 = 32 channels
VGG_FC_TINY = 8  # DilatedNet / DeepLab v1: fc_filters=64 at width 0.125
SIZE = (53, 45)  # DeepLab cases: not a multiple of 8 or 16
P = tiny_pyramid_widths()  # channels of the stand-in's P1..P5


@dataclass(frozen=True)
class TinyCase:
    """One tiny configuration of one registered model, and how the harness runs it.

    Attributes:
        id: the test id.
        name: the model's key in ``keras_seg.applications.MODELS`` (its builder).
        num_classes: classes of the model.
        options: keyword arguments of the builder.
        backbone: a zero-argument factory of a backbone model, called on every build (a
            model instance cannot be shared between builds), or None.
        output_stride: the ``output_stride`` the model must declare.
        padding: the ``padding`` it must declare ("valid": unpadded U-Net).
        export: the case the export test takes for ``name`` (one per name).
        after_fit: an extra check ``f(model)`` on the model the harness trained.
        The other attributes are ``check_model``'s options of the same name.
    """

    id: str
    name: str
    num_classes: int
    output_stride: int
    options: dict = field(default_factory=dict)
    backbone: Callable | None = None
    padding: str = "same"
    input_size: tuple = (97, 75)
    channels: int = 3
    output_size: tuple | None = None
    learning_rate: float = 1e-2
    fit_epochs: int = 4
    check_mixed_precision: bool = True
    expected_trainable_params: int | None = None
    export: bool = False
    after_fit: Callable | None = None

    def build(self):
        """A fresh model (called again by the harness under the mixed-precision policy)."""
        options = dict(self.options)
        if self.backbone is not None:
            options["backbone"] = self.backbone()
        return applications.MODELS[self.name](self.num_classes, **options)

    def harness_options(self):
        """Keyword arguments of ``harness.check_model`` for this case."""
        return {
            "num_classes": self.num_classes,
            "input_size": self.input_size,
            "channels": self.channels,
            "output_size": self.output_size,
            "learning_rate": self.learning_rate,
            "fit_epochs": self.fit_epochs,
            "check_mixed_precision": self.check_mixed_precision,
            "expected_trainable_params": self.expected_trainable_params,
            "output_stride": self.output_stride,
            "padding": self.padding,
        }


def _danet_attention_scales_were_learned(model):
    """DANet's attention scales start at 0 (each module is the identity at first) and
    ``fit`` moves them."""
    import keras

    assert float(keras.ops.convert_to_numpy(model.get_layer("position_attention").gamma)) != 0
    assert float(keras.ops.convert_to_numpy(model.get_layer("channel_attention").beta)) != 0


CASES = (
    # --- U-Net: same padding (both up-sampling kinds), valid padding, a backbone, deep
    # supervision
    TinyCase(
        "unet-transpose", "unet", 3, output_stride=8,
        options={"filters": 8, "depth": 3, "upsampling": "transpose"},
        expected_trainable_params=unet_reference_params(3, 3, 8, 3, "transpose")),
    TinyCase(
        "unet-bilinear", "unet", 3, output_stride=8,
        options={"filters": 8, "depth": 3, "upsampling": "bilinear"},
        expected_trainable_params=unet_reference_params(3, 3, 8, 3, "bilinear")),
    TinyCase(
        # 92 -> 52 at depth 2 (see test_unet.py)
        "unet-valid", "unet", 2, output_stride=4, padding="valid",
        options={"input_shape": (None, None, 1), "filters": 8, "depth": 2, "padding": "valid",
                 "batch_norm": True},
        input_size=(92, 92), channels=1, output_size=(52, 52)),
    TinyCase(
        # VGG16 at 1/8 width: the shallowest native backbone keeps the compiled fit cheap
        "unet-vgg16", "unet", 4, output_stride=32,
        options={"backbone": "vgg16", "backbone_options": W,
                 "decoder_filters": (32, 16, 16, 8, 8)},
        input_size=(65, 47)),
    TinyCase(
        "unet-deep-supervision", "unet", 3, output_stride=8, export=True,
        options={"filters": 4, "depth": 3, "deep_supervision": True},
        input_size=(45, 37), expected_trainable_params=unet_deep_supervision_params(3, 4, 3)),
    # --- FCN: the paper's VGG-16 at 1/8 width
    TinyCase(
        "fcn8s", "fcn8s", 3, output_stride=32, export=True,
        options={"backbone_options": FCN_TINY}, learning_rate=0.05,
        expected_trainable_params=fcn_trainable(3, 2, VGG16_TINY_WIDTHS, 32)),
    TinyCase(
        "fcn16s", "fcn16s", 2, output_stride=32, export=True,
        options={"backbone_options": FCN_TINY}, input_size=(33, 50), learning_rate=0.05,
        fit_epochs=2, check_mixed_precision=False,
        expected_trainable_params=fcn_trainable(2, 1, VGG16_TINY_WIDTHS, 32)),
    TinyCase(
        "fcn32s-fixed-upsampling", "fcn32s", 2, output_stride=32, export=True,
        options={"backbone_options": FCN_TINY, "fixed_upsampling": "all"},
        input_size=(45, 38), learning_rate=0.05, fit_epochs=2, check_mixed_precision=False,
        expected_trainable_params=fcn_trainable(2, 0, VGG16_TINY_WIDTHS, 32)),
    # --- encoder-decoders with a fixed encoder
    TinyCase(
        # three stages instead of five; the stage code is the same loop
        "segnet", "segnet", 3, output_stride=8, export=True,
        options={"filters": (8, 16, 16), "convs": (2, 2, 3)}, input_size=(45, 38),
        expected_trainable_params=segnet_params(3, (8, 16, 16), (2, 2, 3))[1]),
    TinyCase(
        # a shallower ENet (stage 2: regular, dilated, asymmetric)
        "enet", "enet", 3, output_stride=8, export=True,
        options={"filters": (8, 16, 16), "encoder_blocks": (1, 3, 0)}, input_size=(45, 38),
        learning_rate=0.1),
    TinyCase(
        "linknet", "linknet", 3, output_stride=32, export=True,
        options={"backbone_options": W}, input_size=(45, 38),
        expected_trainable_params=linknet_params(3, RESNET18_TINY_WIDTHS)),
    # --- dilated VGG front ends. Mixed precision: checked without running on DilatedNet
    # (test_dilation.py) and on the DeepLab v3+ case
    TinyCase(
        # the basic context module (the large one is the same layer, wider)
        "dilatednet-basic-context", "dilatednet", 3, output_stride=8, export=True,
        options={"context": "basic", "backbone_options": W, "fc_filters": 64},
        input_size=(45, 37), check_mixed_precision=False,
        expected_trainable_params=dilatednet_params(3, VGG16_TINY_WIDTHS, VGG_FC_TINY,
                                                    "basic")),
    TinyCase(
        "deeplabv1", "deeplabv1", 3, output_stride=8,
        options={"backbone_options": W, "fc_filters": 64}, input_size=SIZE,
        check_mixed_precision=False,
        expected_trainable_params=deeplabv1_params(3, VGG16_TINY_WIDTHS, VGG_FC_TINY)),
    TinyCase(
        "deeplabv1-msc", "deeplabv1", 3, output_stride=8, export=True,
        options={"backbone_options": W, "fc_filters": 64, "multi_scale": True,
                 "multi_scale_filters": 8},
        input_size=(27, 21), check_mixed_precision=False,
        # sources: the image and pool1..pool4
        expected_trainable_params=deeplabv1_params(3, VGG16_TINY_WIDTHS, VGG_FC_TINY)
        + msc_params((3, *VGG16_TINY_WIDTHS[:4]), 8, 3)),
    # --- heads of deep backbones, on the five-conv dilated stand-in
    TinyCase(
        "deeplabv2-aspp-s", "deeplabv2", 3, output_stride=8, export=True,
        backbone=lambda: tiny_pyramid(8), options={"aspp": "S"}, input_size=SIZE,
        check_mixed_precision=False,
        # ASPP-S on a ResNet: four 3x3 branches straight to the classes, summed
        expected_trainable_params=tiny_pyramid_params() + 4 * conv(3, P[4], 3)),
    TinyCase(
        "deeplabv3-os8", "deeplabv3", 4, output_stride=8, export=True,
        backbone=lambda: tiny_pyramid(8), options={"output_stride": 8, "filters": 16},
        input_size=SIZE, check_mixed_precision=False,  # ASPP under mixed: the v3+ case
        expected_trainable_params=tiny_pyramid_params() + aspp_params(P[4], 16, 3)
        + conv(1, 16, 4)),
    TinyCase(
        "deeplabv3plus-separable", "deeplabv3plus", 3, output_stride=16, export=True,
        backbone=lambda: tiny_pyramid(16),
        options={"separable": True, "filters": 16, "low_level_filters": 8,
                 "decoder_filters": 16},
        input_size=SIZE,
        expected_trainable_params=tiny_pyramid_params()
        + v3plus_head_params(P[4], P[1], 16, 8, 16, 3, separable=True)),
    TinyCase(
        "pspnet-aux", "pspnet", 3, output_stride=8, export=True,
        backbone=lambda: tiny_pyramid(8),
        options={"filters": 16, "aux": True, "aux_filters": 8}, input_size=(45, 37),
        expected_trainable_params=tiny_pyramid_params() + pspnet_head_params(P[4], 3, 16)
        + pspnet_aux_params(P[3], 3, 8)),
    TinyCase(
        "danet-aux", "danet", 3, output_stride=8, export=True,
        backbone=lambda: tiny_pyramid(8), options={"filters": 16, "aux": True},
        input_size=(45, 37), after_fit=_danet_attention_scales_were_learned,
        expected_trainable_params=tiny_pyramid_params()
        + danet_head_params(P[4], 16, 3, aux=True)),
    TinyCase(
        "apcnet", "apcnet", 4, output_stride=8, export=True,
        backbone=lambda: tiny_pyramid(8), options={"filters": 8}, input_size=(45, 37),
        expected_trainable_params=tiny_pyramid_params() + apcnet_head_params(P[4], 8, 4)),
    # --- multi-path refinement on ResNet-18 / VGG-16 at 1/8 width. Mixed precision:
    # checked without running in test_refinenet.py / test_gfrnet.py
    TinyCase(
        "refinenet", "refinenet", 3, output_stride=32, export=True,
        options={"backbone": "resnet18", "backbone_options": W, "filters": (16, 8, 8, 8)},
        input_size=(67, 45), learning_rate=3e-3, check_mixed_precision=False,
        expected_trainable_params=resnet18_params(RESNET18_TINY_WIDTHS)
        + refinenet_decoder_params(RESNET18_TINY_WIDTHS[::-1], (16, 8, 8, 8), 3)),
    TinyCase(
        "gfrnet-deep-supervision", "gfrnet", 3, output_stride=32, export=True,
        options={"backbone_options": W}, input_size=(45, 37), check_mixed_precision=False,
        expected_trainable_params=vgg16_conv_params(VGG16_TINY_WIDTHS)
        + gfrnet_decoder_params(3, VGG16_TINY_WIDTHS)),
)

BY_ID = {c.id: c for c in CASES}


def case(case_id):
    """The case of that id."""
    return BY_ID[case_id]


def export_case(name):
    """The one case of the registry name ``name`` that the export test takes, or None."""
    found = [c for c in CASES if c.name == name and c.export]
    return found[0] if found else None

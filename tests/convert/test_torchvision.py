"""torchvision's segmentation models converted with keras_seg.convert: parity with the
PyTorch originals (random weights and BatchNorm statistics, sizes that are not multiples
of 32, with and without the auxiliary head); FCN32s' torchvision options (head,
output_stride, aux, pad_to_stride, bn_epsilon) and its unchanged paper defaults."""

import keras
import numpy as np
import pytest
from support.harness import trainable_params
from support.paper_size import zero_init
from support.tiny_models import FCN_TINY
from support.tiny_pyramid import tiny_pyramid
from support.torch_parity import check_conversion, matrix_backend_only

from keras_seg.applications import FCN8s, FCN16s, FCN32s

SIZES = ((65, 47), (72, 100))


def test_deeplabv3_resnet50_with_aux_matches_torchvision(tmp_path):
    model, _ = check_conversion("torchvision/deeplabv3_resnet50", tmp_path, SIZES,
                                roundtrip=True, num_classes=5, aux=True)
    assert set(model.output) == {"logits", "aux"}
    assert model.default_loss_weights == {"logits": 1.0, "aux": 0.5}


@matrix_backend_only
@pytest.mark.parametrize("arch,aux", [
    ("torchvision/deeplabv3_resnet50", False),
    ("torchvision/deeplabv3_resnet101", True),
    ("torchvision/deeplabv3_resnet101", False),
])
def test_deeplabv3_matrix_matches_torchvision(tmp_path, arch, aux):
    check_conversion(arch, tmp_path, SIZES, suffix=".safetensors", num_classes=4, aux=aux)


def test_fcn_resnet50_with_aux_matches_torchvision(tmp_path):
    model, _ = check_conversion("torchvision/fcn_resnet50", tmp_path, SIZES,
                                roundtrip=True, num_classes=5, aux=True)
    assert set(model.output) == {"logits", "aux"}
    assert model.default_loss_weights == {"logits": 1.0, "aux": 0.5}
    inner = model.get_layer("fcn_resnet50")  # behind from_torch's input normalization
    assert tuple(inner.get_layer("head_conv").kernel.shape) == (3, 3, 2048, 512)
    assert inner.get_layer("head_bn").epsilon == 1e-5


@matrix_backend_only
@pytest.mark.parametrize("arch,aux", [
    ("torchvision/fcn_resnet50", False),
    ("torchvision/fcn_resnet101", True),
    ("torchvision/fcn_resnet101", False),
])
def test_fcn_matrix_matches_torchvision(tmp_path, arch, aux):
    check_conversion(arch, tmp_path, SIZES, suffix=".safetensors", num_classes=4, aux=aux)


# FCN32s(21) before the torchvision options were added: the paper's model must not move
FCN32S_PAPER_PARAMS = 136_152_917
FCN32S_PAPER_TRAINABLE = 134_346_581
FCN32S_PAPER_LAYERS = ["image", "fcn32s_pad_to_32", "vgg16", "score_fr", "upscore32",
                       "crop_to_input", "logits"]


def test_fcn32s_paper_defaults_are_unchanged(monkeypatch):
    zero_init(monkeypatch)
    model = FCN32s(21)
    assert model.count_params() == FCN32S_PAPER_PARAMS
    assert trainable_params(model) == FCN32S_PAPER_TRAINABLE
    assert [layer.name for layer in model.layers] == FCN32S_PAPER_LAYERS
    assert not isinstance(model.output, dict)
    final = model.get_layer("upscore32")
    assert final.kernel_size == (64, 64) and final.strides == (32, 32) and not final.trainable


def test_fcn32s_tiny_paper_defaults_are_unchanged():
    # the same check at the harness width, for FCN-32s / 16s / 8s (counts measured before
    # the change)
    expected = {FCN32s: 368_971, FCN16s: 341_662, FCN8s: 334_993}
    for builder, count in expected.items():
        assert builder(3, backbone_options=FCN_TINY).count_params() == count


def test_fcn32s_fcn_head_aux_with_padding_any_size():
    model = FCN32s(3, backbone="resnet18", backbone_options={"width_multiplier": 0.125},
                   head="fcn_head", upsampling="bilinear", output_stride=16, aux=True)
    out = model(np.zeros((1, 41, 29, 3), "float32"))
    assert {k: tuple(v.shape) for k, v in out.items()} == {"logits": (1, 41, 29, 3),
                                                          "aux": (1, 41, 29, 3)}
    assert model.get_layer("head_bn").epsilon == 1e-3
    assert model.get_layer("aux_bn").epsilon == 1e-3
    assert "upscore16" in [layer.name for layer in model.layers]


def test_fcn32s_torchvision_options_errors():
    tiny = {"backbone_options": FCN_TINY}
    with pytest.raises(ValueError, match="head must be one of"):
        FCN32s(2, head="aspp", **tiny)
    with pytest.raises(ValueError, match="fc_layers"):
        FCN32s(2, head="fcn_head", **tiny)
    with pytest.raises(ValueError, match="pad_to_stride=False needs upsampling='bilinear'"):
        FCN32s(2, pad_to_stride=False, **tiny)
    with pytest.raises(ValueError, match="pad_to_stride=False needs upsampling='bilinear'"):
        FCN32s(2, pad_to_stride=False, upsampling="nearest", **tiny)
    with pytest.raises(ValueError, match="pad_to_stride must be True or False"):
        FCN32s(2, pad_to_stride="no", upsampling="bilinear", **tiny)
    with pytest.raises(ValueError, match="output_stride must be one of"):
        FCN32s(2, output_stride=4, **tiny)
    with pytest.raises(ValueError, match="output_stride=8 asked"):
        FCN32s(2, backbone=tiny_pyramid(output_stride=32), output_stride=8)
    inputs = keras.Input((None, None, 3))
    x = inputs
    for i in range(5):
        x = keras.layers.Conv2D(4, 3, strides=2, padding="same", name=f"c{i}")(x)
    no_p4 = keras.Model(inputs, {"P5": x}, name="only_p5")
    with pytest.raises(ValueError, match="no 'P4' feature.*auxiliary head"):
        FCN32s(2, backbone=no_p4, head="fcn_head", aux=True)
    for builder in (FCN16s, FCN8s):  # the torchvision options are FCN-32s' only
        with pytest.raises(TypeError, match="head"):
            builder(2, head="fcn_head", **tiny)

"""Reading PyTorch checkpoints (keras_seg.convert): the torchvision / timm ResNets as
keras-seg backbones with parity, every accepted checkpoint form, and every bad input
(clear error, model unchanged)."""

import sys

import keras
import numpy as np
import pytest
import torch
from support.torch_parity import (
    assert_parity,
    check_conversion,
    matrix_backend_only,
    save_state,
    torch_original,
)

from keras_seg import backbones, convert
from keras_seg.export import MissingDependencyError

SIZES = ((65, 47), (64, 96))


@pytest.mark.parametrize("arch,suffix", [("torchvision/resnet18", ".pth"),
                                         ("timm/resnet50", ".safetensors")])
def test_resnet_backbones_match_pytorch(tmp_path, arch, suffix):
    model, _ = check_conversion(arch, tmp_path, SIZES, suffix=suffix)
    assert sorted(model.output) == ["P1", "P2", "P3", "P4", "P5"]


@matrix_backend_only
@pytest.mark.parametrize("arch", ["torchvision/resnet34", "torchvision/resnet50",
                                  "torchvision/resnet101", "timm/resnet18", "timm/resnet34",
                                  "timm/resnet101"])
def test_resnet_backbone_matrix_matches_pytorch(tmp_path, arch):
    check_conversion(arch, tmp_path, SIZES[:1])


def test_backbones_get_loads_a_torch_checkpoint_in_torch_layout(tmp_path):
    module = torch_original("torchvision/resnet34")
    path = save_state(module, tmp_path / "resnet34.pth")
    backbone = backbones.get("resnet34", weights=path)
    # the layout options took their PyTorch values; no input normalization inside
    assert backbone.get_layer("conv1_bn").epsilon == 1e-5
    image = np.random.default_rng(0).random((1, 64, 80, 3), dtype=np.float32)
    ours = keras.ops.convert_to_numpy(backbone(image)["P5"])
    with torch.no_grad():
        ref = convert.resnet.torch_resnet_features(
            module, torch.from_numpy(image).permute(0, 3, 1, 2))["P5"]
    ref = ref.permute(0, 2, 3, 1).numpy()
    assert np.max(np.abs(ours - ref)) / np.max(np.abs(ref)) < 1e-4
    with pytest.raises(ValueError, match="PyTorch checkpoint.*stride_on"):
        backbones.get("resnet50", weights=str(tmp_path / "r50.pth"), stride_on="1x1")
    with pytest.raises(ValueError, match="keras.applications.*torchvision or timm checkpoint"):
        backbones.get("resnet50", weights="imagenet", padding="symmetric")


def test_torch_layout_options_default_to_the_keras_applications_layout():
    default = backbones.get("resnet50")
    assert default.get_layer("conv2_block1_1_conv").strides == (1, 1)
    assert default.get_layer("conv3_block1_1_conv").strides == (2, 2)
    assert default.get_layer("conv3_block1_1_conv").use_bias
    torch_like = backbones.get("resnet50", **backbones.resnet.TORCH_STYLE)
    assert torch_like.get_layer("conv3_block1_1_conv").strides == (1, 1)
    assert torch_like.get_layer("conv3_block1_2_conv").strides == (2, 2)
    assert not torch_like.get_layer("conv3_block1_2_conv").use_bias
    assert torch_like.get_layer("conv3_block1_2_conv_pad").padding == ((1, 1), (1, 1))
    assert default.count_params() - torch_like.count_params() == sum(
        layer.filters for layer in default.layers if isinstance(layer, keras.layers.Conv2D))
    dilated = backbones.get("resnet50", output_stride=8, dilate_first_unit=False)
    assert dilated.get_layer("conv4_block1_2_conv").dilation_rate == (1, 1)
    assert dilated.get_layer("conv4_block2_2_conv").dilation_rate == (2, 2)
    assert dilated.get_layer("conv5_block1_2_conv").dilation_rate == (2, 2)
    assert dilated.get_layer("conv5_block2_2_conv").dilation_rate == (4, 4)
    for bad, match in [({"stride_on": "2x2"}, "stride_on"), ({"padding": "valid"}, "padding"),
                       ({"bn_epsilon": 0}, "bn_epsilon")]:
        with pytest.raises(ValueError, match=match):
            backbones.get("resnet18", **bad)


@pytest.fixture(scope="module")
def resnet18_state():
    module = torch_original("torchvision/resnet18")
    return module, convert.torch_state(module)


def _weights(model):
    return [np.array(w) for w in model.get_weights()]


def _assert_unchanged(model, before):
    for a, b in zip(before, _weights(model), strict=True):
        np.testing.assert_array_equal(a, b)


def test_checkpoint_forms_load_alike(tmp_path, resnet18_state):
    module, state = resnet18_state
    tensors = module.state_dict()
    reference = convert.from_torch("torchvision/resnet18", state, normalize=False)
    image = np.random.default_rng(0).random((1, 32, 32, 3), dtype=np.float32)
    expected = keras.ops.convert_to_numpy(reference(image)["P5"])
    forms = {"plain.pth": tensors, "nested.pt": {"state_dict": tensors, "epoch": 3},
             "model.bin": {"model": tensors},
             "dataparallel.pth": {f"module.{k}": v for k, v in tensors.items()}}
    for name, obj in forms.items():
        torch.save(obj, tmp_path / name)
        model = convert.from_torch("torchvision/resnet18", str(tmp_path / name), normalize=False)
        np.testing.assert_array_equal(keras.ops.convert_to_numpy(model(image)["P5"]), expected)
    # normalize=True (the default) puts ImageNet's normalization inside the model
    normalized = convert.from_torch("torchvision/resnet18", tensors)
    mean, std = convert.input_normalization(normalized)
    np.testing.assert_allclose(mean, convert.IMAGENET_MEAN, rtol=1e-6)
    np.testing.assert_allclose(std, convert.IMAGENET_STD, rtol=1e-6)
    shifted = ((image - mean) / std).astype(np.float32)
    np.testing.assert_allclose(keras.ops.convert_to_numpy(normalized(image)["P5"]),
                               keras.ops.convert_to_numpy(reference(shifted)["P5"]),
                               rtol=1e-5, atol=1e-5)
    assert convert.input_normalization(reference) is None


def test_a_checkpoint_that_does_not_fit_is_refused_and_nothing_is_loaded(resnet18_state):
    _, state = resnet18_state
    model = convert.get("torchvision/resnet18").build()
    before = _weights(model)
    missing = {k: v for k, v in state.items() if k != "layer2.0.conv1.weight"}
    with pytest.raises(ValueError, match=r"missing.*'layer2.0.conv1.weight'"):
        convert.load_torch_weights(model, missing, "torchvision/resnet18")
    _assert_unchanged(model, before)
    extra = {**state, "head.weight": np.zeros((3, 512, 1, 1), np.float32)}
    with pytest.raises(ValueError, match=r"not used by the model: 'head.weight'"):
        convert.load_torch_weights(model, extra, "torchvision/resnet18")
    _assert_unchanged(model, before)
    wrong = dict(state)
    wrong["layer4.1.bn2.running_var"] = np.ones(256, np.float32)
    with pytest.raises(ValueError, match=r"layer4.1.bn2.running_var: \(256,\) in the "
                       r"checkpoint, \(512,\) expected \(Keras layer 'conv5_block2_2_bn'\)"):
        convert.load_torch_weights(model, wrong, "torchvision/resnet18")
    _assert_unchanged(model, before)
    # another encoder: a ResNet-18 checkpoint for ResNet-34
    with pytest.raises(ValueError, match="is it a checkpoint of this architecture"):
        convert.from_torch("torchvision/resnet34", state)
    # another architecture altogether
    with pytest.raises(ValueError, match="no 'classifier.4.weight'.*not a torchvision "
                       "segmentation model"):
        convert.from_torch("torchvision/deeplabv3_resnet50", state)


def test_bad_files_give_clear_errors(tmp_path, resnet18_state, monkeypatch):
    module, _ = resnet18_state
    path = save_state(module, tmp_path / "ok.pth")
    data = open(path, "rb").read()
    (tmp_path / "cut.pth").write_bytes(data[: len(data) // 2])
    with pytest.raises(ValueError, match="truncated or not a checkpoint"):
        convert.read_checkpoint(str(tmp_path / "cut.pth"))
    safe = save_state(module, tmp_path / "ok.safetensors")
    blob = open(safe, "rb").read()
    (tmp_path / "cut.safetensors").write_bytes(blob[: len(blob) // 2])
    with pytest.raises(ValueError, match="truncated or not a safetensors file"):
        convert.read_checkpoint(str(tmp_path / "cut.safetensors"))
    torch.save({"weight": torch.zeros(2), "config": _NotATensor()}, tmp_path / "pickle.pth")
    with pytest.raises(ValueError, match="Python objects other than tensors"):
        convert.read_checkpoint(str(tmp_path / "pickle.pth"))
    with pytest.raises(FileNotFoundError, match="does not exist"):
        convert.read_checkpoint(str(tmp_path / "absent.pth"))
    (tmp_path / "weights.h5").write_bytes(b"x")
    with pytest.raises(ValueError, match="unknown file type"):
        convert.read_checkpoint(str(tmp_path / "weights.h5"))
    with pytest.raises(ValueError, match="unknown architecture 'smp/Unet-vgg11'"):
        convert.from_torch("smp/Unet-vgg11", path)
    # a .pth without torch: say to install it or use a .safetensors file
    monkeypatch.setitem(sys.modules, "torch", None)
    with pytest.raises(MissingDependencyError, match="needs torch.*safetensors"):
        convert.read_checkpoint(path)
    # ... while .safetensors files need numpy and safetensors only
    assert "conv1.weight" in convert.read_checkpoint(safe)


class _NotATensor:
    """A Python object in a checkpoint: torch.load(weights_only=True) refuses it."""


def test_urls_and_known_names_download_through_keras_cache(tmp_path, resnet18_state,
                                                            monkeypatch):
    module, _ = resnet18_state
    path = save_state(module, tmp_path / "resnet18-f37072fd.pth")
    calls = []

    def fake_get_file(fname, origin, cache_subdir):
        calls.append((fname, origin, cache_subdir))
        return path

    monkeypatch.setattr(keras.utils, "get_file", fake_get_file)
    convert.from_torch("torchvision/resnet18", "IMAGENET1K_V1")
    convert.from_torch("timm/resnet18", "https://example.org/models/resnet18.pth?download=1")
    assert calls == [
        ("resnet18-f37072fd.pth", "https://download.pytorch.org/models/resnet18-f37072fd.pth",
         "keras_seg_torch"),
        ("resnet18.pth", "https://example.org/models/resnet18.pth?download=1",
         "keras_seg_torch")]
    with pytest.raises(ValueError, match="unknown checkpoint name 'IMAGENET1K_V9'"):
        convert.from_torch("torchvision/resnet18", "IMAGENET1K_V9")


def test_options_must_agree_with_the_checkpoint(tmp_path):
    module = torch_original("torchvision/deeplabv3_resnet50", num_classes=3, aux=True)
    state = convert.torch_state(module)
    with pytest.raises(ValueError, match="num_classes=5 was asked but the checkpoint has "
                       "num_classes=3"):
        convert.from_torch("torchvision/deeplabv3_resnet50", state, num_classes=5)
    with pytest.raises(ValueError, match="unknown option depth=3"):
        convert.from_torch("torchvision/deeplabv3_resnet50", state, depth=3)
    model = convert.from_torch("torchvision/deeplabv3_resnet50", state, aux=False)
    assert not isinstance(model.output, dict)
    assert_parity(model, "torchvision/deeplabv3_resnet50", module, [(40, 56)])


def test_a_builder_takes_an_imagenet_resnet_checkpoint_as_encoder_weights(tmp_path):
    from keras_seg.applications import UNet

    module = torch_original("timm/resnet18")
    path = save_state(module, tmp_path / "resnet18.safetensors")
    model = UNet(3, backbone="resnet18", backbone_options={"weights": path})
    encoder = model.get_layer("resnet18")
    image = np.random.default_rng(0).random((1, 64, 64, 3), dtype=np.float32)
    with torch.no_grad():
        ref = convert.resnet.torch_resnet_features(
            module, torch.from_numpy(image).permute(0, 3, 1, 2))["P4"]
    ours = keras.ops.convert_to_numpy(encoder(image)["P4"])
    ref = ref.permute(0, 2, 3, 1).numpy()
    assert np.max(np.abs(ours - ref)) / np.max(np.abs(ref)) < 1e-4
    assert model(image).shape == (1, 64, 64, 3)


def test_aux_options_on_an_architecture_without_an_auxiliary_head(resnet18_state):
    _, state = resnet18_state
    model = convert.from_torch("torchvision/resnet18", state, aux=False)  # none to drop
    assert sorted(model.output) == ["P1", "P2", "P3", "P4", "P5"]
    with pytest.raises(ValueError, match="aux=True was asked but this architecture has no "
                       "auxiliary head"):
        convert.from_torch("torchvision/resnet18", state, aux=True)

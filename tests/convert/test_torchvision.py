"""torchvision's segmentation models converted with keras_seg.convert: parity with the
PyTorch originals (random weights and BatchNorm statistics, sizes that are not multiples
of 32, with and without the auxiliary head)."""

import pytest
from support.torch_parity import check_conversion, matrix_backend_only

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

"""A converted PyTorch model through the ONNX export: the same numbers as PyTorch."""

import keras
import numpy as np
import pytest
from support.torch_parity import check_conversion


@pytest.mark.skipif(keras.backend.backend() != "tensorflow",
                    reason="the export goes through the TensorFlow backend from every backend")
def test_converted_deeplabv3_exports_to_onnx_with_parity(tmp_path):
    import onnxruntime
    import torch

    from keras_seg import convert
    from keras_seg.export import export

    arch = "torchvision/deeplabv3_resnet50"
    model, module = check_conversion(arch, tmp_path, ((65, 47),), num_classes=3, aux=True)
    path = tmp_path / "deeplabv3.onnx"
    export(model, path, "onnx", sizes=((67, 93), (45, 71)))  # checked against Keras
    session = onnxruntime.InferenceSession(str(path), providers=["CPUExecutionProvider"])
    image = np.random.default_rng(5).random((1, 57, 83, 3), dtype=np.float32)
    (onnx_logits,) = session.run(None, {"image": image})
    mean, std = convert.input_normalization(model)
    with torch.no_grad():
        ref = module(torch.from_numpy(((image - mean) / std).astype(np.float32))
                     .permute(0, 3, 1, 2))["out"].permute(0, 2, 3, 1).numpy()
    assert np.max(np.abs(onnx_logits - ref)) / np.max(np.abs(ref)) < 1e-4

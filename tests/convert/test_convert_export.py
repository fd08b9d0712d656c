"""A converted PyTorch model through the ONNX export: the same numbers as PyTorch."""

import keras
import numpy as np
import pytest
from support.torch_parity import check_conversion


@pytest.mark.skipif(keras.backend.backend() != "tensorflow",
                    reason="the export goes through the TensorFlow backend from every backend")
def test_converted_deeplabv3plus_exports_to_onnx_with_parity(tmp_path):
    """SMP's DeepLab v3+ (atrous separable ASPP, align_corners resizes, the input
    normalization) through ONNX equals PyTorch. (The README's example exports
    torchvision's DeepLab v3 the same way; its snippet test runs it.)"""
    import onnxruntime
    import torch

    from keras_seg import convert
    from keras_seg.export import export

    arch = "smp/DeepLabV3Plus-resnet18"
    model, module = check_conversion(arch, tmp_path, ((64, 48),), num_classes=3)
    path = tmp_path / "deeplabv3plus.onnx"
    export(model, path, "onnx", sizes=((67, 93), (45, 71)))  # checked against Keras
    session = onnxruntime.InferenceSession(str(path), providers=["CPUExecutionProvider"])
    image = np.random.default_rng(5).random((1, 48, 80, 3), dtype=np.float32)
    (onnx_logits,) = session.run(None, {"image": image})
    mean, std = convert.input_normalization(model)
    with torch.no_grad():
        torch_image = torch.from_numpy(((image - mean) / std).astype(np.float32))
        ref = convert.get(arch).torch_outputs(module, torch_image.permute(0, 3, 1, 2))
    ref = ref["logits"].permute(0, 2, 3, 1).numpy()
    assert np.max(np.abs(onnx_logits - ref)) / np.max(np.abs(ref)) < 1e-4


def test_a_converted_model_fine_tunes_with_fit(tmp_path):
    """A converted checkpoint trains with keras-seg's loss on every backend: the loss on a
    fixed batch falls, and the weights leave the checkpoint's."""
    from keras_seg import convert
    from keras_seg.losses import SegmentationCrossEntropy

    model, _ = check_conversion("smp/Linknet-resnet18", tmp_path, ((64, 64),), num_classes=3)
    rng = np.random.default_rng(0)
    images = rng.random((2, 64, 64, 3), dtype=np.float32)
    labels = (images[..., 0] > 0.5).astype("int32") + (images[..., 1] > 0.7)
    inner = model.layers[-1]  # the converted network, behind the input normalization
    before = keras.ops.convert_to_numpy(inner.get_layer("logits_conv").kernel)
    model.compile(optimizer=keras.optimizers.Adam(1e-3), loss=SegmentationCrossEntropy())
    first = model.evaluate(images, labels, verbose=0)
    losses = model.fit(images, labels, batch_size=2, epochs=10, verbose=0).history["loss"]
    assert losses[-1] < 0.8 * losses[0], losses
    # in inference mode too (BatchNorm's moving statistics lag the training batches)
    assert model.evaluate(images, labels, verbose=0) < first
    after = keras.ops.convert_to_numpy(inner.get_layer("logits_conv").kernel)
    assert np.max(np.abs(after - before)) > 0
    assert convert.input_normalization(model) is not None

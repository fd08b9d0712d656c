import keras
import numpy as np
import pytest
from harness import check_model, trainable_params
from paper_size import zero_init

from keras_seg.applications import LinkNet
from keras_seg.flops import count_flops
from keras_seg.layers import LinkNetDecoderBlock


def decoder_block_params(m, n):
    q = m // 4
    return m * q + 9 * q * q + q * n + 2 * (q + q + n)  # 3 convs (no bias) + BN gamma/beta


def resnet18_params(widths=(64, 128, 256, 512), cin=3):
    total = 49 * cin * widths[0] + 2 * widths[0]
    prev = widths[0]
    for i, w in enumerate(widths):
        for u in range(2):
            total += 9 * prev * w + 2 * w + 9 * w * w + 2 * w
            if u == 0 and (i > 0):
                total += prev * w + 2 * w  # projection shortcut
            prev = w
    return total


def linknet_params(c, widths=(64, 128, 256, 512)):
    total = resnet18_params(widths)
    chain = [widths[3], widths[2], widths[1], widths[0], widths[0]]
    for m, n in zip(chain[:-1], chain[1:], strict=True):
        total += decoder_block_params(m, n)
    f = widths[0] // 2
    return total + 9 * widths[0] * f + 2 * f + 9 * f * f + 2 * f + 4 * f * c + c


def test_paper_parameter_count_and_flops(monkeypatch):
    zero_init(monkeypatch)
    model = LinkNet(12)
    n = trainable_params(model)
    assert n == linknet_params(12) == 11_534_732
    assert abs(n - 11.5e6) / 11.5e6 < 0.02  # "11.5M parameters" (paper)
    gflops = count_flops(model, (360, 640, 3)) / 1e9
    assert abs(gflops - 21.2) / 21.2 < 0.05  # "21.2 GFLOPs at 3x640x360" (paper)
    assert model.get_layer("decoder1").strides == 1
    assert model.get_layer("decoder4").strides == 2


def test_harness(tmp_path):
    widths = (8, 16, 32, 64)
    model = check_model(
        lambda: LinkNet(3, backbone_options={"width_multiplier": 0.125}),
        num_classes=3, tmp_path=tmp_path, input_size=(45, 38),
        expected_trainable_params=linknet_params(3, widths))
    links = [layer for layer in model.layers if layer.name.endswith("_link")]
    assert len(links) == 4


def test_decoder_block_shapes_and_config():
    block = LinkNetDecoderBlock(6, strides=2)
    out = block(np.zeros((1, 5, 3, 16), "float32"))
    assert tuple(out.shape) == (1, 10, 6, 6)
    assert len(block.trainable_weights) == 9  # 3 kernels, 3 x (gamma, beta)
    clone = LinkNetDecoderBlock.from_config(block.get_config())
    assert clone.filters == 6 and clone.strides == 2
    with pytest.raises(ValueError, match="strides"):
        LinkNetDecoderBlock(4, strides=4)


def test_other_backbone_and_bad_arguments():
    model = LinkNet(2, backbone="resnet34", backbone_options={"width_multiplier": 0.125})
    assert tuple(model(np.zeros((1, 37, 29, 3), "float32")).shape) == (1, 37, 29, 2)
    image = keras.Input((None, None, 3))
    stride8 = keras.layers.Conv2D(4, 8, strides=8)(image)
    no_p2 = keras.Model(image, {"P3": stride8, "P4": stride8, "P5": stride8})
    with pytest.raises(ValueError, match="P2"):
        LinkNet(2, backbone=no_p2)
    with pytest.raises(ValueError, match="num_classes"):
        LinkNet(0)

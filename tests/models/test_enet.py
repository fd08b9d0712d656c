import numpy as np
import pytest
from support.harness import trainable_params
from support.paper_size import zero_init
from support.tiny_models import case

from keras_seg.applications import ENet
from keras_seg.flops import count_flops
from keras_seg.layers import ENetBottleneck, ENetInitialBlock


def test_paper_configuration(monkeypatch):
    zero_init(monkeypatch)
    model = ENet(12)
    n = trainable_params(model)
    assert n == 363_163
    assert abs(n - 0.37e6) / 0.37e6 < 0.02  # "0.37M parameters" (paper)
    gflops = count_flops(model, (360, 640, 3)) / 1e9
    assert 3.3 < gflops < 3.83  # paper: 3.83 GFLOPs, which also counts non-conv ops
    bottlenecks = [layer for layer in model.layers if isinstance(layer, ENetBottleneck)]
    assert len(bottlenecks) == 5 + 9 + 8 + 3 + 2
    kinds = [(b.kind, b.dilation_rate) for b in bottlenecks[6:14]]
    assert kinds == [("regular", 1), ("dilated", 2), ("asymmetric", 1), ("dilated", 4),
                     ("regular", 1), ("dilated", 8), ("asymmetric", 1), ("dilated", 16)]
    assert [b.activation for b in bottlenecks[-5:]] == ["relu"] * 5
    assert bottlenecks[0].dropout_rate == 0.01 and bottlenecks[5].dropout_rate == 0.1


def test_tiny_case_bottlenecks():
    # the harness trains this shallower ENet (stage 2: regular, dilated, asymmetric)
    model = case("enet").build()
    assert len([layer for layer in model.layers if isinstance(layer, ENetBottleneck)]) == 11


def test_blocks():
    x = np.random.default_rng(0).normal(size=(2, 9, 7, 3)).astype("float32")
    init = ENetInitialBlock(16)
    y = init(x)
    assert tuple(y.shape) == (2, 5, 4, 16)
    prelu = [w for w in init.trainable_weights if "alpha" in w.path]
    assert tuple(prelu[0].shape) == (1, 1, 16)  # one slope per channel
    down = ENetBottleneck(32, "downsampling")
    z, indices = down(y)
    assert tuple(z.shape) == (2, 2, 2, 32) and tuple(indices.shape) == (2, 2, 2, 16)
    asym = ENetBottleneck(32, "asymmetric")
    asym(z)
    assert [c.kernel_size for c in asym.main] == [(5, 1), (1, 5)]
    up = ENetBottleneck(16, "upsampling", activation="relu")
    out = up([z, indices, y])
    assert tuple(out.shape) == (2, 5, 4, 16)  # back to the odd pre-pooling size
    clone = ENetBottleneck.from_config(asym.get_config())
    assert clone.kind == "asymmetric" and clone.asymmetric_kernel == 5


def test_bad_arguments():
    with pytest.raises(ValueError, match="kind"):
        ENetBottleneck(16, "strided")
    with pytest.raises(ValueError, match="dilation_rate"):
        ENetBottleneck(16, "dilated")
    with pytest.raises(ValueError, match="filters"):
        ENet(2, filters=(16, 64))
    with pytest.raises(ValueError, match="exceed"):
        ENet(2, input_shape=(None, None, 16))
    with pytest.raises(ValueError, match="encoder_blocks"):
        ENet(2, encoder_blocks=(4, 8))

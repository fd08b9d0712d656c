import keras
import pytest
from harness import check_model, trainable_params

from keras_seg import backbones
from keras_seg.applications import MODELS, DilatedNet
from keras_seg.layers import ContextModule

TINY = {"width_multiplier": 0.125}


def context_params(c, variant):
    widths = [c] * 8 if variant == "basic" else [2 * c, 2 * c, 4 * c, 8 * c, 16 * c, 32 * c,
                                                 32 * c, c]
    total, prev = 0, c
    for i, w in enumerate(widths):
        k = 1 if i == 7 else 3
        total += k * k * prev * w + w
        prev = w
    return total


def test_registered():
    assert MODELS["dilatednet"] is DilatedNet


def test_context_harness(tmp_path):
    # the basic module here (the large one is the same layer, wider: see the build test)
    def build():
        return DilatedNet(3, context="basic", backbone_options=TINY, fc_filters=64)

    # mixed precision: the float32 context module is checked in the build test below
    probe = check_model(build, num_classes=3, tmp_path=tmp_path, input_size=(45, 37),
                        check_mixed_precision=False)
    bb = probe.get_layer("vgg16")
    fc7 = bb.output["fc7"].shape[-1]
    expected = trainable_params(bb) + (fc7 * 3 + 3) + context_params(3, "basic")
    assert trainable_params(probe) == expected  # exact count


def test_front_end_structure_and_basic_context():
    model = DilatedNet(4, context=None, backbone_options=TINY)
    bb = model.get_layer("vgg16")
    names = {layer.name for layer in bb.layers}
    assert "block4_pool" not in names and "block5_pool" not in names  # pool4/5 removed
    assert bb.get_layer("block5_conv1").dilation_rate == (2, 2)
    fc6 = bb.get_layer("fc6")
    assert fc6.kernel_size == (7, 7) and fc6.dilation_rate == (4, 4)
    assert backbones.feature_strides(bb)["fc7"] == 8
    assert not any(isinstance(layer, ContextModule) for layer in model.layers)
    fc7 = bb.output["fc7"].shape[-1]
    assert trainable_params(model) == trainable_params(bb) + fc7 * 4 + 4

    keras.config.set_dtype_policy("mixed_bfloat16")
    try:
        large = DilatedNet(4, backbone_options=TINY)  # default: large context
    finally:
        keras.config.set_dtype_policy("float32")
    assert trainable_params(large) == trainable_params(model) + context_params(4, "large")
    # under mixed precision the context module (which produces the logits) stays float32
    assert large.get_layer("context_large").compute_dtype == "float32"
    assert large.get_layer("vgg16").get_layer("fc7").compute_dtype == "bfloat16"
    assert keras.backend.standardize_dtype(large.output.dtype) == "float32"


def test_front_end_paper_widths():
    import inspect
    params = inspect.signature(DilatedNet).parameters
    assert params["fc_filters"].default == 4096 and params["context"].default == "large"


def test_bad_arguments():
    with pytest.raises(ValueError, match="context"):
        DilatedNet(3, context="medium")
    with pytest.raises(ValueError, match="num_classes"):
        DilatedNet(0)
    with pytest.raises(ValueError, match="conflicts"):
        DilatedNet(3, backbone_options={"output_stride": 16})

import keras
import pytest
from support.harness import trainable_params
from support.param_counts import context_params

from keras_seg import backbones
from keras_seg.applications import MODELS, DilatedNet
from keras_seg.layers import ContextModule

TINY = {"width_multiplier": 0.125}


def test_registered():
    assert MODELS["dilatednet"] is DilatedNet


# The harness trains DilatedNet with the basic context module at 1/8 width
# (support/tiny_models.py "dilatednet-basic-context"; the large module is the same layer,
# wider: see below) and checks its exact count, dilatednet_params(3, ..., "basic").


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

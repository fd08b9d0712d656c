import keras
import numpy as np
import pytest
from support.harness import trainable_params
from support.param_counts import gfrnet_decoder_params, vgg16_conv_params
from support.tiny_models import case

import keras_seg
from keras_seg.applications import GFRNET_LOSS_WEIGHTS, GFRNET_OUTPUT_STRIDES, MODELS, GFRNet
from keras_seg.layers import GatedRefinement, GateUnit


@pytest.mark.skipif(keras.backend.backend() == "jax",
                    reason="the count is the same on every backend (checked on TensorFlow and "
                    "PyTorch); building the paper-size model symbolically is slow on JAX")
def test_paper_configuration():
    model = GFRNet(21, input_shape=(224, 224, 3))
    assert trainable_params(model) == vgg16_conv_params() + gfrnet_decoder_params(21)
    assert vgg16_conv_params() == 14_714_688  # VGG16's 13 convolutions
    assert list(model.output) == ["logits", "stage1", "stage2", "stage3", "stage4", "coarse"]
    shapes = {k: tuple(v.shape) for k, v in model.output.items()}
    assert shapes == {k: (None, 224 // s, 224 // s, 21) for k, s in GFRNET_OUTPUT_STRIDES.items()}
    gates = [layer for layer in model.layers if isinstance(layer, GateUnit)]
    assert [g.filters for g in gates] == [512, 512, 256, 128, 64]
    assert sum(isinstance(layer, GatedRefinement) for layer in model.layers) == 5
    assert GFRNET_LOSS_WEIGHTS == {k: 1.0 for k in GFRNET_OUTPUT_STRIDES}
    assert MODELS["gfrnet"] is GFRNet


def tiny(num_classes=3, **kwargs):
    return GFRNet(num_classes, backbone_options={"width_multiplier": 0.125}, **kwargs)


def test_deep_supervision_case_outputs_and_inference_model():
    # the harness trains this case (tiny() with 3 classes) and checks its exact count,
    # vgg16_conv_params(VGG16_TINY_WIDTHS) + gfrnet_decoder_params(3, VGG16_TINY_WIDTHS);
    # mixed precision: checked without running, in test_mixed_precision_outputs_are_float32
    model = case("gfrnet-deep-supervision").build()
    x = np.random.default_rng(1).uniform(0, 1, (1, 45, 37, 3)).astype("float32")
    out = {k: keras.ops.convert_to_numpy(v) for k, v in model(x, training=False).items()}
    for key, stride in GFRNET_OUTPUT_STRIDES.items():  # ceil(H / s) x ceil(W / s)
        assert out[key].shape == (1, -(-45 // stride), -(-37 // stride), 3), key
    inference = keras_seg.inference_model(model)
    assert len(inference.outputs) == 1
    np.testing.assert_allclose(keras.ops.convert_to_numpy(inference(x, training=False)),
                               out["logits"], rtol=1e-5, atol=1e-5)
    assert len(inference.weights) == len(model.weights)


def test_single_output_without_deep_supervision():
    model = tiny(2, input_shape=(33, 50, 3), deep_supervision=False)
    assert not isinstance(model.output, dict)
    assert tuple(model.output.shape) == (None, 33, 50, 2)
    assert keras_seg.inference_model(model) is model


def test_batch_norm_encoder_and_custom_gates():
    model = GFRNet(2, input_shape=(20, 31, 3), gate_filters=(8, 8, 4, 4, 4),
                   backbone_options={"width_multiplier": 0.125, "batch_norm": True})
    assert [layer.filters for layer in model.layers if isinstance(layer, GateUnit)] == \
        [8, 8, 4, 4, 4]
    assert tuple(model.output["logits"].shape) == (None, 20, 31, 2)
    assert tuple(model.output["stage2"].shape) == (None, 3, 4, 2)  # ceil(20/8), ceil(31/8)


def test_bad_arguments():
    with pytest.raises(ValueError, match="vgg16"):
        GFRNet(2, backbone="resnet50")
    with pytest.raises(ValueError, match="gate_filters"):
        tiny(2, gate_filters=(8, 8))
    with pytest.raises(ValueError, match="output_stride=8 in backbone_options conflicts"):
        GFRNet(2, backbone_options={"width_multiplier": 0.125, "output_stride": 8})
    with pytest.raises(ValueError, match="num_classes"):
        GFRNet(0)
    with pytest.raises(ValueError, match="input_shape"):
        GFRNet(2, input_shape=(32, 32))


def test_mixed_precision_outputs_are_float32():
    keras.config.set_dtype_policy("mixed_bfloat16")
    model = tiny(2)
    assert all(model.get_layer(f"refine{k}").compute_dtype == "float32" for k in range(1, 6))
    assert model.get_layer("gate1").compute_dtype == "bfloat16"
    assert {k: v.dtype for k, v in model.output.items()} == \
        {k: "float32" for k in GFRNET_OUTPUT_STRIDES}

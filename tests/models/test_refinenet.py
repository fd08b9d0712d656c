import keras
import pytest
from support.harness import trainable_params
from support.param_counts import refinenet_decoder_params, resnet18_params

from keras_seg import backbones
from keras_seg.applications import MODELS, RefineNet
from keras_seg.layers import ChainedResidualPooling, MultiResolutionFusion, ResidualConvUnit


def backbone_params(name, **options):
    return trainable_params(backbones.get(name, **options))


@pytest.mark.skipif(keras.backend.backend() == "jax",
                    reason="the count is the same on every backend (checked on TensorFlow and "
                    "PyTorch); building ResNet-101 symbolically takes 25-40 s on JAX")
def test_paper_configuration_parameter_count():
    model = RefineNet(21)
    decoder = refinenet_decoder_params((2048, 1024, 512, 256), (512, 256, 256, 256), 21)
    encoder = trainable_params(model.get_layer("resnet101"))
    assert encoder == 42_552_832  # ResNet-101 without its classifier
    assert trainable_params(model) == encoder + decoder == 109_810_965
    # with the official code's 4-block CRP the same count is 118.1M, the figure that
    # Light-Weight RefineNet (Nekrasov et al. 2018) reports for RefineNet-101
    decoder4 = refinenet_decoder_params((2048, 1024, 512, 256), (512, 256, 256, 256), 21, 4)
    assert round((encoder + decoder4) / 1e6, 1) == 118.1
    names = [layer.name for layer in model.layers]
    # 4 blocks: 2 RCUs per path (1 + 2 + 2 + 2 paths) + 1 output RCU each, + 2 in the head
    rcus = [layer for layer in model.layers if isinstance(layer, ResidualConvUnit)]
    assert len(rcus) == 2 * 7 + 4 + 2
    assert sum(isinstance(layer, MultiResolutionFusion) for layer in model.layers) == 3
    crps = [layer for layer in model.layers if isinstance(layer, ChainedResidualPooling)]
    assert len(crps) == 4 and all(c.num_blocks == 2 and c.pool_size == 5 for c in crps)
    assert model.get_layer("refinenet4_adapt").filters == 512
    assert [model.get_layer(f"refinenet{k}_adapt").filters for k in (3, 2, 1)] == [256] * 3
    assert "resnet101" in names
    assert MODELS["refinenet"] is RefineNet


def tiny(num_classes=3, **kwargs):
    return RefineNet(num_classes, backbone="resnet18",
                     backbone_options={"width_multiplier": 0.125},
                     filters=(16, 8, 8, 8), **kwargs)


def test_tiny_case_count_stands_on_the_resnet18_formula():
    # the harness trains RefineNet on ResNet-18 at 1/8 width (support/tiny_models.py, the
    # same configuration as tiny() here) and checks its exact count: resnet18_params +
    # refinenet_decoder_params((64, 32, 16, 8), (16, 8, 8, 8), 3). Mixed precision is
    # checked without running, in test_mixed_precision_logits_are_float32
    assert backbone_params("resnet18", width_multiplier=0.125) == resnet18_params(
        (8, 16, 32, 64))


def test_mixed_precision_logits_are_float32():
    keras.config.set_dtype_policy("mixed_bfloat16")
    model = tiny(2)
    assert model.get_layer("refinenet1_mrf").compute_dtype == "bfloat16"
    assert model.get_layer("head_logits").compute_dtype == "float32"
    assert model.output.dtype == "float32"


def test_head_is_at_quarter_resolution_and_sizes_not_multiple_of_stride():
    model = tiny(2, input_shape=(70, 50, 3), crp_blocks=3)  # padded to 96 x 64
    assert tuple(model.get_layer("head_logits").output.shape) == (None, 24, 16, 2)
    assert tuple(model.output.shape) == (None, 70, 50, 2)
    assert model.get_layer("refinenet1_crp").num_blocks == 3


def test_dilated_backbone_with_repeated_strides():
    # output stride 8: res4 and res5 share stride 8 with res3; MRF still fuses them
    model = RefineNet(2, input_shape=(33, 41, 3), backbone="resnet18",
                      backbone_options={"width_multiplier": 0.125, "output_stride": 8},
                      filters=(8, 8, 8, 8))
    assert tuple(model.get_layer("refinenet3_mrf").output.shape) == (None, 5, 6, 8)
    assert tuple(model.output.shape) == (None, 33, 41, 2)


def test_bad_arguments():
    with pytest.raises(ValueError, match="filters"):
        RefineNet(2, filters=(256, 256))
    with pytest.raises(ValueError, match="crp_blocks"):
        RefineNet(2, crp_blocks=0)
    with pytest.raises(ValueError, match="num_classes"):
        RefineNet(0)
    with pytest.raises(ValueError, match="Unknown backbone"):
        RefineNet(2, backbone="resnet999")

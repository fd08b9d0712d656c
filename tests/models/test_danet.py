import inspect

import keras
import numpy as np
import pytest
from support.harness import trainable_params
from support.paper_size import zero_init
from support.param_counts import danet_head_params
from support.tiny_models import case
from support.tiny_pyramid import tiny_pyramid

import keras_seg
from keras_seg import backbones
from keras_seg.applications import MODELS, DANet
from keras_seg.applications.danet import danet_loss_weights
from keras_seg.layers import ChannelAttention, PositionAttention
from keras_seg.model_base import SegmentationModel


def test_registered_and_loss_weights():
    assert MODELS["danet"] is DANet
    assert danet_loss_weights() == {"logits": 1.0, "pam": 1.0, "cam": 1.0}
    defaults = inspect.signature(DANet).parameters
    assert defaults["backbone"].default == "resnet101"
    assert defaults["output_stride"].default == 8
    assert defaults["filters"].default == 512 and defaults["dropout"].default == 0.1


def test_danet_aux_case_and_inference_model():
    # the harness trains this case, checks its exact count (the stand-in backbone +
    # danet_head_params(P5, 16, 3, aux=True)) and that fit moves the attention scales
    # (support/tiny_models.py: _danet_attention_scales_were_learned)
    probe = case("danet-aux").build()
    assert list(probe.output) == ["logits", "pam", "cam"]  # main output first
    assert isinstance(probe, SegmentationModel)
    assert probe.default_loss_weights == {"logits": 1.0, "pam": 1.0, "cam": 1.0}
    # the attention scales start at 0
    assert float(keras.ops.convert_to_numpy(probe.get_layer("position_attention").gamma)) == 0
    assert float(keras.ops.convert_to_numpy(probe.get_layer("channel_attention").beta)) == 0

    single = keras_seg.inference_model(probe)
    x = np.random.default_rng(1).uniform(size=(1, 29, 35, 3)).astype("float32")  # new size
    both = probe(x, training=False)
    np.testing.assert_allclose(keras.ops.convert_to_numpy(single(x, training=False)),
                               keras.ops.convert_to_numpy(both["logits"]), rtol=1e-6, atol=1e-6)
    assert all(tuple(v.shape) == (1, 29, 35, 3) for v in both.values())


def test_danet_paper_structure_on_dilated_resnet50(monkeypatch):
    zero_init(monkeypatch)  # counts do not depend on the initial values
    # the real configuration, built once for its structure and parameter count
    model = DANet(19, backbone="resnet50")
    bb = model.get_layer("resnet50")
    assert backbones.feature_strides(bb)["P5"] == 8
    assert bb.output["P5"].shape[-1] == 2048
    pam = model.get_layer("position_attention")
    assert isinstance(pam, PositionAttention) and pam.query_conv.filters == 64
    assert pam.value_conv.filters == 512
    cam = model.get_layer("channel_attention")
    assert isinstance(cam, ChannelAttention) and cam.energy == "paper"
    assert model.get_layer("pam_reduce_conv").kernel_size == (3, 3)
    assert model.get_layer("head_dropout").rate == 0.1
    # 2 x (3x3 2048->512 + BN, 3x3 512->512 + BN) + PAM (2 x 32,832 + 262,656 + 1)
    # + CAM (1) + 1x1 512->19 = 23,935,125
    assert danet_head_params(2048, 512, 19) == 23_935_125
    assert trainable_params(model) == trainable_params(bb) + 23_935_125


def test_bad_arguments():
    with pytest.raises(ValueError, match="output_stride"):
        DANet(3, output_stride=32)
    with pytest.raises(ValueError, match="filters"):
        DANet(3, backbone=tiny_pyramid(8), filters=0)
    with pytest.raises(ValueError, match="energy"):
        DANet(3, backbone=tiny_pyramid(8), channel_energy="inverse")
    with pytest.raises(ValueError, match="num_classes"):
        DANet(0)

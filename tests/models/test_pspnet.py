import keras
import numpy as np
import pytest
from support.harness import trainable_params
from support.param_counts import pspnet_aux_params, pspnet_head_params
from support.tiny_models import case
from support.tiny_pyramid import tiny_pyramid

import keras_seg
from keras_seg import backbones
from keras_seg.applications import MODELS, PSPNet
from keras_seg.applications.pspnet import PSPNET_AUX_WEIGHT, pspnet_loss_weights
from keras_seg.layers import PyramidPooling

TINY = {"width_multiplier": 0.125}


def test_registered_and_aux_weight():
    assert MODELS["pspnet"] is PSPNet
    assert PSPNET_AUX_WEIGHT == 0.4
    assert pspnet_loss_weights() == {"logits": 1.0, "aux": 0.4}


def test_pspnet_aux_case_and_inference_model():
    # the harness trains this case and checks its exact count: the stand-in backbone +
    # pspnet_head_params(P5, 3, 16) + pspnet_aux_params(P4, 3, 8)
    probe = case("pspnet-aux").build()
    bb = probe.get_layer("tiny_pyramid")
    p4, p5 = bb.output["P4"].shape[-1], bb.output["P5"].shape[-1]
    expected = trainable_params(bb) + pspnet_head_params(p5, 3, 16)
    assert list(probe.output) == ["logits", "aux"]  # main output first
    assert isinstance(probe.get_layer("pyramid_pooling"), PyramidPooling)

    single = keras_seg.inference_model(probe)
    assert not isinstance(single.output, dict)
    x = np.random.default_rng(1).uniform(size=(1, 45, 37, 3)).astype("float32")
    both = probe(x, training=False)
    np.testing.assert_allclose(keras.ops.convert_to_numpy(single(x, training=False)),
                               keras.ops.convert_to_numpy(both["logits"]), rtol=1e-6, atol=1e-6)
    assert tuple(both["aux"].shape) == (1, 45, 37, 3)  # aux at the input resolution too
    assert trainable_params(single) == expected
    assert trainable_params(probe) == expected + pspnet_aux_params(p4, 3, 8)


def test_pspnet_default_structure_on_dilated_resnet():
    model = PSPNet(21, backbone="resnet18", backbone_options=TINY)
    bb = model.get_layer("resnet18")
    assert backbones.feature_strides(bb)["P5"] == 8  # output stride 8
    assert model.get_layer("pyramid_pooling").bins == (1, 2, 3, 6)
    assert model.get_layer("head_conv").filters == 512
    assert model.get_layer("head_dropout").rate == 0.1
    p5 = bb.output["P5"].shape[-1]
    assert trainable_params(model) == trainable_params(bb) + pspnet_head_params(p5, 21, 512)
    assert tuple(model.output.shape) == (None, None, None, 21)
    import inspect
    assert inspect.signature(PSPNet).parameters["backbone"].default == "resnet101"


def test_pspnet_aux_on_res4():
    model = PSPNet(5, backbone="resnet18", backbone_options=TINY, aux=True)
    bb = model.get_layer("resnet18")
    assert model.get_layer("aux_conv").input.shape[-1] == bb.output["P4"].shape[-1]
    assert model.get_layer("aux_conv").filters == 256
    assert set(keras_seg.output_names(model)) == {"logits", "aux"}


def test_bad_arguments():
    with pytest.raises(ValueError, match="output_stride"):
        PSPNet(3, output_stride=4)
    with pytest.raises(ValueError, match="num_classes"):
        PSPNet(-1)
    with pytest.raises(ValueError, match="bins"):
        PSPNet(3, backbone=tiny_pyramid(8), bins=())

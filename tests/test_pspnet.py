import keras
import numpy as np
import pytest
from harness import check_model, trainable_params
from tiny_pyramid import tiny_pyramid

import keras_seg
from keras_seg import backbones
from keras_seg.applications import MODELS, PSPNet
from keras_seg.applications.pspnet import PSPNET_AUX_WEIGHT, pspnet_loss_weights
from keras_seg.layers import PyramidPooling

TINY = {"width_multiplier": 0.125}


def conv(k, cin, cout, bias=True):
    return k * k * cin * cout + (cout if bias else 0)


def head_params(cin, classes, filters, bins=4):
    ppm = bins * (conv(1, cin, cin // bins, False) + 2 * (cin // bins))
    return ppm + conv(3, 2 * cin, filters, False) + 2 * filters + conv(1, filters, classes)


def aux_params(cin, classes, filters):
    return conv(3, cin, filters, False) + 2 * filters + conv(1, filters, classes)


def test_registered_and_aux_weight():
    assert MODELS["pspnet"] is PSPNet
    assert PSPNET_AUX_WEIGHT == 0.4
    assert pspnet_loss_weights() == {"logits": 1.0, "aux": 0.4}


def test_pspnet_aux_harness_and_inference_model(tmp_path):
    def build():
        return PSPNet(3, backbone=tiny_pyramid(8), filters=16, aux=True, aux_filters=8)

    probe = check_model(build, num_classes=3, tmp_path=tmp_path, input_size=(45, 37))
    bb = probe.get_layer("tiny_pyramid")
    p4, p5 = bb.output["P4"].shape[-1], bb.output["P5"].shape[-1]
    expected = trainable_params(bb) + head_params(p5, 3, 16) + aux_params(p4, 3, 8)
    assert trainable_params(probe) == expected  # exact count
    assert list(probe.output) == ["logits", "aux"]  # main output first
    assert isinstance(probe.get_layer("pyramid_pooling"), PyramidPooling)

    single = keras_seg.inference_model(probe)
    assert not isinstance(single.output, dict)
    x = np.random.default_rng(1).uniform(size=(1, 45, 37, 3)).astype("float32")
    both = probe(x, training=False)
    np.testing.assert_allclose(keras.ops.convert_to_numpy(single(x, training=False)),
                               keras.ops.convert_to_numpy(both["logits"]), rtol=1e-6, atol=1e-6)
    assert tuple(both["aux"].shape) == (1, 45, 37, 3)  # aux at the input resolution too
    assert trainable_params(single) == expected - aux_params(p4, 3, 8)


def test_pspnet_default_structure_on_dilated_resnet():
    model = PSPNet(21, backbone="resnet18", backbone_options=TINY)
    bb = model.get_layer("resnet18")
    assert backbones.feature_strides(bb)["P5"] == 8  # output stride 8
    assert model.get_layer("pyramid_pooling").bins == (1, 2, 3, 6)
    assert model.get_layer("head_conv").filters == 512
    assert model.get_layer("head_dropout").rate == 0.1
    p5 = bb.output["P5"].shape[-1]
    assert trainable_params(model) == trainable_params(bb) + head_params(p5, 21, 512)
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

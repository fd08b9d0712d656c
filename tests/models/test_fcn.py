import keras
import numpy as np
import pytest
from support.harness import trainable_params
from support.paper_size import zero_init
from support.param_counts import VGG16_TINY_WIDTHS, conv, fcn_trainable
from support.tiny_models import FCN_TINY, case

from keras_seg.applications import FCN8s, FCN16s, FCN32s


def test_fcn8s_paper_parameter_count(monkeypatch):
    zero_init(monkeypatch)
    model = FCN8s(21)
    n = trainable_params(model)
    assert n == fcn_trainable(21, 2) == 134_376_863
    assert abs(n - 134e6) / 134e6 < 0.02  # "FCN-8s ~134M parameters" (paper)
    final = model.get_layer("upscore8")
    assert final.kernel_size == (16, 16) and final.strides == (8, 8) and not final.trainable
    assert model.get_layer("upscore_to_pool4").trainable
    assert model.get_layer("upscore_to_pool3").kernel_size == (4, 4)


def test_fcn16s_and_32s_structure(monkeypatch):
    zero_init(monkeypatch)
    m16 = FCN16s(21)
    assert m16.get_layer("upscore16").kernel_size == (32, 32)
    assert trainable_params(m16) == fcn_trainable(21, 1)
    m32 = FCN32s(21, fixed_upsampling="none")
    assert m32.get_layer("upscore32").kernel_size == (64, 64)
    assert m32.get_layer("upscore32").trainable
    assert trainable_params(m32) == fcn_trainable(21, 0) + conv(64, 21, 21, bias=False)


TINY = FCN_TINY  # the harness cases' VGG-16: widths / 8, fc6 / fc7 32 wide
TINY_WIDTHS = VGG16_TINY_WIDTHS


# The harness runs FCN-8s, FCN-16s and FCN-32s (fixed up-sampling) at 1/8 width
# (support/tiny_models.py) with their exact counts, fcn_trainable(c, skips, TINY_WIDTHS, 32).

def test_fcn8s_score_layers_start_at_zero_and_two_skips_are_added():
    model = case("fcn8s").build()  # FCN8s(3, backbone_options=TINY)
    for name in ("score_fr", "score_pool4", "score_pool3"):
        assert not np.any(keras.ops.convert_to_numpy(model.get_layer(name).kernel))
        assert not np.any(keras.ops.convert_to_numpy(model.get_layer(name).bias))
    assert np.any(keras.ops.convert_to_numpy(model.get_layer("upscore8").kernel))
    assert sum(isinstance(layer, keras.layers.Add) for layer in model.layers) == 2


def test_fcn8s_resnet_backbone():
    model = FCN8s(4, backbone="resnet18", backbone_options={"width_multiplier": 0.125})
    out = model(np.zeros((1, 41, 29, 3), "float32"))
    assert tuple(out.shape) == (1, 41, 29, 4)
    assert model.get_layer("score_pool5") is not None


def test_bad_arguments():
    with pytest.raises(ValueError, match="fixed_upsampling"):
        FCN8s(2, fixed_upsampling="some")
    with pytest.raises(ValueError, match="num_classes"):
        FCN8s(0)
    with pytest.raises(ValueError, match="input_shape"):
        FCN16s(2, input_shape=(64, 64))


def test_fcn8s_interpolation_params_and_round_trip(tmp_path):
    model = FCN8s(3, backbone_options=TINY, upsampling="bilinear")
    # the two learnable x2 deconvolutions (4 * 4 * 3 * 3 weights each) are gone, and so is the
    # frozen x8 one (16 * 16 * 3 * 3): interpolation has no weights
    assert trainable_params(model) == fcn_trainable(3, 2, TINY_WIDTHS, 32) - 2 * conv(4, 3, 3,
                                                                                      bias=False)
    assert model.count_params() == trainable_params(model)
    assert not any(isinstance(layer, keras.layers.Conv2DTranspose) for layer in model.layers)
    x = np.random.default_rng(0).uniform(size=(1, 41, 29, 3)).astype("float32")
    model.get_layer("score_fr").set_weights(
        [np.random.default_rng(1).normal(size=w.shape).astype("float32")
         for w in model.get_layer("score_fr").get_weights()])
    path = str(tmp_path / "fcn.keras")
    model.save(path)
    reloaded = keras.saving.load_model(path)
    before = keras.ops.convert_to_numpy(model(x, training=False))
    after = keras.ops.convert_to_numpy(reloaded(x, training=False))
    assert before.shape == (1, 41, 29, 3) and np.abs(before).max() > 0
    np.testing.assert_allclose(after, before, rtol=1e-5, atol=1e-5)


def test_fcn16s_nearest_params_and_shape():
    model = FCN16s(2, backbone_options=TINY, upsampling="nearest")
    # no x2 deconvolution (4 * 4 * 2 * 2 trainable weights) and no x16 one (frozen)
    assert trainable_params(model) == fcn_trainable(2, 1, TINY_WIDTHS, 32) - conv(4, 2, 2,
                                                                                  bias=False)
    assert model.count_params() == trainable_params(model)
    assert model.get_layer("upscore16").interpolation == "nearest"
    out = model(np.zeros((1, 33, 50, 3), "float32"))
    assert tuple(out.shape) == (1, 33, 50, 2)


def test_fcn32s_bilinear_equals_the_fresh_deconvolution_away_from_borders():
    """At initialization the paper's bilinear-initialized x32 deconvolution computes the
    same function as upsampling='bilinear', except within one input cell of the border
    (the deconvolution sees zero padding, the resize clamps)."""
    deconv = FCN32s(2, backbone_options=TINY)
    interp = FCN32s(2, backbone_options=TINY, upsampling="bilinear")
    rng = np.random.default_rng(3)
    deconv.get_layer("score_fr").set_weights(
        [rng.normal(size=w.shape).astype("float32")
         for w in deconv.get_layer("score_fr").get_weights()])
    for layer in interp.layers:
        if layer.weights:
            layer.set_weights(deconv.get_layer(layer.name).get_weights())
    x = rng.uniform(size=(1, 160, 128, 3)).astype("float32")
    a = keras.ops.convert_to_numpy(deconv(x, training=False))
    b = keras.ops.convert_to_numpy(interp(x, training=False))
    assert np.abs(a).max() > 0
    np.testing.assert_allclose(a[:, 32:-32, 32:-32], b[:, 32:-32, 32:-32], rtol=1e-4, atol=1e-4)
    assert not np.allclose(a[:, :8], b[:, :8], atol=1e-4)  # the borders do differ


def test_upsampling_errors():
    with pytest.raises(ValueError, match="'transpose', 'bilinear', 'nearest'.*class-score"):
        FCN8s(2, upsampling="unpool")
    with pytest.raises(ValueError, match="nothing to learn"):
        FCN32s(2, upsampling="bilinear", fixed_upsampling="none")

import keras
import numpy as np
import pytest
from support.harness import trainable_params
from support.paper_size import zero_init
from support.param_counts import segnet_params
from support.tiny_models import case

from keras_seg.applications import SegNet
from keras_seg.layers import MaxPoolingWithArgmax2D, MaxUnpooling2D


def test_paper_configuration(monkeypatch):
    zero_init(monkeypatch)
    model = SegNet(11)
    encoder = sum(int(sum(keras.ops.size(w) for w in layer.trainable_weights))
                  for layer in model.layers if layer.name.startswith("block"))
    assert (encoder, trainable_params(model)) == segnet_params(11)
    assert abs(encoder - 14.7e6) / 14.7e6 < 0.02  # "encoder 14.7M parameters" (paper)
    # the whole SegNet: 29.46M in the ENet paper's comparison (Paszke et al. 2016, Table 3)
    assert abs(trainable_params(model) - 29.46e6) / 29.46e6 < 0.02
    convs = [layer for layer in model.layers if isinstance(layer, keras.layers.Conv2D)]
    assert len(convs) == 26  # 13 encoder + 13 decoder
    assert sum(isinstance(layer, MaxUnpooling2D) for layer in model.layers) == 5
    assert not any(isinstance(layer, keras.layers.Conv2DTranspose) for layer in model.layers)


def test_tiny_case_unpools_at_each_of_its_three_stages():
    # the harness trains this case (three stages instead of five, same loop) and checks
    # its count, segnet_params(3, (8, 16, 16), (2, 2, 3))[1]
    model = case("segnet").build()
    assert sum(isinstance(layer, MaxUnpooling2D) for layer in model.layers) == 3


def test_bad_arguments():
    with pytest.raises(ValueError, match="convs"):
        SegNet(2, filters=(8, 8, 8))
    with pytest.raises(ValueError, match="filters"):
        SegNet(2, filters=(8, 0, 8), convs=(1, 1, 1))
    with pytest.raises(ValueError, match="num_classes"):
        SegNet(-1)


@pytest.mark.parametrize("upsampling", ["transpose", "bilinear", "nearest"])
def test_upsampling_variants_shape_params_and_round_trip(tmp_path, upsampling):
    widths, convs = (4, 8), (1, 1)
    model = SegNet(3, filters=widths, convs=convs, upsampling=upsampling)
    # the unpooling default has no parameters; a 2x2 transposed conv w -> w with bias per
    # stage adds 4 * w * w + w; interpolation adds nothing
    extra = sum(4 * w * w + w for w in widths) if upsampling == "transpose" else 0
    assert trainable_params(model) == segnet_params(3, widths, convs)[1] + extra
    assert not any(isinstance(layer, (MaxPoolingWithArgmax2D, MaxUnpooling2D))
                   for layer in model.layers)  # no indices computed or kept
    x = np.random.default_rng(0).uniform(size=(1, 37, 29, 3)).astype("float32")
    path = str(tmp_path / "segnet.keras")
    model.save(path)
    reloaded = keras.saving.load_model(path)
    before = keras.ops.convert_to_numpy(model(x, training=False))
    after = keras.ops.convert_to_numpy(reloaded(x, training=False))
    assert before.shape == (1, 37, 29, 3)
    np.testing.assert_allclose(after, before, rtol=1e-5, atol=1e-5)


def test_nearest_decoder_stage_repeats_each_value():
    model = SegNet(2, filters=(4,), convs=(1,), upsampling="nearest")
    probe = keras.Model(model.input, [model.get_layer("block1_pool").output,
                                      model.get_layer("decoder1_nearest").output])
    x = np.random.default_rng(1).uniform(size=(1, 6, 10, 3)).astype("float32")
    pooled, up = (keras.ops.convert_to_numpy(t) for t in probe(x))
    np.testing.assert_array_equal(up, pooled.repeat(2, axis=1).repeat(2, axis=2))


def test_bad_upsampling():
    with pytest.raises(ValueError, match="'bilinear', 'nearest', 'transpose', 'unpool'"):
        SegNet(2, upsampling="deconv")

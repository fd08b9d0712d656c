import keras
import numpy as np
import pytest
from support.harness import trainable_params
from support.param_counts import unet_deep_supervision_params, unet_reference_params
from support.tiny_models import case

import keras_seg
from keras_seg.applications import UNet


def test_plain_unet_deep_supervision():
    # the harness trains this case (support/tiny_models.py "unet-deep-supervision") and
    # checks its count, unet_deep_supervision_params(3, 4, 3); here: names, sizes, the
    # inference model
    c = case("unet-deep-supervision").num_classes
    model = case("unet-deep-supervision").build()
    # + a 1x1 classifier on the decoder levels at strides 2 and 4 (widths 8, 16)
    assert unet_deep_supervision_params(c, 4, 3) == (unet_reference_params(3, c, 4, 3)
                                                     + (8 + 1) * c + (16 + 1) * c)
    assert list(model.output) == ["logits", "level1", "level2"]
    x = np.random.default_rng(2).uniform(0, 1, (1, 45, 37, 3)).astype("float32")
    out = {k: keras.ops.convert_to_numpy(v) for k, v in model(x, training=False).items()}
    assert out["level1"].shape == (1, 23, 19, c)  # ceil(45 / 2), ceil(37 / 2)
    assert out["level2"].shape == (1, 12, 10, c)  # ceil(45 / 4), ceil(37 / 4)
    inference = keras_seg.inference_model(model)
    np.testing.assert_allclose(keras.ops.convert_to_numpy(inference(x, training=False)),
                               out["logits"], rtol=1e-5, atol=1e-5)
    # without deep supervision: the same main path, no extra weights
    plain = UNet(c, filters=4, depth=3)
    assert trainable_params(plain) == unet_reference_params(3, c, 4, 3)
    assert not isinstance(plain.output, dict)


@pytest.mark.skipif(keras.backend.backend() == "jax",
                    reason="the count is the same on every backend (checked on TensorFlow and "
                    "PyTorch); building the 572x572 model symbolically is slow on JAX")
def test_paper_size_deep_supervision_parameter_count():
    model = UNet(2, input_shape=(572, 572, 1), padding="valid", deep_supervision=True)
    extra = sum((64 * 2**k + 1) * 2 for k in (1, 2, 3))  # levels at strides 2, 4, 8
    assert trainable_params(model) == 31_030_658 + extra
    # unpadded mode: each side output has its decoder level's own size
    sizes = {k: tuple(v.shape[1:3]) for k, v in model.output.items()}
    assert sizes == {"logits": (388, 388), "level1": (196, 196), "level2": (100, 100),
                     "level3": (52, 52)}


def test_backbone_unet_deep_supervision():
    # the shared harness runs on the plain U-Net's heads above and on the backbone
    # U-Net (support/tiny_models.py); here: names, sizes, parameters, inference model
    def build(deep_supervision):
        return UNet(2, backbone="resnet18", backbone_options={"width_multiplier": 0.125},
                    decoder_filters=(16, 8, 8, 8, 8), deep_supervision=deep_supervision)

    model = build(True)
    assert list(model.output) == ["logits", "level1", "level2", "level3", "level4"]
    # one 1x1 classifier per decoder stage at strides 16, 8, 4, 2 (widths 16, 8, 8, 8)
    extra = sum((w + 1) * 2 for w in (16, 8, 8, 8))
    assert trainable_params(model) == trainable_params(build(False)) + extra
    x = np.random.default_rng(3).uniform(0, 1, (2, 37, 29, 3)).astype("float32")
    out = model.predict(x, verbose=0)
    for k in range(1, 5):
        s = 2**k
        assert out[f"level{k}"].shape == (2, -(-37 // s), -(-29 // s), 2)
        assert out[f"level{k}"].dtype == np.float32
    inference = keras_seg.inference_model(model)
    np.testing.assert_allclose(inference.predict(x, verbose=0), out["logits"], rtol=1e-5,
                               atol=1e-5)


def test_backbone_dilated_levels_are_named_by_stride():
    model = UNet(2, backbone="resnet18", deep_supervision=True,
                 backbone_options={"width_multiplier": 0.125, "output_stride": 8})
    assert list(model.output) == ["logits", "level1", "level2"]  # strides 2 and 4


def test_depth_one_still_returns_a_dict():
    model = UNet(2, filters=4, depth=1, deep_supervision=True)
    assert list(model.output) == ["logits"]

import inspect

import keras
import numpy as np
import pytest
from support.harness import trainable_params
from support.paper_size import zero_init
from support.param_counts import apcnet_head_params
from support.tiny_models import case
from support.tiny_pyramid import tiny_pyramid

from keras_seg import backbones
from keras_seg.applications import MODELS, APCNet
from keras_seg.layers import AdaptiveContextModule


def test_registered_and_defaults():
    assert MODELS["apcnet"] is APCNet
    defaults = inspect.signature(APCNet).parameters
    assert defaults["backbone"].default == "resnet101"
    assert defaults["output_stride"].default == 8
    assert defaults["scales"].default == (1, 2, 3, 6)
    assert defaults["filters"].default == 512


def test_apcnet_case_modules_and_another_size():
    # the harness trains this case and checks its exact count: the stand-in backbone +
    # apcnet_head_params(P5, 8, 4)
    probe = case("apcnet").build()
    acms = [probe.get_layer(f"acm_{s}") for s in (1, 2, 3, 6)]
    assert all(isinstance(a, AdaptiveContextModule) for a in acms)
    assert [a.scale for a in acms] == [1, 2, 3, 6]
    # another size, fewer stride-8 rows (3) than the finest grid (6): still runs
    x = np.random.default_rng(1).uniform(size=(1, 21, 53, 3)).astype("float32")
    out = keras.ops.convert_to_numpy(probe(x, training=False))
    assert out.shape == (1, 21, 53, 4) and np.isfinite(out).all()


def test_apcnet_paper_structure_on_dilated_resnet50(monkeypatch):
    zero_init(monkeypatch)  # counts do not depend on the initial values
    # the real configuration, built once for its structure and parameter count
    model = APCNet(21, backbone="resnet50")
    bb = model.get_layer("resnet50")
    assert backbones.feature_strides(bb)["P5"] == 8
    assert bb.output["P5"].shape[-1] == 2048
    assert model.get_layer("acm_concat").output.shape[-1] == 2048 + 4 * 512
    assert model.get_layer("head_conv").filters == 512
    assert model.get_layer("head_conv").kernel_size == (3, 3)
    # per scale s: two (1x1 2048->512 + BN) = 2,099,200 and 1x1 512->s^2 (513 s^2);
    # 3x3 4096->512 + BN = 18,875,392; 1x1 512->21 = 10,773
    assert apcnet_head_params(2048, 512, 21) == 4 * 2_099_200 + 513 * 50 + 18_875_392 + 10_773
    assert trainable_params(model) == trainable_params(bb) + 27_308_615


def test_bad_arguments():
    with pytest.raises(ValueError, match="scales"):
        APCNet(3, backbone=tiny_pyramid(8), scales=(1, 0))
    with pytest.raises(ValueError, match="output_stride"):
        APCNet(3, output_stride=4)
    with pytest.raises(ValueError, match="filters"):
        APCNet(3, backbone=tiny_pyramid(8), filters=-2)

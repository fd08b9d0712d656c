import keras
import numpy as np
import pytest

from keras_seg import backbones


def randomize(model, seed=0):
    """Give every weight a random value (BN variances positive) so copies are checked."""
    rng = np.random.default_rng(seed)
    for layer in model.layers:
        new = []
        for w in layer.weights:
            shape = tuple(w.shape)
            if "variance" in w.path:
                new.append(rng.uniform(0.5, 1.5, shape).astype("float32"))
            elif "gamma" in w.path:
                new.append(rng.uniform(0.8, 1.2, shape).astype("float32"))
            else:
                fan_in = int(np.prod(shape[:-1])) if len(shape) > 1 else 1
                new.append((rng.standard_normal(shape) / np.sqrt(fan_in)).astype("float32"))
        if new:
            layer.set_weights(new)


def features(model, x):
    return {k: np.asarray(v) for k, v in model.predict(x, verbose=0).items()}


def test_registry_and_unknown_name_lists_known():
    assert backbones.available() == sorted(
        ["mobilenetv2", "resnet101", "resnet152", "resnet18", "resnet34", "resnet50", "vgg16",
         "xception"]
    )
    with pytest.raises(ValueError) as err:
        backbones.get("resnet1001")
    for name in backbones.available():
        assert name in str(err.value)


@pytest.mark.parametrize("name", ["resnet18", "resnet50", "mobilenetv2", "xception", "vgg16"])
def test_pyramid_contract_at_odd_size(name):
    options = {"middle_repeats": 2} if name == "xception" else {}
    bb = backbones.get(name, width_multiplier=0.125, **options)
    assert backbones.feature_strides(bb) == {"P1": 2, "P2": 4, "P3": 8, "P4": 16, "P5": 32}
    out = features(bb, np.zeros((1, 97, 75, 3), "float32"))
    for level, stride in backbones.feature_strides(bb).items():
        h, w = out[level].shape[1:3]
        assert abs(h - 97 / stride) <= 1 and abs(w - 75 / stride) <= 1


@pytest.mark.parametrize(
    "name,output_stride,expected",
    [
        ("resnet18", 16, {"P1": 2, "P2": 4, "P3": 8, "P4": 16, "P5": 16}),
        ("resnet50", 8, {"P1": 2, "P2": 4, "P3": 8, "P4": 8, "P5": 8}),
        ("mobilenetv2", 8, {"P1": 2, "P2": 4, "P3": 8, "P4": 8, "P5": 8}),
        ("xception", 16, {"P1": 2, "P2": 4, "P3": 8, "P4": 16, "P5": 16}),
        ("vgg16", 8, {"P1": 2, "P2": 4, "P3": 8, "P4": 8, "P5": 8}),
    ],
)
def test_output_stride(name, output_stride, expected):
    options = {"middle_repeats": 2} if name == "xception" else {}
    bb = backbones.get(name, output_stride=output_stride, width_multiplier=0.125, **options)
    assert backbones.feature_strides(bb) == expected


def test_multi_grid_rates_of_last_stage():
    # DeepLab v3, output stride 16: block4 rate 2 times multi-grid (1, 2, 4)
    bb = backbones.get("resnet50", output_stride=16, multi_grid=(1, 2, 4), width_multiplier=0.125)
    rates = [bb.get_layer(f"conv5_block{i}_2_conv").dilation_rate for i in (1, 2, 3)]
    assert rates == [(2, 2), (4, 4), (8, 8)]
    assert bb.get_layer("conv5_block1_1_conv").strides == (1, 1)
    # output stride 8: block3 rate 2, block4 rate 4 x multi-grid
    bb = backbones.get("resnet50", output_stride=8, multi_grid=(1, 2, 4), width_multiplier=0.125)
    assert bb.get_layer("conv4_block3_2_conv").dilation_rate == (2, 2)
    rates = [bb.get_layer(f"conv5_block{i}_2_conv").dilation_rate for i in (1, 2, 3)]
    assert rates == [(4, 4), (8, 8), (16, 16)]


def test_vgg_deeplab_largefov_and_dilation_front_end_options():
    bb = backbones.vgg16(output_stride=8, fc_layers=True, fc_kernel=3, fc_dilation=12,
                         fc_filters=1024)
    assert bb.get_layer("block4_pool").strides == (1, 1)
    assert bb.get_layer("block4_pool").pool_size == (3, 3)
    assert bb.get_layer("block5_conv1").dilation_rate == (2, 2)
    assert bb.get_layer("fc6").dilation_rate == (12, 12)
    assert bb.get_layer("fc6").kernel_size == (3, 3)
    front = backbones.vgg16(output_stride=8, stride1_pooling="remove", fc_layers=True,
                            fc_dilation=4, width_multiplier=0.125)
    names = {layer.name for layer in front.layers}
    assert "block4_pool" not in names and "block5_pool" not in names
    assert backbones.feature_strides(front)["fc7"] == 8


def test_bad_options_are_clear_errors():
    with pytest.raises(ValueError, match="output_stride"):
        backbones.get("resnet50", output_stride=4)
    with pytest.raises(ValueError, match="3 input channels"):
        backbones.get("resnet50", input_shape=(None, None, 1), weights="imagenet")
    with pytest.raises(ValueError, match="no ImageNet weights"):
        backbones.get("resnet18", weights="imagenet")
    with pytest.raises(FileNotFoundError, match="does not exist"):
        backbones.get("resnet18", weights="/nonexistent/file.weights.h5", width_multiplier=0.125)
    with pytest.raises(ValueError, match="multi_grid"):
        backbones.get("resnet50", multi_grid=(0, 2))
    bb = backbones.get("resnet18", width_multiplier=0.125)
    with pytest.raises(ValueError, match="input channels"):
        backbones.get(bb, input_shape=(None, None, 4))
    with pytest.raises(ValueError, match="only apply to named"):
        backbones.get(bb, output_stride=8)
    with pytest.raises(TypeError, match="backbone must be"):
        backbones.get(42)


def test_single_channel_backbone():
    bb = backbones.get("resnet18", input_shape=(None, None, 1), width_multiplier=0.125)
    out = features(bb, np.zeros((1, 64, 64, 1), "float32"))
    assert out["P5"].shape[1:3] == (2, 2)


def test_weights_file_round_trip(tmp_path):
    bb = backbones.get("resnet18", width_multiplier=0.125)
    randomize(bb)
    path = str(tmp_path / "bb.weights.h5")
    bb.save_weights(path)
    other = backbones.get("resnet18", width_multiplier=0.125, weights=path)
    x = np.random.default_rng(1).uniform(size=(1, 64, 64, 3)).astype("float32")
    np.testing.assert_allclose(features(other, x)["P5"], features(bb, x)["P5"], atol=1e-6)


def _app_equivalence(app, native, x, levels=("P1", "P2", "P3", "P4", "P5")):
    """Copy ``app``'s random weights into ``native`` and compare pyramid levels."""
    randomize(app)
    copied = backbones.copy_weights_by_name(app, native)
    assert copied == sum(1 for layer in app.layers if layer.weights)
    tapped = backbones.get(app)  # the keras.applications adapter
    ours, theirs = features(native, x), features(tapped, x)
    assert sorted(theirs) == ["P1", "P2", "P3", "P4", "P5"]
    for level in levels:
        np.testing.assert_allclose(ours[level], theirs[level], rtol=1e-4, atol=1e-4)
    return tapped


def test_resnet50_matches_keras_applications():
    app = keras.applications.ResNet50(include_top=False, weights=None, input_shape=(None, None, 3))
    native = backbones.resnet50()
    x = np.random.default_rng(0).uniform(0, 1, (1, 64, 64, 3)).astype("float32")
    tapped = _app_equivalence(app, native, x)
    names = {k: v._keras_history[0].name for k, v in tapped.output.items()}
    assert names == {"P1": "conv1_relu", "P2": "conv2_block3_out", "P3": "conv3_block4_out",
                     "P4": "conv4_block6_out", "P5": "conv5_block3_out"}


def test_mobilenetv2_matches_keras_applications():
    app = keras.applications.MobileNetV2(include_top=False, weights=None,
                                         input_shape=(None, None, 3))
    native = backbones.mobilenetv2()
    x = np.random.default_rng(0).uniform(-1, 1, (1, 64, 64, 3)).astype("float32")
    # the adapter taps the last layer at each stride: the expansion that opens the
    # next strided block (the usual MobileNetV2 U-Net skips); the native backbone
    # exposes block outputs instead, so only the shared deepest level is compared
    tapped = _app_equivalence(app, native, x, levels=("P5",))
    names = [v._keras_history[0].name for v in tapped.output.values()]
    assert names == ["block_1_expand_relu", "block_3_expand_relu", "block_6_expand_relu",
                     "block_13_expand_relu", "out_relu"]


def test_resnet101_and_152_have_the_keras_applications_structure():
    for builder, app_cls in ((backbones.resnet101, keras.applications.ResNet101),
                             (backbones.resnet152, keras.applications.ResNet152)):
        app = app_cls(include_top=False, weights=None, input_shape=(None, None, 3))
        native = builder()
        copied = backbones.copy_weights_by_name(app, native)
        assert copied == sum(1 for layer in app.layers if layer.weights)
        assert native.count_params() == app.count_params()


def test_vgg16_matches_keras_applications_including_fc_as_convolutions():
    app = keras.applications.VGG16(include_top=True, weights=None)
    native = backbones.vgg16(fc_layers=True)
    randomize(app)
    backbones.vgg.copy_vgg16_weights(app, native)
    x = np.random.default_rng(0).uniform(0, 255, (1, 224, 224, 3)).astype("float32")
    ours = features(native, x)
    taps = keras.Model(app.inputs, {"P5": app.get_layer("block5_pool").output,
                                    "P3": app.get_layer("block3_pool").output,
                                    "fc2": app.get_layer("fc2").output})
    theirs = taps.predict(x, verbose=0)
    for level in ("P3", "P5"):
        np.testing.assert_allclose(ours[level], theirs[level], rtol=1e-4, atol=1e-3)
    # the 7x7 fc6 sees the whole 7x7 pool5 map at the centre: FCN's convolutionalization
    np.testing.assert_allclose(ours["fc7"][:, 3, 3, :], theirs["fc2"], rtol=1e-3, atol=1e-3)


def test_keras_hub_style_pyramid_outputs_are_used_as_is():
    inputs = keras.Input((None, None, 3))
    a = keras.layers.Conv2D(4, 3, strides=2, padding="same")(inputs)
    b = keras.layers.Conv2D(8, 3, strides=2, padding="same")(a)
    model = keras.Model(inputs, b)
    model.pyramid_outputs = {"P1": a, "P2": b}
    bb = backbones.get(model)
    assert backbones.feature_strides(bb) == {"P1": 2, "P2": 4}


def test_generic_functional_model_is_tapped_by_stride():
    inputs = keras.Input((None, None, 3))
    x = keras.layers.Conv2D(4, 3, padding="same")(inputs)
    x = keras.layers.MaxPooling2D()(x)
    x = keras.layers.Conv2D(8, 3, padding="same", name="last_at_2")(x)
    x = keras.layers.Conv2D(8, 3, strides=2, padding="same", name="at_4")(x)
    bb = backbones.get(keras.Model(inputs, x))
    assert [t.name for t in bb.outputs] == [bb.output["P1"].name, bb.output["P2"].name]
    assert backbones.feature_strides(bb) == {"P1": 2, "P2": 4}
    x = np.ones((1, 16, 16, 3), "float32")
    assert bb.predict(x, verbose=0)["P2"].shape == (1, 4, 4, 8)


def test_imagenet_option_copies_from_keras_applications_without_download(monkeypatch):
    """The ``weights="imagenet"`` path, with keras.applications' download replaced by a
    random model: the backbone must end up with exactly that model's weights."""
    made = {}
    real = keras.applications.MobileNetV2

    def fake(include_top, weights, input_shape):
        assert weights == "imagenet" and include_top is False
        made["model"] = real(include_top=False, weights=None, input_shape=input_shape)
        randomize(made["model"], seed=3)
        return made["model"]

    monkeypatch.setattr(keras.applications, "MobileNetV2", fake)
    native = backbones.get("mobilenetv2", weights="imagenet")
    source = made["model"]
    for name in ("Conv1", "block_16_project_BN", "Conv_1"):
        for a, b in zip(native.get_layer(name).get_weights(),
                        source.get_layer(name).get_weights(), strict=True):
            np.testing.assert_array_equal(a, b)

"""AtrousConv2D (keras_seg.ops.atrous_conv) computes what Conv2D computes, values and
gradients, on every backend: rates below and above the map size (taps cut), static and
dynamic sizes, and the strided / grouped fallbacks."""

import keras
import numpy as np
import pytest

from keras_seg.layers import AtrousConv2D, Conv2D, Conv2DTranspose

RATES = [(1, 1), (2, 2), (12, 12), (3, 20), (20, 3), (36, 36)]


def _pair(rate, kernel=3, **kwargs):
    ref = keras.layers.Conv2D(5, kernel, padding="same", dilation_rate=rate, **kwargs)
    new = AtrousConv2D(5, kernel, padding="same", dilation_rate=rate, **kwargs)
    ref.build((None, None, None, 4))
    new.build((None, None, None, 4))
    new.set_weights(ref.get_weights())
    return ref, new


@pytest.mark.parametrize("rate", RATES)
@pytest.mark.parametrize("kernel", [3, 5])
def test_same_values_as_conv2d(rate, kernel):
    ref, new = _pair(rate, kernel)
    x = np.random.default_rng(0).normal(size=(2, 9, 14, 4)).astype("float32")
    a = keras.ops.convert_to_numpy(ref(x))
    b = keras.ops.convert_to_numpy(new(x))
    assert b.shape == a.shape
    np.testing.assert_allclose(b, a, rtol=1e-5, atol=1e-5 * np.abs(a).max())


@pytest.mark.parametrize("rate", [(2, 2), (12, 12)])
def test_same_gradients_and_training_as_conv2d_in_a_traced_model(rate):
    """A model with dynamic sizes trained with fit (traced on TensorFlow and JAX)."""
    rng = np.random.default_rng(1)
    x = rng.normal(size=(4, 10, 10, 4)).astype("float32")
    y = rng.normal(size=(4, 10, 10, 5)).astype("float32")
    models = []
    for layer in _pair(rate, use_bias=True):
        inputs = keras.Input((None, None, 4))
        model = keras.Model(inputs, layer(inputs))
        model.compile(optimizer=keras.optimizers.SGD(0.1), loss="mse")
        model.fit(x, y, batch_size=2, epochs=2, verbose=0, shuffle=False)
        models.append(model)
    for a, b in zip(models[0].get_weights(), models[1].get_weights(), strict=True):
        np.testing.assert_allclose(b, a, rtol=1e-5, atol=1e-6)


def test_fallbacks_and_serialization(tmp_path):
    x = np.random.default_rng(2).normal(size=(1, 12, 12, 4)).astype("float32")
    for kwargs in ({"strides": 2, "dilation_rate": 1}, {"groups": 2, "dilation_rate": 2}):
        ref = keras.layers.Conv2D(4, 3, padding="same", **kwargs)
        new = AtrousConv2D(4, 3, padding="same", **kwargs)
        ref.build(x.shape)
        new.build(x.shape)
        new.set_weights(ref.get_weights())
        np.testing.assert_allclose(keras.ops.convert_to_numpy(new(x)),
                                   keras.ops.convert_to_numpy(ref(x)), rtol=1e-5, atol=1e-5)
    inputs = keras.Input((None, None, 4))
    model = keras.Model(inputs, AtrousConv2D(3, 3, padding="same", dilation_rate=6,
                                             name="atrous")(inputs))
    model.save(tmp_path / "m.keras")
    loaded = keras.saving.load_model(tmp_path / "m.keras")
    assert type(loaded.get_layer("atrous")).__name__ == "AtrousConv2D"
    np.testing.assert_allclose(keras.ops.convert_to_numpy(loaded(x)),
                               keras.ops.convert_to_numpy(model(x)), rtol=1e-6, atol=1e-6)


def test_the_portable_export_form_computes_the_same():
    from keras_seg.ops import portable_graph

    ref, new = _pair((4, 4))
    x = np.random.default_rng(3).normal(size=(1, 11, 13, 4)).astype("float32")
    with portable_graph():
        inside = keras.ops.convert_to_numpy(new(x))
    np.testing.assert_allclose(inside, keras.ops.convert_to_numpy(ref(x)), rtol=1e-5,
                               atol=1e-5)
    np.testing.assert_allclose(keras.ops.convert_to_numpy(new(x)), inside, rtol=1e-5,
                               atol=1e-5)


def _depthwise_pair(kind, rate, kernel=3, padding="same", multiplier=1, strides=1):
    from keras_seg.layers import AtrousDepthwiseConv2D, AtrousSeparableConv2D

    if kind == "depthwise":
        ref = keras.layers.DepthwiseConv2D(kernel, strides=strides, padding=padding,
                                           dilation_rate=rate, depth_multiplier=multiplier,
                                           use_bias=True, bias_initializer="random_normal")
        new = AtrousDepthwiseConv2D(kernel, strides=strides, padding=padding,
                                    dilation_rate=rate, depth_multiplier=multiplier)
    else:
        ref = keras.layers.SeparableConv2D(5, kernel, strides=strides, padding=padding,
                                           dilation_rate=rate, depth_multiplier=multiplier,
                                           bias_initializer="random_normal")
        new = AtrousSeparableConv2D(5, kernel, strides=strides, padding=padding,
                                    dilation_rate=rate, depth_multiplier=multiplier)
    ref.build((None, 9, 14, 4))
    new.build((None, 9, 14, 4))
    new.set_weights(ref.get_weights())
    return ref, new


@pytest.mark.parametrize("kind", ["depthwise", "separable"])
@pytest.mark.parametrize("rate,padding,multiplier,strides", [
    ((1, 1), "same", 1, 1), ((2, 3), "same", 2, 1), ((12, 12), "same", 1, 1),
    ((3, 20), "same", 1, 1), ((2, 2), "valid", 1, 1), ((1, 1), "same", 1, 2)])
def test_depthwise_and_separable_same_values_as_keras(kind, rate, padding, multiplier,
                                                      strides):
    ref, new = _depthwise_pair(kind, rate, padding=padding, multiplier=multiplier,
                               strides=strides)
    x = np.random.default_rng(4).normal(size=(2, 9, 14, 4)).astype("float32")
    a = keras.ops.convert_to_numpy(ref(x))
    b = keras.ops.convert_to_numpy(new(x))
    assert b.shape == a.shape
    np.testing.assert_allclose(b, a, rtol=1e-5, atol=1e-5 * np.abs(a).max())


@pytest.mark.parametrize("kind", ["depthwise", "separable"])
def test_depthwise_and_separable_train_as_keras(kind, tmp_path):
    rng = np.random.default_rng(5)
    x = rng.normal(size=(4, 9, 14, 4)).astype("float32")
    models = []
    for layer in _depthwise_pair(kind, (2, 2)):
        inputs = keras.Input((None, None, 4))
        model = keras.Model(inputs, layer(inputs))
        y = np.zeros((4, 9, 14, model.output.shape[-1]), "float32") + 0.5
        model.compile(optimizer=keras.optimizers.SGD(0.05), loss="mse")
        model.fit(x, y, batch_size=2, epochs=2, verbose=0, shuffle=False)
        models.append(model)
    for a, b in zip(models[0].get_weights(), models[1].get_weights(), strict=True):
        np.testing.assert_allclose(b, a, rtol=1e-5, atol=1e-6)
    models[1].save(tmp_path / "m.keras")
    loaded = keras.saving.load_model(tmp_path / "m.keras")
    np.testing.assert_allclose(keras.ops.convert_to_numpy(loaded(x)),
                               keras.ops.convert_to_numpy(models[1](x)), rtol=1e-6, atol=1e-6)


# === Conv2D (keras_seg.ops.conv: no layout copies on the torch backend) ===

CONV_CASES = [  # kernel, strides, dilation, padding, groups, input size
    (3, 1, 1, "same", 1, (9, 14)),
    (3, 2, 1, "same", 1, (8, 14)),   # even sizes, stride 2: asymmetric "same" padding
    (3, 2, 1, "same", 1, (9, 13)),   # odd sizes: symmetric
    (7, 2, 1, "same", 1, (16, 12)),  # the ResNet stem
    (1, 2, 1, "valid", 1, (9, 10)),  # projection shortcut (JAX: a matrix product)
    (1, 1, 1, "same", 1, (5, 6)),    # bottleneck 1x1 (JAX: a matrix product)
    (1, 1, 1, "same", 2, (5, 6)),    # grouped 1x1: a convolution on every backend
    (3, 1, 2, "same", 1, (10, 10)),
    (3, (1, 2), 1, "valid", 1, (9, 11)),
    (3, 1, 1, "same", 2, (6, 7)),    # grouped
    (2, 1, 1, "same", 1, (6, 7)),    # even kernel: asymmetric padding
]


def _conv_pair(kernel, strides, rate, padding, groups, use_bias=True):
    ref = keras.layers.Conv2D(6, kernel, strides=strides, dilation_rate=rate, padding=padding,
                              groups=groups, use_bias=use_bias)
    new = Conv2D(6, kernel, strides=strides, dilation_rate=rate, padding=padding,
                 groups=groups, use_bias=use_bias)
    ref.build((None, None, None, 4))
    new.build((None, None, None, 4))
    rng = np.random.default_rng(5)
    new.set_weights([rng.normal(size=w.shape).astype("float32") for w in ref.get_weights()])
    ref.set_weights(new.get_weights())
    return ref, new


@pytest.mark.parametrize("case", CONV_CASES)
def test_conv2d_same_values_as_keras(case):
    *layer, size = case
    ref, new = _conv_pair(*layer)
    x = np.random.default_rng(0).normal(size=(2, *size, 4)).astype("float32")
    a = keras.ops.convert_to_numpy(ref(x))
    b = keras.ops.convert_to_numpy(new(x))
    assert b.shape == a.shape
    np.testing.assert_allclose(b, a, rtol=1e-5, atol=1e-5 * np.abs(a).max())


@pytest.mark.parametrize("case", [CONV_CASES[1], CONV_CASES[3], CONV_CASES[5], CONV_CASES[9]])
def test_conv2d_same_training_as_keras(case):
    *layer, size = case
    rng = np.random.default_rng(1)
    x = rng.normal(size=(4, *size, 4)).astype("float32")
    models = []
    for conv in _conv_pair(*layer):
        inputs = keras.Input((None, None, 4))
        model = keras.Model(inputs, conv(inputs))
        model.compile(optimizer=keras.optimizers.SGD(0.05), loss="mse")
        models.append(model)
    y = rng.normal(size=tuple(models[0](x[:1]).shape[1:])).astype("float32")
    y = np.broadcast_to(y, (4, *y.shape)).copy()
    for model in models:
        model.fit(x, y, batch_size=2, epochs=2, verbose=0, shuffle=False)
    for a, b in zip(models[0].get_weights(), models[1].get_weights(), strict=True):
        np.testing.assert_allclose(b, a, rtol=1e-5, atol=1e-6)


def test_conv2d_serializes_as_itself(tmp_path):
    _, conv = _conv_pair(3, 2, 1, "same", 1)
    assert isinstance(conv, keras.layers.Conv2D)
    inputs = keras.Input((None, None, 4))
    model = keras.Model(inputs, conv(inputs))
    model.save(str(tmp_path / "c.keras"))
    loaded = keras.saving.load_model(str(tmp_path / "c.keras"))
    assert type(loaded.layers[-1]) is Conv2D
    x = np.random.default_rng(3).normal(size=(1, 8, 8, 4)).astype("float32")
    np.testing.assert_allclose(keras.ops.convert_to_numpy(loaded(x)),
                               keras.ops.convert_to_numpy(model(x)), rtol=1e-6, atol=1e-6)


# === Conv2DTranspose (keras_seg.ops.conv_transpose) ===

TRANSPOSE_CASES = [  # kernel, strides, padding, output_padding, input size
    (2, 2, "same", None, (5, 7)),
    (3, 2, "same", None, (5, 6)),
    (4, 2, "same", None, (4, 5)),   # FCN's / ENet's even kernels
    (3, 2, "valid", None, (5, 6)),
    (3, 2, "same", 1, (5, 6)),
    (16, 8, "same", None, (3, 4)),  # FCN-8s' last upsampling
    (3, 1, "same", None, (5, 6)),
    (3, 2, "same", (0, 1), (4, 5)),  # JAX's sub-pixel form: an output_padding per axis,
    (4, 2, "same", (1, 1), (4, 5)),  # (TensorFlow's oneDNN refuses (0, 1) for this one)
    (3, 2, "valid", (1, 0), (5, 6)),  # "valid" with it,
    (5, 3, "same", None, (4, 5)),    # a kernel that is not a multiple of the stride,
    (64, 32, "valid", None, (2, 3)),  # FCN-32s' upsampling (crop of the full output)
]


@pytest.mark.parametrize("case", TRANSPOSE_CASES)
def test_conv2d_transpose_same_values_and_training_as_keras(case):
    kernel, strides, padding, output_padding, size = case
    rng = np.random.default_rng(7)
    layers = []
    for cls in (keras.layers.Conv2DTranspose, Conv2DTranspose):
        layer = cls(3, kernel, strides=strides, padding=padding, output_padding=output_padding)
        layer.build((None, None, None, 4))
        layers.append(layer)
    layers[0].set_weights([rng.normal(size=w.shape).astype("float32")
                           for w in layers[0].get_weights()])
    layers[1].set_weights(layers[0].get_weights())
    x = rng.normal(size=(2, *size, 4)).astype("float32")
    a, b = (keras.ops.convert_to_numpy(layer(x)) for layer in layers)
    assert b.shape == a.shape
    np.testing.assert_allclose(b, a, rtol=1e-5, atol=1e-5 * np.abs(a).max())
    models = []
    for layer in layers:
        inputs = keras.Input((None, None, 4))
        model = keras.Model(inputs, layer(inputs))
        model.compile(optimizer=keras.optimizers.SGD(0.05), loss="mse")
        models.append(model)
    y = rng.normal(size=a.shape).astype("float32")
    for model in models:
        model.fit(x, y, batch_size=1, epochs=2, verbose=0, shuffle=False)
    for want, got in zip(models[0].get_weights(), models[1].get_weights(), strict=True):
        np.testing.assert_allclose(got, want, rtol=1e-5, atol=1e-6)
    assert isinstance(layers[1], keras.layers.Conv2DTranspose)


@pytest.mark.skipif(keras.backend.backend() != "torch",
                    reason="the kernel layout kept between inference calls is PyTorch's")
def test_inference_layout_follows_weight_changes():
    import torch

    rng = np.random.default_rng(8)
    x = rng.normal(size=(1, 6, 7, 4)).astype("float32")
    for cls in (Conv2D, Conv2DTranspose):
        ours = cls(3, 3, padding="same", strides=2 if cls is Conv2DTranspose else 1)
        ref = getattr(keras.layers, cls.__name__)(3, 3, padding="same", strides=ours.strides)
        ours.build(x.shape)
        ref.build(x.shape)
        for step in range(3):  # new weights: by assign, by set_weights, by training
            weights = [rng.normal(size=w.shape).astype("float32") for w in ref.get_weights()]
            ref.set_weights(weights)
            if step == 0:
                ours.kernel.assign(weights[0])
                ours.bias.assign(weights[1])
            else:
                ours.set_weights(weights)
            with torch.no_grad():
                for _ in range(2):  # the second call reads the kept layout
                    np.testing.assert_allclose(keras.ops.convert_to_numpy(ours(x)),
                                               keras.ops.convert_to_numpy(ref(x)),
                                               rtol=1e-5, atol=1e-5)
        # a training call drops the kept layout (no second copy of the weights while training)
        from keras_seg import ops as seg_ops

        kernel = ours.kernel.value
        assert id(kernel) in seg_ops._WEIGHTS
        ours(x, training=True)
        assert id(kernel) not in seg_ops._WEIGHTS

"""ContextModule, ImagePooling / ASPP / ASPPSum, AdaptiveAveragePooling2D / PyramidPooling."""

import os

import keras
import numpy as np
import pytest
from support.harness import trainable_params

from keras_seg.layers import (
    ASPP,
    AdaptiveAveragePooling2D,
    ASPPSum,
    ContextModule,
    ImagePooling,
    PyramidPooling,
)
from keras_seg.layers.context import context_module_widths, identity_kernel
from keras_seg.layers.pyramid import adaptive_pool_bounds


def _model(layer, channels):
    inputs = keras.Input((None, None, channels))
    return keras.Model(inputs, layer(inputs))


def _roundtrip(model, x, tmp_path):
    path = os.path.join(str(tmp_path), "layer.keras")
    model.save(path)
    reloaded = keras.saving.load_model(path)
    np.testing.assert_allclose(_run(reloaded, x), _run(model, x), rtol=1e-5, atol=1e-5)
    return reloaded


def _run(model, x):
    """Eager inference call (cheaper than compiling ``predict`` for value checks)."""
    return keras.ops.convert_to_numpy(model(x, training=False))


def numpy_adaptive_avg_pool(x, bins):
    """Direct loop over PyTorch's adaptive_avg_pool2d bins."""
    n, h, w, c = x.shape
    out = np.zeros((n, bins, bins, c), x.dtype)
    for i in range(bins):
        h0, h1 = (i * h) // bins, -(-((i + 1) * h) // bins)
        for j in range(bins):
            w0, w1 = (j * w) // bins, -(-((j + 1) * w) // bins)
            out[:, i, j] = x[:, h0:h1, w0:w1].mean(axis=(1, 2))
    return out


# ---------------------------------------------------------------- ContextModule


def test_basic_context_module_is_identity_at_init(tmp_path):
    c = 5
    model = _model(ContextModule("basic"), c)
    x = np.random.default_rng(0).uniform(0, 3, (2, 19, 13, c)).astype("float32")
    np.testing.assert_allclose(_run(model, x), x, rtol=1e-6, atol=1e-6)
    # 7 3x3 convs C->C and one 1x1 conv, with biases
    assert trainable_params(model) == 7 * (9 * c * c + c) + c * c + c
    layer = model.layers[-1]
    assert [conv.dilation_rate[0] for conv in layer.convs] == [1, 1, 2, 4, 8, 16, 1, 1]
    assert [conv.kernel_size[0] for conv in layer.convs] == [3] * 7 + [1]
    _roundtrip(model, x, tmp_path)


def test_large_context_module_grouped_identity():
    c = 2
    assert context_module_widths(3, "large") == [6, 6, 12, 24, 48, 96, 96, 3]
    x = np.random.default_rng(1).uniform(0, 2, (1, 9, 8, c)).astype("float32")
    exact = _model(ContextModule("large", noise_stddev=0.0), c)
    np.testing.assert_allclose(_run(exact, x), x, rtol=1e-5, atol=1e-5)
    noisy = _model(ContextModule("large", seed=3), c)
    widths = [conv.filters for conv in noisy.layers[-1].convs]
    assert widths == context_module_widths(c, "large")
    out = _run(noisy, x)
    assert not np.allclose(out, x, atol=1e-6)  # the noise is there
    np.testing.assert_allclose(out, x, atol=0.1 * float(x.max()))


def test_identity_kernel_groups():
    k = identity_kernel(3, 4, 8, 2)  # C=2: inputs {0,1},{2,3} -> outputs {0..3},{4..7}
    centre = k[1, 1]
    assert np.count_nonzero(k) == np.count_nonzero(centre) == 2 * 2 * 4
    np.testing.assert_allclose(centre[0, :4], 2 / 8)
    assert centre[0, 4:].sum() == 0 and centre[3, :4].sum() == 0


def test_context_module_bad_arguments():
    with pytest.raises(ValueError, match="variant"):
        ContextModule("huge")
    with pytest.raises(ValueError, match="noise_stddev"):
        ContextModule("large", noise_stddev=-1)


# ---------------------------------------------------------------- ASPP


def test_image_pooling_matches_manual_computation():
    layer = ImagePooling(4)
    model = _model(layer, 3)
    x = np.random.default_rng(2).normal(size=(2, 9, 7, 3)).astype("float32")
    out = _run(model, x)
    conv, bn = layer.branch.layers[0], layer.branch.layers[1]
    pooled = x.mean(axis=(1, 2)) @ keras.ops.convert_to_numpy(conv.kernel)[0, 0]
    gamma, beta, mean, var = (keras.ops.convert_to_numpy(v) for v in
                              (bn.gamma, bn.beta, bn.moving_mean, bn.moving_variance))
    expected = np.maximum((pooled - mean) / np.sqrt(var + bn.epsilon) * gamma + beta, 0)
    np.testing.assert_allclose(out, np.broadcast_to(expected[:, None, None], out.shape),
                               rtol=1e-5, atol=1e-5)


@pytest.mark.parametrize("separable", [False, True])
def test_aspp_dynamic_sizes_params_and_roundtrip(tmp_path, separable):
    c, f = 6, 8
    model = _model(ASPP(f, rates=(2, 3, 5), separable=separable), c)
    for size in ((9, 7), (12, 17)):
        x = np.random.default_rng(0).normal(size=(1, *size, c)).astype("float32")
        assert model.predict(x, verbose=0).shape == (1, *size, f)
    bn = 2 * f
    if separable:
        atrous = 3 * (9 * c + 2 * c + c * f + bn)
    else:
        atrous = 3 * (9 * c * f + bn)
    expected = (c * f + bn) + atrous + (c * f + bn) + (5 * f * f + bn)
    assert trainable_params(model) == expected
    _roundtrip(model, x, tmp_path)


def test_aspp_no_projection_width():
    model = _model(ASPP(4, rates=(1, 2, 3), projection=False), 5)
    assert model.output.shape[-1] == 4 * 5


@pytest.mark.parametrize("hidden", [None, 16])
def test_aspp_sum_is_sum_of_branches(tmp_path, hidden):
    c, classes, rates = 5, 3, (1, 2, 4, 6)
    layer = ASPPSum(classes, rates=rates, hidden_filters=hidden)
    model = _model(layer, c)
    x = np.random.default_rng(4).normal(size=(2, 10, 9, c)).astype("float32")
    out = _run(model, x)
    total = 0
    for branch in layer.branches:
        y = x
        for sub in branch:
            if not isinstance(sub, keras.layers.Dropout):
                y = sub(y)
        total = total + keras.ops.convert_to_numpy(y)
    np.testing.assert_allclose(out, total, rtol=1e-4, atol=1e-4)
    if hidden is None:
        assert trainable_params(model) == 4 * (9 * c * classes + classes)
    else:
        assert trainable_params(model) == 4 * (9 * c * hidden + hidden + hidden * hidden + hidden
                                               + hidden * classes + classes)
    _roundtrip(model, x, tmp_path)


def test_aspp_bad_arguments():
    with pytest.raises(ValueError, match="rates"):
        ASPP(8, rates=())
    with pytest.raises(ValueError, match="filters"):
        ASPP(0)
    with pytest.raises(ValueError, match="rates"):
        ASPPSum(3, rates=(6, -1))
    with pytest.raises(ValueError, match="dropout"):
        ASPPSum(3, dropout=1.5)


# ---------------------------------------------------------------- pyramid pooling


def test_adaptive_pool_bounds_like_pytorch():
    start, end = adaptive_pool_bounds(7, 3)  # torch: [0,3), [2,5), [4,7)
    assert start.tolist() == [0, 2, 4] and end.tolist() == [3, 5, 7]
    start, end = adaptive_pool_bounds(2, 3)  # fewer pixels than bins
    assert start.tolist() == [0, 0, 1] and end.tolist() == [1, 2, 2]


def test_adaptive_average_pooling_matches_numpy_with_dynamic_sizes():
    inputs = keras.Input((None, None, 3))  # dynamic size, compiled predict
    bins = (1, 2, 3, 6)
    model = keras.Model(inputs, [AdaptiveAveragePooling2D(b)(inputs) for b in bins])
    rng = np.random.default_rng(0)
    for size in ((13, 7), (4, 11)):  # 4 < 6 bins: overlapping one-pixel bins
        x = rng.normal(size=(2, *size, 3)).astype("float32")
        for b, out in zip(bins, model.predict(x, verbose=0), strict=True):
            np.testing.assert_allclose(out, numpy_adaptive_avg_pool(x, b), rtol=1e-5, atol=1e-5)


def test_pyramid_pooling_structure_values_and_roundtrip(tmp_path):
    c = 8
    layer = PyramidPooling()
    model = _model(layer, c)
    assert model.output.shape[-1] == 2 * c
    assert trainable_params(model) == 4 * (c * (c // 4) + 2 * (c // 4))
    x = np.random.default_rng(5).normal(size=(2, 13, 10, c)).astype("float32")
    out = _run(model, x)
    np.testing.assert_allclose(out[..., :c], x, rtol=1e-6, atol=1e-6)
    # bin-1 branch: relu(bn(conv(global mean))) broadcast over the map
    conv, bn = layer.convs[0], layer.norms[0]
    pooled = numpy_adaptive_avg_pool(x, 1)[:, 0, 0] @ keras.ops.convert_to_numpy(conv.kernel)[0, 0]
    expected = np.maximum(pooled / np.sqrt(1 + bn.epsilon), 0)  # fresh BN statistics
    np.testing.assert_allclose(out[:, 4, 7, c:c + 2], expected, rtol=1e-5, atol=1e-5)
    # bin-6 branch: bilinear upsampling of relu(bn(conv(6x6 pooling)))
    conv6 = keras.ops.convert_to_numpy(layer.convs[3].kernel)[0, 0]
    grid = np.maximum(numpy_adaptive_avg_pool(x, 6) @ conv6 / np.sqrt(1 + bn.epsilon), 0)
    resized = keras.ops.convert_to_numpy(keras.ops.image.resize(grid, (13, 10)))
    np.testing.assert_allclose(out[..., -2:], resized, rtol=1e-4, atol=1e-4)
    _roundtrip(model, x, tmp_path)


def test_pyramid_pooling_and_aspp_train_with_batch_size_one_and_dynamic_sizes():
    """fit (tf.function / jit) with (None, None) inputs and batches of one image."""
    inputs = keras.Input((None, None, 4))
    x = PyramidPooling()(inputs)
    x = ASPP(8, rates=(1, 2))(x)
    model = keras.Model(inputs, keras.layers.Conv2D(3, 1)(x))
    model.compile(keras.optimizers.SGD(0.05, momentum=0.9),
                  keras.losses.SparseCategoricalCrossentropy(from_logits=True))
    x = np.random.default_rng(0).normal(size=(2, 11, 9, 4)).astype("float32")
    y = (x[..., 0] > 0).astype("int32") + (x[..., 1] > 0)
    history = model.fit(x, y, batch_size=1, epochs=3, verbose=0, shuffle=False)
    losses = history.history["loss"]
    assert np.isfinite(losses).all() and losses[-1] < losses[0]


def test_pyramid_pooling_bad_arguments():
    with pytest.raises(ValueError, match="bins"):
        PyramidPooling(bins=(1, 0))
    with pytest.raises(ValueError, match="filters"):
        PyramidPooling(filters=-2)
    with pytest.raises(ValueError, match="output_size"):
        AdaptiveAveragePooling2D((2, 0))

"""keras_seg.layers.BatchNormalization (fused torch kernel through
keras_seg.ops.fused_batch_norm) computes what keras.layers.BatchNormalization computes, on
every backend: training and inference outputs, moving statistics, gradients through fit,
the fallbacks (mask, channels first, float16, renorm), and serialization."""

import keras
import numpy as np
import pytest

from keras_seg import ops as seg_ops
from keras_seg.layers import BatchNormalization

BACKEND = keras.backend.backend()


def _np(x):
    return keras.ops.convert_to_numpy(x)


def _pair(shape, **kwargs):
    """A Keras layer and a keras-seg layer with the same, non-trivial variables."""
    rng = np.random.default_rng(0)
    ref = keras.layers.BatchNormalization(**kwargs)
    new = BatchNormalization(**kwargs)
    ref.build(shape)
    new.build(shape)
    channels = shape[ref.axis]
    weights = [rng.uniform(0.5, 1.5, channels), rng.normal(size=channels),
               rng.normal(size=channels), rng.uniform(0.5, 2.0, channels)]
    for variable, value in zip((ref.gamma, ref.beta, ref.moving_mean, ref.moving_variance),
                               weights, strict=True):
        variable.assign(value.astype("float32"))
    new.set_weights(ref.get_weights())
    return ref, new


def _data(shape, seed=1, offset=1.0):
    # a mean and a spread per channel
    rng = np.random.default_rng(seed)
    return (rng.normal(size=shape) * rng.uniform(0.3, 3.0, shape[-1])
            + rng.normal(size=shape[-1]) * offset).astype("float32")


@pytest.mark.parametrize("shape", [(4, 9, 14, 6), (3, 5, 7)])
def test_same_outputs_and_moving_statistics_as_keras(shape):
    ref, new = _pair(shape, momentum=0.9, epsilon=1e-5)
    for step in range(3):
        x = _data(shape, seed=step)
        a, b = _np(ref(x, training=True)), _np(new(x, training=True))
        np.testing.assert_allclose(b, a, rtol=1e-5, atol=1e-5 * np.abs(a).max())
    for got, want in zip(new.get_weights(), ref.get_weights(), strict=True):
        np.testing.assert_allclose(got, want, rtol=1e-5, atol=1e-6)
    x = _data(shape, seed=9)
    a, b = _np(ref(x, training=False)), _np(new(x, training=False))
    np.testing.assert_allclose(b, a, rtol=1e-5, atol=1e-5 * np.abs(a).max())
    # a frozen layer normalizes with its moving statistics even in training mode
    ref.trainable = new.trainable = False
    a, b = _np(ref(x, training=True)), _np(new(x, training=True))
    np.testing.assert_allclose(b, a, rtol=1e-5, atol=1e-5 * np.abs(a).max())


def test_batch_statistics_at_least_as_accurate_as_keras():
    """Channels with a large mean and a small spread: Keras' moments (E[x^2] - E[x]^2 in
    float32) lose digits there; the keras-seg layer's output is as close to a float64
    computation as Keras' (on torch: closer)."""
    shape = (4, 9, 14, 6)
    x = _data(shape, offset=20.0)
    ref, new = _pair(shape, epsilon=1e-5)
    gamma, beta = (_np(v).astype("float64") for v in (ref.gamma, ref.beta))
    x64 = x.astype("float64")
    truth = (x64 - x64.mean((0, 1, 2))) / np.sqrt(x64.var((0, 1, 2)) + 1e-5) * gamma + beta
    keras_error = np.abs(_np(ref(x, training=True)) - truth).max()
    ours_error = np.abs(_np(new(x, training=True)) - truth).max()
    assert ours_error <= keras_error * 1.01 + 1e-6
    assert ours_error < 1e-4 * np.abs(truth).max()


def test_same_training_as_keras_in_a_traced_model():
    """conv -> BN -> relu -> conv trained with fit: same weights and statistics."""
    rng = np.random.default_rng(2)
    x = _data((8, 10, 10, 3))
    y = rng.normal(size=(8, 10, 10, 2)).astype("float32")
    trained = []
    for norm in (keras.layers.BatchNormalization, BatchNormalization):
        keras.utils.set_random_seed(0)
        inputs = keras.Input((None, None, 3))
        h = keras.layers.Conv2D(6, 3, padding="same")(inputs)
        h = keras.layers.ReLU()(norm(momentum=0.8)(h))
        model = keras.Model(inputs, keras.layers.Conv2D(2, 1)(h))
        model.compile(optimizer=keras.optimizers.SGD(0.05, momentum=0.9), loss="mse")
        model.fit(x, y, batch_size=4, epochs=3, verbose=0, shuffle=False)
        trained.append(model)
    for a, b in zip(trained[0].get_weights(), trained[1].get_weights(), strict=True):
        np.testing.assert_allclose(b, a, rtol=1e-5, atol=1e-5)
    np.testing.assert_allclose(_np(trained[1](x)), _np(trained[0](x)), rtol=1e-5, atol=1e-5)


def test_fused_kernel_on_torch_only():
    x = _data((2, 4, 4, 3))
    ones, zeros = np.ones(3, "float32"), np.zeros(3, "float32")
    result = seg_ops.fused_batch_norm(x, ones, zeros, zeros, ones, 1e-3, True)
    if BACKEND != "torch":
        assert result is None
        return
    import torch

    out, mean, variance = result
    np.testing.assert_allclose(_np(mean), x.mean(axis=(0, 1, 2)), rtol=1e-5, atol=1e-6)
    # biased variance, as Keras keeps it (torch's running_var would be unbiased)
    np.testing.assert_allclose(_np(variance), x.var(axis=(0, 1, 2)), rtol=1e-5)
    # the layer takes the fused path: torch records one batch-norm node for the backward
    layer = BatchNormalization()
    inputs = torch.tensor(x, requires_grad=True)
    y = layer(inputs, training=True)
    assert "NativeBatchNorm" in type(y.grad_fn.next_functions[0][0]).__name__ + \
        type(y.grad_fn).__name__
    # float16 is not fused (Keras computes in float32 for it)
    assert seg_ops.fused_batch_norm(x.astype("float16"), ones, zeros, zeros, ones,
                                    1e-3, True) is None


@pytest.mark.parametrize("case", ["mask", "channels_first", "float16", "renorm"])
def test_fallbacks_give_keras_numbers(case):
    shape = (2, 5, 6, 4)
    kwargs = {"axis": 1} if case == "channels_first" else {}
    if case == "renorm":
        kwargs = {"renorm": True}
    ref, new = _pair(shape, **kwargs)
    x = _data(shape)
    call = {}
    if case == "mask":
        call["mask"] = np.random.default_rng(3).random(shape[:-1]) > 0.3
    if case == "float16":
        x = x.astype("float16")
    a = _np(ref(x, training=True, **call))
    b = _np(new(x, training=True, **call))
    np.testing.assert_allclose(b.astype("float32"), a.astype("float32"), rtol=1e-5,
                               atol=1e-5 * float(np.abs(a).max()))
    for got, want in zip(new.get_weights(), ref.get_weights(), strict=True):
        np.testing.assert_allclose(got, want, rtol=1e-5, atol=1e-6)


def test_serialization_and_identity(tmp_path):
    shape = (2, 6, 6, 3)
    _, layer = _pair(shape, epsilon=1e-5, momentum=0.97)
    assert isinstance(layer, keras.layers.BatchNormalization)
    inputs = keras.Input((None, None, 3))
    model = keras.Model(inputs, layer(inputs))
    path = str(tmp_path / "bn.keras")
    model.save(path)
    loaded = keras.saving.load_model(path)
    restored = loaded.layers[-1]
    assert type(restored) is BatchNormalization
    assert (restored.epsilon, restored.momentum) == (1e-5, 0.97)
    x = _data(shape)
    np.testing.assert_allclose(_np(loaded(x)), _np(model(x)), rtol=1e-6, atol=1e-6)

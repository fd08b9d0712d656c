"""DANet's attention modules and APCNet's adaptive context module against numpy
references of the papers' equations."""

import keras
import numpy as np
import pytest

from keras_seg.layers import AdaptiveContextModule, ChannelAttention, PositionAttention
from keras_seg.layers.pyramid import adaptive_pool_bounds


def np_softmax(e):
    e = e - e.max(axis=-1, keepdims=True)
    p = np.exp(e)
    return p / p.sum(axis=-1, keepdims=True)


def np_conv1x1(x, conv):
    weights = conv.get_weights()
    y = np.einsum("nhwc,cd->nhwd", x, weights[0][0, 0])
    return y + weights[1] if len(weights) > 1 else y


def np_bn(x, bn):
    gamma, beta, mean, var = bn.get_weights()
    return (x - mean) / np.sqrt(var + bn.epsilon) * gamma + beta


def np_pam(x, layer, gamma):
    n, h, w, c = x.shape
    q = np_conv1x1(x, layer.query_conv).reshape(n, h * w, -1)
    k = np_conv1x1(x, layer.key_conv).reshape(n, h * w, -1)
    v = np_conv1x1(x, layer.value_conv).reshape(n, h * w, c)
    s = np_softmax(q @ k.transpose(0, 2, 1))  # s[i, j]: position i attends to j
    return gamma * (s @ v).reshape(n, h, w, c) + x


def np_cam(x, beta, energy):
    n, h, w, c = x.shape
    a = x.reshape(n, h * w, c).astype("float64")
    e = a.transpose(0, 2, 1) @ a  # (C, C)
    if energy == "max_minus":
        e = e.max(axis=-1, keepdims=True) - e
    att = np_softmax(e)
    out = np.einsum("nij,npj->npi", att, a)  # E_i = sum_j X_ij A_j
    return beta * out.reshape(n, h, w, c) + x


def np_adaptive_pool(x, s):
    n, h, w, c = x.shape
    (r0, r1), (c0, c1) = adaptive_pool_bounds(h, s), adaptive_pool_bounds(w, s)
    out = np.zeros((n, s, s, c))
    for i in range(s):
        for j in range(s):
            out[:, i, j] = x[:, r0[i]:r1[i], c0[j]:c1[j]].mean(axis=(1, 2))
    return out


def np_acm(x, layer):
    s = layer.scale
    y = np.maximum(np_bn(np_conv1x1(np_adaptive_pool(x, s), layer.context_conv),
                         layer.context_bn), 0)
    y = y.reshape(x.shape[0], s * s, -1)
    local = np.maximum(np_bn(np_conv1x1(x, layer.reduce_conv), layer.reduce_bn), 0)
    guided = local + local.mean(axis=(1, 2), keepdims=True)
    aff = 1 / (1 + np.exp(-np_conv1x1(guided, layer.affinity_conv)))
    return local + np.einsum("nhwk,nkc->nhwc", aff, y)


def randomize_bn(layer, rng):
    gamma, beta, mean, var = (w.shape for w in layer.get_weights())
    layer.set_weights([rng.uniform(0.5, 1.5, gamma), rng.normal(0, 0.1, beta),
                       rng.normal(0, 0.1, mean), rng.uniform(0.5, 1.5, var)])


def run(layer, x):
    return keras.ops.convert_to_numpy(layer(x))


@pytest.fixture
def x():
    return np.random.default_rng(0).normal(size=(2, 5, 7, 16)).astype("float32")


def test_position_attention_is_the_identity_at_init(x):
    layer = PositionAttention()
    np.testing.assert_array_equal(run(layer, x), x)  # gamma starts at 0
    assert float(keras.ops.convert_to_numpy(layer.gamma)) == 0.0
    assert layer.query_conv.filters == 2 and layer.value_conv.filters == 16  # C/8, C


def test_position_attention_matches_numpy(x):
    layer = PositionAttention(reduction=4)
    layer.build(x.shape)
    layer.gamma.assign(0.7)
    np.testing.assert_allclose(run(layer, x), np_pam(x, layer, 0.7), rtol=1e-4, atol=1e-4)
    att = keras.ops.convert_to_numpy(layer.attention(x))
    assert att.shape == (2, 35, 35)  # (H W)^2
    np.testing.assert_allclose(att.sum(-1), 1.0, rtol=1e-5)
    # dynamic size: the same layer on another grid
    x2 = x[:, :3, :4]
    np.testing.assert_allclose(run(layer, x2), np_pam(x2, layer, 0.7), rtol=1e-4, atol=1e-4)


@pytest.mark.parametrize("energy", ["paper", "max_minus"])
def test_channel_attention_matches_numpy(x, energy):
    x = x / 4  # keep the softmax away from one-hot so the two energies differ
    layer = ChannelAttention(energy=energy)
    np.testing.assert_array_equal(run(layer, x), x)  # beta starts at 0
    layer.beta.assign(-0.6)
    np.testing.assert_allclose(run(layer, x), np_cam(x, -0.6, energy), rtol=1e-4, atol=1e-4)


def test_channel_energies_differ(x):
    x = x / 4
    paper = keras.ops.convert_to_numpy(ChannelAttention().attention(x))
    code = keras.ops.convert_to_numpy(ChannelAttention(energy="max_minus").attention(x))
    # the paper's softmax favours the most similar channel (itself); the code's the least
    assert (paper[0].argmax(-1) == np.arange(16)).all()
    assert not (code[0].argmax(-1) == np.arange(16)).any()


def test_adaptive_context_module_matches_numpy(x):
    rng = np.random.default_rng(1)
    layer = AdaptiveContextModule(scale=3, filters=8)
    layer.build(x.shape)
    randomize_bn(layer.context_bn, rng)
    randomize_bn(layer.reduce_bn, rng)
    out = run(layer, x)  # inference mode: BN moving statistics
    assert out.shape == (2, 5, 7, 8)
    np.testing.assert_allclose(out, np_acm(x, layer), rtol=1e-4, atol=1e-4)
    _, aff = layer.affinity(x)
    assert tuple(aff.shape) == (2, 5, 7, 9)  # (H, W, s^2)
    x2 = x[:, :2, :4]  # fewer rows than bins: overlapping bins, still exact
    np.testing.assert_allclose(run(layer, x2), np_acm(x2, layer), rtol=1e-4, atol=1e-4)


def test_configs_round_trip():
    # the .keras round trip with weights and outputs: the DANet / APCNet harness cases
    for layer in (PositionAttention(reduction=2), ChannelAttention(energy="max_minus"),
                  AdaptiveContextModule(2, filters=4)):
        config = keras.saving.serialize_keras_object(layer)
        clone = keras.saving.deserialize_keras_object(config)  # no custom_objects
        assert type(clone) is type(layer) and clone.get_config() == layer.get_config()


def test_bad_arguments():
    with pytest.raises(ValueError, match="reduction"):
        PositionAttention(reduction=0)
    with pytest.raises(ValueError, match="energy"):
        ChannelAttention(energy="softmax")
    with pytest.raises(ValueError, match="scale"):
        AdaptiveContextModule(scale=0)
    with pytest.raises(ValueError, match="filters"):
        AdaptiveContextModule(scale=2, filters=2.5)
    with pytest.raises(ValueError, match="channel count"):
        PositionAttention().build((None, None, None, None))

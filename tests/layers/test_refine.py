"""RefineNet and G-FRNet layers: values against direct numpy computations,
dynamic sizes, serialization and argument errors."""

import os

import keras
import numpy as np
import pytest

from keras_seg.layers import (
    ChainedResidualPooling,
    CropToStride,
    GatedRefinement,
    GateUnit,
    MultiResolutionFusion,
    ResidualConvUnit,
)

RNG = np.random.default_rng(0)
BN_SCALE = 1.0 / np.sqrt(1.0 + 1e-3)  # a fresh BatchNormalization at inference


# --- numpy references -----------------------------------------------------------------

def np_conv_same(x, kernel, bias=None):
    """'same' 2-D convolution (cross-correlation) of NHWC ``x`` with an HWIO kernel."""
    kh, kw = kernel.shape[:2]
    pt, pl = (kh - 1) // 2, (kw - 1) // 2
    xp = np.pad(x, ((0, 0), (pt, kh - 1 - pt), (pl, kw - 1 - pl), (0, 0)))
    h, w = x.shape[1:3]
    out = np.zeros(x.shape[:3] + (kernel.shape[3],), "float64")
    for i in range(kh):
        for j in range(kw):
            out += np.einsum("bhwc,cd->bhwd", xp[:, i:i + h, j:j + w], kernel[i, j])
    return out if bias is None else out + bias


def np_maxpool_same(x, k):
    """Stride-1 max pooling with 'same' padding where padded cells never win."""
    p = (k - 1) // 2
    xp = np.pad(x, ((0, 0), (p, k - 1 - p), (p, k - 1 - p), (0, 0)), constant_values=-np.inf)
    h, w = x.shape[1:3]
    windows = [xp[:, i:i + h, j:j + w] for i in range(k) for j in range(k)]
    return np.max(np.stack(windows), axis=0)


def np_bilinear(x, size):
    """Bilinear resize, half-pixel centers, edges clamped (upsampling)."""
    def axis_weights(n_in, n_out):
        src = np.clip((np.arange(n_out) + 0.5) * n_in / n_out - 0.5, 0, n_in - 1)
        lo = np.floor(src).astype(int)
        hi = np.minimum(lo + 1, n_in - 1)
        m = np.zeros((n_out, n_in))
        m[np.arange(n_out), lo] += 1 - (src - lo)
        m[np.arange(n_out), hi] += src - lo
        return m

    rows = axis_weights(x.shape[1], size[0])
    cols = axis_weights(x.shape[2], size[1])
    return np.einsum("ih,bhwc,jw->bijc", rows, x, cols)


def relu(x):
    return np.maximum(x, 0)


def randn(*shape):
    return RNG.normal(size=shape).astype("float32")


def round_trip(tmp_path, layer, inputs):
    """Wrap ``layer`` in a functional model, save, reload, compare; return the output."""
    if isinstance(inputs, list):
        ins = [keras.Input((None, None, x.shape[-1])) for x in inputs]
        model = keras.Model(ins, layer(ins))
    else:
        ins = keras.Input((None, None, inputs.shape[-1]))
        model = keras.Model(ins, layer(ins))
    before = keras.ops.convert_to_numpy(model(inputs))
    path = os.path.join(str(tmp_path), "layer.keras")
    model.save(path)
    reloaded = keras.saving.load_model(path)
    after = keras.ops.convert_to_numpy(reloaded(inputs))
    np.testing.assert_allclose(after, before, rtol=1e-5, atol=1e-5)
    assert type(reloaded.layers[-1]) is type(layer)
    assert reloaded.layers[-1].get_config() == layer.get_config()
    return before


# --- RefineNet ------------------------------------------------------------------------

def test_rcu_with_zero_kernels_is_identity():
    x = randn(2, 9, 7, 5)  # negative values too: the shortcut carries x, not relu(x)
    rcu = ResidualConvUnit(kernel_initializer="zeros")
    np.testing.assert_allclose(keras.ops.convert_to_numpy(rcu(x)), x, atol=1e-6)
    assert len(rcu.trainable_weights) == 4  # two convs with biases, no BN


def test_rcu_matches_numpy():
    x = randn(1, 6, 5, 4)
    rcu = ResidualConvUnit()
    rcu(x)
    k1, b1, k2, b2 = (randn(*w.shape) * 0.3 for w in rcu.get_weights())
    rcu.set_weights([k1, b1, k2, b2])
    expected = x + np_conv_same(relu(np_conv_same(relu(x), k1, b1)), k2, b2)
    np.testing.assert_allclose(keras.ops.convert_to_numpy(rcu(x)), expected,
                               rtol=1e-4, atol=1e-4)


def test_crp_with_zero_kernels_is_relu():
    x = randn(2, 8, 6, 3)
    crp = ChainedResidualPooling(kernel_initializer="zeros")
    np.testing.assert_allclose(keras.ops.convert_to_numpy(crp(x)), relu(x), atol=1e-6)


@pytest.mark.parametrize("num_blocks", [2, 3])
def test_crp_matches_numpy(num_blocks):
    x = randn(1, 7, 6, 3)
    crp = ChainedResidualPooling(num_blocks=num_blocks)
    crp(x)
    kernels = [randn(3, 3, 3, 3) * 0.4 for _ in range(num_blocks)]
    crp.set_weights(kernels)  # no biases by default
    assert len(crp.trainable_weights) == num_blocks
    r = relu(x.astype("float64"))
    out, path = r, r
    for k in kernels:
        path = np_conv_same(np_maxpool_same(path, 5), k)
        out = out + path
    np.testing.assert_allclose(keras.ops.convert_to_numpy(crp(x)), out, rtol=1e-4, atol=1e-4)


def test_mrf_fuses_sizes_that_are_not_multiples():
    big, small = randn(2, 13, 11, 3), randn(2, 7, 6, 5)
    mrf = MultiResolutionFusion(4)
    out = keras.ops.convert_to_numpy(mrf([small, big]))  # order does not matter
    assert out.shape == (2, 13, 11, 4)
    k_small, k_big = mrf.get_weights()
    expected = np_bilinear(np_conv_same(small, k_small), (13, 11)) + np_conv_same(big, k_big)
    np.testing.assert_allclose(out, expected, rtol=1e-4, atol=1e-4)


def test_mrf_dynamic_sizes_in_a_compiled_model():
    ins = [keras.Input((None, None, 3)), keras.Input((None, None, 2))]
    mrf = MultiResolutionFusion(2, name="mrf")
    model = keras.Model(ins, mrf(ins))
    a, b = randn(1, 9, 10, 3), randn(1, 5, 4, 2)
    got = model.predict([a, b], verbose=0)  # traced with unknown sizes on TF
    ka, kb = mrf.get_weights()
    expected = np_conv_same(a, ka) + np_bilinear(np_conv_same(b, kb), (9, 10))
    np.testing.assert_allclose(got, expected, rtol=1e-4, atol=1e-4)


def test_refinenet_layers_serialize(tmp_path):
    x = randn(1, 10, 9, 4)
    round_trip(tmp_path, ResidualConvUnit(use_bias=False, name="rcu"), x)
    round_trip(tmp_path, ChainedResidualPooling(num_blocks=3, pool_size=3, name="crp"), x)
    out = round_trip(tmp_path, MultiResolutionFusion(6, name="mrf"),
                     [x, randn(1, 5, 5, 2), randn(1, 3, 3, 3)])
    assert out.shape == (1, 10, 9, 6)


def test_refinenet_layers_bad_arguments():
    with pytest.raises(ValueError, match="filters"):
        MultiResolutionFusion(0)
    with pytest.raises(ValueError, match="interpolation"):
        MultiResolutionFusion(8, interpolation="cubic")
    with pytest.raises(ValueError, match="num_blocks"):
        ChainedResidualPooling(num_blocks=0)
    with pytest.raises(ValueError, match="kernel_size"):
        ResidualConvUnit(kernel_size=-3)
    with pytest.raises(ValueError, match="list of tensors"):
        MultiResolutionFusion(4)(randn(1, 4, 4, 2))


# --- G-FRNet --------------------------------------------------------------------------

def identity_kernel(c):
    k = np.zeros((3, 3, c, c), "float32")
    k[1, 1] = np.eye(c)
    return k


def test_gate_unit_multiplies_with_identity_weights():
    shallow, deep = randn(2, 9, 7, 3), randn(2, 5, 4, 3)  # 5 = ceil(9 / 2)
    gate = GateUnit(3)
    gate([shallow, deep])
    gate.shallow_conv.set_weights([identity_kernel(3)])
    gate.deep_conv.set_weights([identity_kernel(3)])
    out = keras.ops.convert_to_numpy(gate([shallow, deep], training=False))
    expected = relu(shallow * BN_SCALE) * np_bilinear(relu(deep * BN_SCALE), (9, 7))
    np.testing.assert_allclose(out, expected, rtol=1e-4, atol=1e-5)
    # 2 convs (no bias) + 2 BN (gamma, beta) trainable
    assert len(gate.trainable_weights) == 6


def test_gate_unit_matches_numpy_with_random_weights():
    shallow, deep = randn(1, 8, 6, 2), randn(1, 4, 3, 5)
    gate = GateUnit(4)
    gate([shallow, deep])
    ks, kd = randn(3, 3, 2, 4) * 0.5, randn(3, 3, 5, 4) * 0.5
    gate.shallow_conv.set_weights([ks])
    gate.deep_conv.set_weights([kd])
    out = keras.ops.convert_to_numpy(gate([shallow, deep], training=False))
    s = relu(np_conv_same(shallow, ks) * BN_SCALE)
    d = np_bilinear(relu(np_conv_same(deep, kd) * BN_SCALE), (8, 6))
    np.testing.assert_allclose(out, s * d, rtol=1e-4, atol=1e-4)


def test_gated_refinement_matches_numpy():
    gated, label_map = randn(2, 11, 9, 4), randn(2, 6, 5, 3)
    ru = GatedRefinement(3)
    out = keras.ops.convert_to_numpy(ru([gated, label_map], training=False))
    assert out.shape == (2, 11, 9, 3)
    ka = ru.feature_conv.get_weights()[0]
    kb, bb = ru.refine_conv.get_weights()
    bb = RNG.normal(size=bb.shape).astype("float32")
    ru.refine_conv.set_weights([kb, bb])
    out = keras.ops.convert_to_numpy(ru([gated, label_map], training=False))
    g = np_conv_same(gated, ka) * BN_SCALE
    up = np_bilinear(label_map, (11, 9))
    expected = np_conv_same(np.concatenate([g, up], axis=-1), kb, bb)
    np.testing.assert_allclose(out, expected, rtol=1e-4, atol=1e-4)


def test_crop_to_stride():
    x = randn(1, 8, 6, 2)  # a stride-4 map of a 32x24 padded image
    image = np.zeros((1, 29, 17, 3), "float32")
    out = keras.ops.convert_to_numpy(CropToStride(4)([x, image]))
    np.testing.assert_array_equal(out, x[:, :8, :5])  # ceil(29/4)=8, ceil(17/4)=5


def test_gfrnet_layers_serialize(tmp_path):
    shallow, deep = randn(1, 9, 8, 3), randn(1, 5, 4, 6)
    out = round_trip(tmp_path, GateUnit(5, name="gate"), [shallow, deep])
    assert out.shape == (1, 9, 8, 5)
    out = round_trip(tmp_path, GatedRefinement(2, interpolation="nearest", name="ru"),
                     [shallow, randn(1, 5, 4, 2)])
    assert out.shape == (1, 9, 8, 2)
    out = round_trip(tmp_path, CropToStride(2, name="crop"), [shallow, randn(1, 15, 13, 1)])
    assert out.shape == (1, 8, 7, 3)


def test_gfrnet_layers_bad_arguments():
    with pytest.raises(ValueError, match="filters"):
        GateUnit(0)
    with pytest.raises(ValueError, match="num_classes"):
        GatedRefinement(-1)
    with pytest.raises(ValueError, match="stride"):
        CropToStride(0)
    with pytest.raises(ValueError, match="two tensors"):
        GateUnit(4)(randn(1, 4, 4, 2))
    with pytest.raises(ValueError, match="num_classes = 3"):
        GatedRefinement(3)([randn(1, 4, 4, 2), randn(1, 2, 2, 5)])

"""MaxPoolingWithArgmax2D / MaxUnpooling2D against torch's max_pool2d / max_unpool2d
(torch is only the reference here), and FCN's bilinear deconvolution initializer."""

import keras
import numpy as np
import pytest
import torch

from keras_seg.layers import BilinearUpsampling, MaxPoolingWithArgmax2D, MaxUnpooling2D
from keras_seg.layers.initializers import bilinear_kernel_1d


def to_numpy(x):
    return keras.ops.convert_to_numpy(x)


def torch_pool(x, k, ceil_mode):
    values, indices = torch.nn.functional.max_pool2d(
        torch.tensor(x).permute(0, 3, 1, 2), k, return_indices=True, ceil_mode=ceil_mode)
    return values, indices


def nchw_to_nhwc(t):
    return t.permute(0, 2, 3, 1).detach().numpy()


def gradient(fn, x):
    """d sum(fn(x)) / dx with the current backend's autodiff."""
    backend = keras.backend.backend()
    if backend == "tensorflow":
        import tensorflow as tf

        xt = tf.constant(x)
        with tf.GradientTape() as tape:
            tape.watch(xt)
            total = tf.reduce_sum(fn(xt))
        return tape.gradient(total, xt).numpy()
    if backend == "jax":
        import jax

        return np.asarray(jax.jit(jax.grad(lambda v: fn(v).sum()))(x))
    xt = torch.tensor(x, requires_grad=True)
    fn(xt).sum().backward()
    return xt.grad.numpy()


CASES = [  # (H, W, pool_size, padding)
    (8, 6, 2, "valid"),
    (7, 9, 2, "valid"),
    (7, 9, 2, "same"),
    (11, 10, 3, "valid"),
    (11, 10, 3, "same"),
]


def pool_unpool_model(k, padding):
    """[x, values] -> [pooled(x), indices, unpool(values at x's maxima)], run compiled."""
    x_in = keras.Input((None, None, 3))
    v_in = keras.Input((None, None, 3))
    pooled, indices = MaxPoolingWithArgmax2D(k, padding=padding)(x_in)
    unpooled = MaxUnpooling2D(k)([v_in, indices, x_in])
    return keras.Model([x_in, v_in], [pooled, indices, unpooled])


@pytest.mark.parametrize("h,w,k,padding", CASES)
def test_pool_and_unpool_match_torch(h, w, k, padding):
    rng = np.random.default_rng(h * w + k)
    x = rng.normal(size=(2, h, w, 3)).astype("float32")  # continuous: no ties
    ref_values, ref_indices = torch_pool(x, k, ceil_mode=padding == "same")
    values = rng.normal(size=tuple(ref_values.shape)).astype("float32").transpose(0, 2, 3, 1)
    pooled, indices, unpooled = pool_unpool_model(k, padding).predict_on_batch([x, values])
    np.testing.assert_array_equal(pooled, nchw_to_nhwc(ref_values))
    np.testing.assert_array_equal(indices, nchw_to_nhwc(ref_indices))
    assert indices.dtype == np.int32

    ref = torch.nn.functional.max_unpool2d(torch.tensor(values).permute(0, 3, 1, 2),
                                           ref_indices, k, output_size=(h, w))
    assert tuple(unpooled.shape) == (2, h, w, 3)  # the pre-pooling size, odd sides too
    np.testing.assert_array_equal(to_numpy(unpooled), nchw_to_nhwc(ref))


def test_gradients_flow_through_the_values():
    rng = np.random.default_rng(1)
    x = rng.normal(size=(2, 7, 6, 2)).astype("float32")
    weights = rng.normal(size=(2, 3, 3, 2)).astype("float32")
    pool = MaxPoolingWithArgmax2D()
    w_t = keras.ops.convert_to_tensor(weights)
    grad_x = gradient(lambda t: pool(t)[0] * w_t, x)
    xt = torch.tensor(x).permute(0, 3, 1, 2).requires_grad_(True)
    (torch.nn.functional.max_pool2d(xt, 2) * torch.tensor(weights).permute(0, 3, 1, 2)).sum() \
        .backward()
    np.testing.assert_allclose(grad_x, nchw_to_nhwc(xt.grad), atol=1e-6)

    _, indices = pool(x)
    upstream = rng.normal(size=x.shape).astype("float32")
    unpool = MaxUnpooling2D()
    up_t = keras.ops.convert_to_tensor(upstream)
    grad_v = gradient(lambda v: unpool([v, indices, x]) * up_t,
                      np.ones((2, 3, 3, 2), "float32"))
    # d/dv of sum(unpool(v) * G) is G read at the stored positions
    flat = upstream.transpose(0, 3, 1, 2).reshape(2, 2, -1)
    idx = to_numpy(indices).transpose(0, 3, 1, 2).reshape(2, 2, -1)
    expected = np.take_along_axis(flat, idx, axis=-1).reshape(2, 2, 3, 3).transpose(0, 2, 3, 1)
    np.testing.assert_allclose(grad_v, expected, atol=1e-6)


def test_pair_in_a_model_trains_and_round_trips(tmp_path):
    inputs = keras.Input((None, None, 3))
    pooled, indices = MaxPoolingWithArgmax2D(name="pool")(inputs)
    y = keras.layers.Conv2D(3, 3, padding="same")(pooled)
    outputs = MaxUnpooling2D(name="unpool")([y, indices, inputs])
    model = keras.Model(inputs, outputs)
    rng = np.random.default_rng(2)
    x = rng.normal(size=(2, 9, 7, 3)).astype("float32")
    model.compile(keras.optimizers.SGD(0.05), "mse")
    history = model.fit(x, x, epochs=3, verbose=0)
    assert history.history["loss"][-1] < history.history["loss"][0]
    other = rng.normal(size=(1, 13, 6, 3)).astype("float32")  # another size at predict time
    out = model.predict(other, verbose=0)
    assert out.shape == (1, 13, 6, 3)
    path = str(tmp_path / "pool.keras")
    model.save(path)
    reloaded = keras.saving.load_model(path)
    np.testing.assert_allclose(reloaded.predict(other, verbose=0), out, atol=1e-6)
    assert reloaded.get_layer("pool").get_config()["pool_size"] == 2


def test_ties_and_mixed_precision():
    x = np.zeros((1, 3, 2, 1), "float32")
    x[0, 1, 0, 0] = x[0, 1, 1, 0] = 5.0  # a tie: the first position in the window wins
    pooled, indices, _ = pool_unpool_model(2, "valid").predict_on_batch([x, x[:, :1]])
    assert pooled.ravel().tolist() == [5.0]
    assert indices.ravel().tolist() == [2]  # row 1, col 0

    keras.config.set_dtype_policy("mixed_bfloat16")
    model = pool_unpool_model(2, "same")
    x = np.random.default_rng(3).normal(size=(1, 5, 5, 3)).astype("float32")
    pooled, indices, unpooled = model.predict_on_batch([x, x[:, :3, :3]])
    assert pooled.shape == (1, 3, 3, 3) and unpooled.shape == (1, 5, 5, 3)
    assert str(model.outputs[0].dtype) == "bfloat16" and indices.dtype == np.int32


def test_bad_arguments():
    with pytest.raises(ValueError, match="pool_size"):
        MaxPoolingWithArgmax2D(0)
    with pytest.raises(ValueError, match="pool_size"):
        MaxUnpooling2D((2, 2))
    with pytest.raises(ValueError, match="padding"):
        MaxPoolingWithArgmax2D(2, padding="full")
    with pytest.raises(ValueError, match="filters equal"):
        keras.layers.Conv2DTranspose(4, 4, strides=2, kernel_initializer=BilinearUpsampling())(
            np.zeros((1, 3, 3, 2), "float32"))


def test_bilinear_filter_values():
    # FCN's filter for the x2 deconvolution (k=4): [0.25, 0.75, 0.75, 0.25]
    np.testing.assert_allclose(bilinear_kernel_1d(4), [0.25, 0.75, 0.75, 0.25])
    # x3 deconvolution (k = 2 * 3 - 3 % 2 = 5): centred, peak 1
    np.testing.assert_allclose(bilinear_kernel_1d(5), [1 / 3, 2 / 3, 1.0, 2 / 3, 1 / 3])
    kernel = to_numpy(BilinearUpsampling()((4, 4, 3, 3)))
    assert np.count_nonzero(kernel[:, :, 0, 1]) == 0  # per-class diagonal
    np.testing.assert_allclose(kernel[:, :, 2, 2], np.outer([0.25, 0.75, 0.75, 0.25],
                                                            [0.25, 0.75, 0.75, 0.25]))


def test_bilinear_deconvolution_equals_bilinear_upsampling():
    for stride in (2, 3, 8, 32):
        x = np.random.default_rng(stride).normal(size=(1, 5, 4, 3)).astype("float32")
        deconv = keras.layers.Conv2DTranspose(3, 2 * stride, strides=stride, padding="same",
                                              use_bias=False,
                                              kernel_initializer=BilinearUpsampling())
        y = to_numpy(deconv(x))
        ref = to_numpy(keras.ops.image.resize(x, (5 * stride, 4 * stride),
                                              interpolation="bilinear", antialias=False))
        assert y.shape == ref.shape
        s = stride  # borders differ (zero padding vs edge clamping); the interior must agree
        np.testing.assert_allclose(y[:, s:-s, s:-s], ref[:, s:-s, s:-s], atol=1e-5)
        assert np.abs(y - ref).max() > 0.1  # ...and the check above is not vacuous


def test_bilinear_initializer_serializes():
    layer = keras.layers.Conv2DTranspose(2, 4, strides=2, kernel_initializer=BilinearUpsampling())
    clone = keras.layers.Conv2DTranspose.from_config(layer.get_config())
    assert isinstance(clone.kernel_initializer, BilinearUpsampling)


@pytest.mark.skipif(keras.backend.backend() != "tensorflow",
                    reason="ONNX export goes through the TensorFlow backend (DESIGN.md)")
def test_pair_exports_to_onnx_at_two_sizes():
    import onnxruntime
    import tensorflow as tf
    import tf2onnx

    model = pool_unpool_model(2, "valid")
    spec = (tf.TensorSpec((None, None, None, 3), tf.float32, name="x"),
            tf.TensorSpec((None, None, None, 3), tf.float32, name="v"))
    proto, _ = tf2onnx.convert.from_function(tf.function(lambda x, v: model([x, v])),
                                             input_signature=spec, opset=17)
    session = onnxruntime.InferenceSession(proto.SerializeToString())
    rng = np.random.default_rng(4)
    for h, w in ((9, 7), (16, 12)):
        x = rng.normal(size=(1, h, w, 3)).astype("float32")
        values = rng.normal(size=(1, h // 2, w // 2, 3)).astype("float32")
        _, indices, unpooled = session.run(None, {"x": x, "v": values})
        ref_values, ref_indices = torch_pool(x, 2, ceil_mode=False)
        ref = torch.nn.functional.max_unpool2d(torch.tensor(values).permute(0, 3, 1, 2),
                                               ref_indices, 2, output_size=(h, w))
        np.testing.assert_array_equal(indices, nchw_to_nhwc(ref_indices))
        np.testing.assert_array_equal(unpooled, nchw_to_nhwc(ref))

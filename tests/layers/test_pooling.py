"""MaxPoolingWithArgmax2D / MaxUnpooling2D against torch's max_pool2d / max_unpool2d
(torch is only the reference here), and FCN's bilinear deconvolution initializer."""

import keras
import numpy as np
import pytest
import torch

from keras_seg import ops as seg_ops
from keras_seg.layers import (
    BilinearUpsampling,
    MaxPooling2D,
    MaxPoolingWithArgmax2D,
    MaxUnpooling2D,
)
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
    pooled, indices, _ = pool_unpool_model(2, "valid").predict_on_batch([x, x[:, :1, :1]])
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
    # traced as keras_seg.export does: in portable_graph, the keras.ops formulation (tf2onnx
    # has no conversion of MaxPoolGradWithArgmax, TensorFlow's fast path on CPU)
    with seg_ops.portable_graph():
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


# --- TensorFlow: its own kernels (keras_seg.ops.max_pool_with_argmax / max_unpool, on CPU)
# against the keras.ops formulation, which the same layers use inside ops.portable_graph()

tf_only = pytest.mark.skipif(
    keras.backend.backend() != "tensorflow",
    reason="TensorFlow-only fast path (MaxPoolWithArgmax / MaxPoolGradWithArgmax kernels); "
           "the other backends have the keras.ops formulation only")


def on_both_paths(fn, *args, **kwargs):
    """``fn(*args, **kwargs)`` on the backend's kernels (TensorFlow, PyTorch), then run again in
    ``portable_graph``, on the layers' ``keras.ops`` formulation."""
    fast = fn(*args, **kwargs)
    with seg_ops.portable_graph():
        reference = fn(*args, **kwargs)
    return fast, reference


def assert_same(fast, reference):
    for a, b in zip(fast, reference, strict=True):
        a, b = np.asarray(a), np.asarray(b)
        assert a.dtype == b.dtype and a.shape == b.shape
        np.testing.assert_array_equal(a, b)  # exact: values, -inf, indices, routed gradients


def pooled_size(n, k, padding):
    return -(-n // k) if padding == "same" else n // k


def make_input(kind, shape, rng):
    if kind == "normal":
        return rng.normal(size=shape).astype("float32")
    if kind == "constant":  # every window a tie of k*k equal values
        return np.full(shape, 0.5, "float32")
    if kind == "repeated":  # many ties among 3 values
        return rng.integers(0, 3, size=shape).astype("float32")
    x = rng.normal(size=shape).astype("float32")  # "-inf": scattered, and whole windows
    x[rng.random(shape) < 0.4] = -np.inf
    x[:, :3, :3, 0] = -np.inf
    x[:, -1:, :, -1] = -np.inf  # the partial windows of "same" padding: -inf beside -inf
    return x


def pool_unpool_grads(x, k, padding, dtype, upstream, weights, values=None, indices=None):
    """Eager: pooled, indices, d sum(pooled * upstream) / dx, and the unpooling of
    ``values`` (pooled * weights by default) at ``indices`` (the pooling's by default) with
    d sum(unpooled * upstream2) / dvalues, where upstream2 = x with -inf as 0."""
    import tensorflow as tf

    pool = MaxPoolingWithArgmax2D(k, padding=padding, dtype=dtype)
    unpool = MaxUnpooling2D(k, dtype=dtype)
    xt = tf.constant(x)
    with tf.GradientTape(persistent=True) as tape:
        tape.watch(xt)
        pooled, pool_indices = pool(xt)
        loss = tf.reduce_sum(tf.cast(pooled, "float32") * upstream)
        vt = tf.cast(pooled, "float32") * weights if values is None else tf.constant(values)
        tape.watch(vt)
        unpooled = unpool([vt, pool_indices if indices is None else indices, xt])
        upstream2 = np.where(np.isfinite(x), x, 0.0).astype("float32")
        loss2 = tf.reduce_sum(tf.cast(unpooled, "float32") * upstream2)
    grad_x = tape.gradient(loss, xt)
    grad_v = tape.gradient(loss2, vt)
    grad_chain = tape.gradient(loss2, xt) if values is None else grad_x  # through both layers
    return (pooled, pool_indices, grad_x, unpooled, grad_v, grad_chain)


PARITY_CASES = [  # (H, W, k, padding)
    (8, 6, 2, "valid"), (7, 9, 2, "valid"), (7, 9, 2, "same"),
    (11, 10, 3, "valid"), (11, 10, 3, "same"), (9, 9, 3, "same"),
]


@tf_only
@pytest.mark.parametrize("h,w,k,padding", PARITY_CASES)
@pytest.mark.parametrize("kind", ["normal", "constant", "repeated", "-inf"])
def test_tensorflow_kernels_match_the_keras_ops_formulation(h, w, k, padding, kind):
    rng = np.random.default_rng(h * w * k + len(kind))
    for channels, dtype in ((5, "float32"), (4, "float32"), (1, "float32"),
                            (4, "float16"), (3, "bfloat16")):
        x = make_input(kind, (3, h, w, channels), rng)
        out = (3, pooled_size(h, k, padding), pooled_size(w, k, padding), channels)
        upstream = rng.normal(size=out).astype("float32")
        weights = rng.normal(size=out).astype("float32")
        fast, reference = on_both_paths(pool_unpool_grads, x, k, padding, dtype, upstream,
                                        weights)
        assert_same(fast, reference)
        assert fast[0].dtype.name == dtype and fast[1].dtype.name == "int32"


def window_indices(h, w, k, oh, ow, channels, rng):
    """Any valid indices (not from a pooling): per window a random cell inside the plane."""
    rows = np.arange(oh).reshape(1, -1, 1, 1) * k + rng.integers(0, k, size=(2, oh, ow,
                                                                              channels))
    cols = np.arange(ow).reshape(1, 1, -1, 1) * k + rng.integers(0, k, size=(2, oh, ow,
                                                                              channels))
    return (np.minimum(rows, h - 1) * w + np.minimum(cols, w - 1)).astype("int32")


@tf_only
@pytest.mark.parametrize("h,w,k,oh,ow", [
    (8, 6, 2, 4, 3),    # exact
    (7, 9, 2, 3, 4),    # "valid" pooling dropped a row and a column: zeros there
    (7, 9, 2, 4, 5),    # "same": cropped
    (11, 10, 3, 3, 3),  # "valid", k=3
    (11, 10, 3, 4, 4),  # "same", k=3
    (9, 12, 2, 3, 4),   # values smaller than the plane: zeros beyond
])
def test_unpooling_of_any_window_indices_matches(h, w, k, oh, ow):
    rng = np.random.default_rng(h * w + oh)
    x = rng.normal(size=(2, h, w, 4)).astype("float32")
    values = rng.normal(size=(2, oh, ow, 4)).astype("float32")
    indices = window_indices(h, w, k, oh, ow, 4, rng)
    padding = "same" if oh * k >= h and h % k else "valid"
    upstream = np.zeros((2, pooled_size(h, k, padding), pooled_size(w, k, padding), 4),
                        "float32")
    fast, reference = on_both_paths(pool_unpool_grads, x, k, padding, "float32", upstream,
                                    None, values=values, indices=indices)
    assert_same(fast[3:5], reference[3:5])
    assert np.count_nonzero(np.asarray(fast[3])) == values.size  # every value placed once


def traced(k, padding, channels):
    """A tf.function over (None, None) sizes: pooled, indices, unpooled and the gradients
    of a pool -> scale -> unpool chain, traced on the current path."""
    import tensorflow as tf

    pool, unpool = MaxPoolingWithArgmax2D(k, padding=padding), MaxUnpooling2D(k)
    spec = tf.TensorSpec((None, None, None, channels), tf.float32)

    @tf.function(input_signature=[spec, spec])
    def step(x, upstream):
        with tf.GradientTape() as tape:
            tape.watch(x)
            pooled, indices = pool(x)
            unpooled = unpool([pooled * 1.5 - 0.25, indices, x])
            loss = tf.reduce_sum(unpooled * upstream)
        return pooled, indices, unpooled, tape.gradient(loss, x)

    ops_in_graph = {op.type for op in step.get_concrete_function().graph.get_operations()}
    for function in step.get_concrete_function().graph._functions.values():  # cond branches
        ops_in_graph |= {node.op for node in function.cached_definition.node_def}
    return step, ops_in_graph


@tf_only
@pytest.mark.parametrize("k,padding", [(2, "valid"), (2, "same"), (3, "valid"), (3, "same")])
def test_traced_with_dynamic_sizes_matches(k, padding):
    rng = np.random.default_rng(k)
    (fast, fast_ops), (reference, reference_ops) = on_both_paths(traced, k, padding, 6)
    assert {"MaxPoolWithArgmax", "MaxPoolGradWithArgmax"} <= fast_ops
    assert not {"MaxPoolWithArgmax", "MaxPoolGradWithArgmax"} & reference_ops
    for shape in ((2, 12, 12, 6), (3, 13, 11, 6), (1, 7, 16, 6)):  # even, odd, mixed
        x = make_input("repeated", shape, rng) + rng.normal(size=shape).astype(
            "float32") * (rng.random(shape) < 0.5)
        upstream = rng.normal(size=shape).astype("float32")
        assert_same([t.numpy() for t in fast(x, upstream)],
                    [t.numpy() for t in reference(x, upstream)])


@tf_only
def test_int64_kernel_indices_match(monkeypatch):
    # images of 2**31 values or more take int64 indices in the kernel (static or, in a
    # tf.function, chosen at run time): forced here by lowering the limit
    monkeypatch.setattr(seg_ops, "_INT32_LIMIT", 1)
    rng = np.random.default_rng(5)
    x = make_input("repeated", (2, 9, 7, 3), rng)
    upstream = rng.normal(size=(2, 5, 4, 3)).astype("float32")
    fast, reference = on_both_paths(pool_unpool_grads, x, 2, "same", "float32", upstream,
                                    upstream)
    assert_same(fast, reference)
    (step, _), (step_ref, _) = on_both_paths(traced, 3, "same", 3)
    up = rng.normal(size=x.shape).astype("float32")
    assert_same([t.numpy() for t in step(x, up)], [t.numpy() for t in step_ref(x, up)])


def tiny_segnet():
    inputs = keras.Input((None, None, 3))
    x1 = keras.layers.Conv2D(6, 3, padding="same", activation="relu")(inputs)
    p1, i1 = MaxPoolingWithArgmax2D(2, padding="same")(x1)
    x2 = keras.layers.Conv2D(6, 3, padding="same", activation="relu")(p1)
    p2, i2 = MaxPoolingWithArgmax2D(2)(x2)
    y = keras.layers.Conv2D(6, 3, padding="same", activation="relu")(p2)
    y = MaxUnpooling2D(2)([y, i2, x2])
    y = keras.layers.Conv2D(6, 3, padding="same", activation="relu")(y)
    y = MaxUnpooling2D(2)([y, i1, x1])
    return keras.Model(inputs, keras.layers.Conv2D(2, 1)(y))


@pytest.mark.skipif(keras.backend.backend() not in ("tensorflow", "torch"),
                    reason="TensorFlow's and PyTorch's kernels against the keras.ops "
                           "formulation; JAX has the formulation only")
def test_segnet_like_model_fits_to_the_same_weights():
    rng = np.random.default_rng(6)
    x = rng.normal(size=(4, 13, 11, 3)).astype("float32")
    y = rng.normal(size=(4, 13, 11, 2)).astype("float32")
    initial = tiny_segnet().get_weights()

    def fit():
        model = tiny_segnet()
        model.set_weights(initial)
        model.compile(keras.optimizers.SGD(0.1), "mse")
        model.fit(x, y, batch_size=2, epochs=1, shuffle=False, verbose=0)  # 2 steps
        return model.get_weights()

    fast, reference = on_both_paths(fit)
    assert max(np.abs(a - b).max() for a, b in zip(fast, reference, strict=True)) <= 1e-5
    assert max(np.abs(a - b).max() for a, b in zip(fast, initial, strict=True)) > 1e-3


@tf_only
def test_xla_compiled_model_uses_the_keras_ops_formulation():
    # jit_compile=True: TensorFlow's XLA has no MaxPoolWithArgmax, the layers fall back
    x = np.random.default_rng(7).normal(size=(2, 9, 10, 3)).astype("float32")
    model = tiny_segnet()
    eager = model.predict_on_batch(x)
    model.compile(keras.optimizers.SGD(0.1), "mse", jit_compile=True)
    np.testing.assert_allclose(model.predict_on_batch(x), eager, atol=1e-5)
    model.train_on_batch(x, np.zeros((2, 9, 10, 2), "float32"))


@tf_only
def test_an_index_outside_the_plane_raises_instead_of_aborting():
    import tensorflow as tf

    values = np.ones((1, 2, 2, 1), "float32")
    for bad in (16, -1):
        indices = np.array([0, 3, 9, bad], "int32").reshape(1, 2, 2, 1)
        with pytest.raises(tf.errors.InvalidArgumentError, match="outside the unpooled plane"):
            MaxUnpooling2D(2)([values, indices, np.zeros((1, 4, 4, 1), "float32")])


@pytest.mark.skipif(keras.backend.backend() != "jax",
                    reason="checks that the shims stay off on JAX (TensorFlow and PyTorch "
                           "have their own kernels)")
def test_tensorflow_shims_are_off_on_other_backends():
    x = np.zeros((1, 4, 4, 2), "float32")
    assert seg_ops.max_pool_with_argmax(x, 2, "valid") is None
    assert seg_ops.max_unpool(x[:, :2, :2], np.zeros((1, 2, 2, 2), "int32"), (4, 4), 2) is None


# --- PyTorch: max_pool2d(return_indices=True) / max_unpool2d against the keras.ops
# formulation (portable_graph), values, indices and gradients

torch_only = pytest.mark.skipif(keras.backend.backend() != "torch",
                                reason="PyTorch-only fast path (max_pool2d / max_unpool2d)")


def torch_pool_unpool_grads(x, k, padding, upstream, weights, values=None, indices=None):
    """As pool_unpool_grads, with torch's autograd."""
    import torch

    xt = torch.tensor(x, requires_grad=True)
    pooled, pool_indices = MaxPoolingWithArgmax2D(k, padding=padding)(xt)
    grad_x, = torch.autograd.grad((pooled * torch.tensor(upstream)).sum(), xt,
                                  retain_graph=True)
    vt = (pooled * torch.tensor(weights)) if values is None else torch.tensor(
        values, requires_grad=True)
    if values is None:
        vt.retain_grad()
    unpooled = MaxUnpooling2D(k)([vt, pool_indices if indices is None else
                                  torch.tensor(indices), xt])
    upstream2 = torch.tensor(np.where(np.isfinite(x), x, 0.0).astype("float32"))
    (unpooled * upstream2).sum().backward()
    out = [pooled, pool_indices, grad_x, unpooled, vt.grad]
    if values is None:
        out.append(xt.grad)  # d loss2 / dx through both layers (autograd.grad left .grad empty)
    return [t.detach().numpy() for t in out]


@torch_only
@pytest.mark.parametrize("h,w,k,padding", PARITY_CASES)
@pytest.mark.parametrize("kind", ["normal", "constant", "repeated", "-inf"])
def test_torch_kernels_match_the_keras_ops_formulation(h, w, k, padding, kind):
    rng = np.random.default_rng(h * w * k + len(kind))
    for channels in (5, 1):
        x = make_input(kind, (3, h, w, channels), rng)
        out = (3, pooled_size(h, k, padding), pooled_size(w, k, padding), channels)
        upstream = rng.normal(size=out).astype("float32")
        weights = rng.normal(size=out).astype("float32")
        fast, reference = on_both_paths(torch_pool_unpool_grads, x, k, padding, upstream,
                                        weights)
        assert fast[1].dtype == np.int32
        for a, b in zip(fast, reference, strict=True):
            np.testing.assert_array_equal(a, b)


@torch_only
@pytest.mark.parametrize("h,w,k,oh,ow", [(8, 6, 2, 4, 3), (7, 9, 2, 3, 4), (7, 9, 2, 4, 5),
                                         (11, 10, 3, 3, 3), (11, 10, 3, 4, 4)])
def test_torch_unpooling_of_any_window_indices_matches(h, w, k, oh, ow):
    import torch

    rng = np.random.default_rng(h * w + oh)
    x = rng.normal(size=(2, h, w, 4)).astype("float32")
    values = rng.normal(size=(2, oh, ow, 4)).astype("float32")
    indices = window_indices(h, w, k, oh, ow, 4, rng)
    upstream = torch.tensor(rng.normal(size=(2, h, w, 4)).astype("float32"))

    def unpool():
        v = torch.tensor(values, requires_grad=True)
        out = MaxUnpooling2D(k)([v, torch.tensor(indices), torch.tensor(x)])
        (out * upstream).sum().backward()
        return out.detach().numpy(), v.grad.numpy()

    fast, reference = on_both_paths(unpool)
    for a, b in zip(fast, reference, strict=True):
        np.testing.assert_array_equal(a, b)


# === MaxPooling2D (keras_seg.ops.max_pool: fused slices on JAX, no layout copies on torch) ===

MAX_POOL_CASES = [  # pool size, strides, padding, input size
    (3, 2, "valid", (9, 10)),  # the ResNet stem (after its ZeroPadding2D)
    (3, 2, "same", (8, 9)),
    (2, 2, "same", (7, 9)),    # ENet, VGG: partial windows at the odd border
    (2, 2, "valid", (7, 8)),   # U-Net, SegNet: the odd row dropped
    (3, 1, "same", (6, 7)),    # RefineNet's chained pooling, DeepLab v1's VGG
    ((2, 3), (1, 2), "valid", (6, 9)),
]


@pytest.mark.parametrize("case", MAX_POOL_CASES)
def test_max_pooling_same_values_and_gradients_as_keras(case):
    """Values and gradients equal Keras' MaxPooling2D exactly, ties included: half the
    inputs are zeros (as after a ReLU) and the rest repeat a few values, so most windows
    hold several maxima and the gradient must go to the same (first) one."""
    pool, strides, padding, size = case
    rng = np.random.default_rng(11)
    x = rng.integers(-3, 3, size=(2, *size, 3)).clip(0, None).astype("float32")
    weights = rng.normal(size=keras.layers.MaxPooling2D(pool, strides, padding)(x).shape)
    w_t = keras.ops.convert_to_tensor(weights.astype("float32"))
    got, want = (layer(pool, strides, padding) for layer in (MaxPooling2D,
                                                             keras.layers.MaxPooling2D))
    np.testing.assert_array_equal(to_numpy(got(x)), to_numpy(want(x)))
    np.testing.assert_array_equal(gradient(lambda t: got(t) * w_t, x),
                                  gradient(lambda t: want(t) * w_t, x))
    assert isinstance(got, keras.layers.MaxPooling2D)


def test_max_pooling_serializes_as_itself(tmp_path):
    inputs = keras.Input((None, None, 2))
    model = keras.Model(inputs, MaxPooling2D(3, 2, "same")(inputs))
    model.save(str(tmp_path / "p.keras"))
    loaded = keras.saving.load_model(str(tmp_path / "p.keras"))
    assert type(loaded.layers[-1]) is MaxPooling2D
    assert loaded.layers[-1].get_config()["pool_size"] == (3, 3)
    x = np.random.default_rng(2).normal(size=(1, 7, 8, 2)).astype("float32")
    np.testing.assert_array_equal(to_numpy(loaded(x)), to_numpy(model(x)))

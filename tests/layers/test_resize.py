"""ResizeLike and keras_seg.ops.resize_align_corners against torch's interpolate."""

import keras
import numpy as np
import pytest
import torch

from keras_seg import ops as seg_ops
from keras_seg.layers import ResizeLike


@pytest.mark.parametrize("src,dst", [((5, 7), (17, 13)), ((8, 8), (64, 64)), ((9, 6), (4, 5)),
                                     ((1, 1), (3, 4)), ((4, 5), (1, 1))])
@pytest.mark.parametrize("align_corners", [True, False])
def test_resize_like_matches_torch_interpolate(src, dst, align_corners):
    x = np.random.default_rng(0).normal(size=(2, *src, 3)).astype(np.float32)
    ref = torch.nn.functional.interpolate(
        torch.from_numpy(x).permute(0, 3, 1, 2), size=dst, mode="bilinear",
        align_corners=align_corners).permute(0, 2, 3, 1).numpy()
    layer = ResizeLike("bilinear", align_corners=align_corners)
    out = keras.ops.convert_to_numpy(layer([x, np.zeros((2, *dst, 1), np.float32)]))
    np.testing.assert_allclose(out, ref, rtol=1e-5, atol=1e-5)


def test_align_corners_resize_traces_with_dynamic_sizes_and_serializes():
    image = keras.Input((None, None, 2))
    reference = keras.Input((None, None, 1))
    model = keras.Model([image, reference],
                        ResizeLike(align_corners=True, name="up")([image, reference]))
    x = np.random.default_rng(1).normal(size=(1, 6, 10, 2)).astype(np.float32)
    ref = np.zeros((1, 23, 31, 1), np.float32)
    traced = model.predict([x, ref], verbose=0)  # fit / predict trace the graph
    expected = torch.nn.functional.interpolate(
        torch.from_numpy(x).permute(0, 3, 1, 2), size=(23, 31), mode="bilinear",
        align_corners=True).permute(0, 2, 3, 1).numpy()
    np.testing.assert_allclose(traced, expected, rtol=1e-5, atol=1e-5)
    clone = ResizeLike.from_config(model.get_layer("up").get_config())
    assert clone.align_corners is True
    direct = keras.ops.convert_to_numpy(seg_ops.resize_align_corners(x, (23, 31)))
    np.testing.assert_allclose(direct, expected, rtol=1e-5, atol=1e-5)
    with pytest.raises(ValueError, match="align_corners=True applies to interpolation="
                       "'bilinear' only"):
        ResizeLike("nearest", align_corners=True)


@pytest.mark.parametrize("src,dst", [((5, 7), (17, 13)), ((9, 6), (4, 5)), ((1, 1), (3, 4))])
def test_align_corners_kernel_and_portable_formulation_agree(src, dst):
    """On PyTorch resize_align_corners runs torch's interpolate, on TensorFlow its
    resize_bilinear kernel, on JAX interpolation matrices, inside portable_graph the
    keras.ops gathers and lerps (every backend's path): same values and gradients."""
    x = np.random.default_rng(2).normal(size=(2, *src, 3)).astype(np.float32)
    upstream = np.random.default_rng(3).normal(size=(2, *dst, 3)).astype(np.float32)

    def run():
        backend = keras.backend.backend()
        if backend == "tensorflow":
            import tensorflow as tf

            xt = tf.constant(x)
            with tf.GradientTape() as tape:
                tape.watch(xt)
                out = seg_ops.resize_align_corners(xt, dst)
                total = tf.reduce_sum(out * upstream)
            return out.numpy(), tape.gradient(total, xt).numpy()
        if backend == "jax":
            import jax

            def total(v):
                return (seg_ops.resize_align_corners(v, dst) * upstream).sum()

            return (np.asarray(seg_ops.resize_align_corners(x, dst)),
                    np.asarray(jax.grad(total)(x)))
        xt = torch.tensor(x, requires_grad=True)
        out = seg_ops.resize_align_corners(xt, dst)
        (out * torch.tensor(upstream)).sum().backward()
        return out.detach().numpy(), xt.grad.numpy()

    fast = run()
    with seg_ops.portable_graph():
        portable = run()
    np.testing.assert_allclose(fast[0], portable[0], rtol=1e-5, atol=1e-5)
    np.testing.assert_allclose(fast[1], portable[1], rtol=1e-5, atol=1e-5)

"""Where XLA's CPU backend is slow for segmentation models, and what keras-seg computes
instead on the JAX backend: each operation with its gradients (input and weights), as
``keras.ops`` computes it, as :mod:`keras_seg.ops` computes it, and as PyTorch's own kernel
(channels-last, what the peers run) in the same process.

- 1x1 convolutions (two thirds of a ResNet-50's bottleneck convolutions): XLA's CPU
  convolution, ``keras_seg.ops.conv``'s matrix product;
- transposed convolutions (LinkNet's, FCN's, ENet's decoders): XLA convolves an input
  dilated with zeros, ``keras_seg.ops.conv_transpose`` one sub-pixel convolution;
- max pooling (every ResNet stem, VGG, U-Net): the gradient of ``lax.reduce_window`` is
  XLA's ``select_and_scatter``, ``keras_seg.ops.max_pool`` fused strided slices;
- a 3x3 convolution, which keras-seg leaves to XLA (for comparison).

Usage (writes the table; ``KERAS_BACKEND`` is set to jax here)::

    python benchmarks/jax_kernels.py --output benchmarks/jax_kernels.md
"""

import argparse
import datetime
import os
import platform
import statistics
import sys
import time

os.environ["KERAS_BACKEND"] = "jax"
os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")

#: name -> (kind, input (H, W, C), weight shape in Keras' layout, options)
CASES = {
    "1x1 conv 256 -> 64, 64x64": ("conv", (64, 64, 256), (1, 1, 256, 64), {"strides": 1}),
    "1x1 conv 64 -> 256, 64x64": ("conv", (64, 64, 64), (1, 1, 64, 256), {"strides": 1}),
    "1x1 conv 1024 -> 2048, stride 2, 32x32": ("conv", (32, 32, 1024), (1, 1, 1024, 2048),
                                               {"strides": 2}),
    "3x3 transposed conv 64 -> 64, stride 2, 64x64": ("conv_transpose", (64, 64, 64),
                                                      (3, 3, 64, 64), {"strides": 2}),
    "2x2 transposed conv 128 -> 64, stride 2, 64x64": ("conv_transpose", (64, 64, 128),
                                                       (2, 2, 64, 128), {"strides": 2}),
    "3x3 max pooling, stride 2, 128x128x64": ("max_pool", (128, 128, 64), None,
                                              {"pool": 3, "strides": 2}),
    "3x3 conv 64 -> 64, 64x64 (XLA's, unchanged)": ("conv", (64, 64, 64), (3, 3, 64, 64),
                                                    {"strides": 1}),
}


def _median_ms(fn, repeats):
    fn()
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        fn()
        times.append(time.perf_counter() - start)
    return statistics.median(times) * 1000


def _jax_functions(kind, options):
    """(keras.ops form, keras_seg.ops form) of one case, f(x, w) -> y."""
    import keras

    from keras_seg import ops as seg_ops

    strides = options["strides"]
    if kind == "conv":
        return (lambda x, w: keras.ops.conv(x, w, strides, "same"),
                lambda x, w: seg_ops.conv(x, w, strides, "same"))
    if kind == "conv_transpose":
        return (lambda x, w: keras.ops.conv_transpose(x, w, strides, "same"),
                lambda x, w: seg_ops.conv_transpose(x, w, strides, "same"))
    pool = options["pool"]
    return (lambda x, w: keras.ops.max_pool(x, pool, strides, "same"),
            lambda x, w: seg_ops.max_pool(x, pool, strides, "same"))


def _torch_function(kind, options):
    import torch.nn.functional as F

    strides = options["strides"]
    if kind == "conv":
        return lambda x, w: F.conv2d(x, w, stride=strides, padding=(w.shape[-1] - 1) // 2)
    if kind == "conv_transpose":
        def transposed(x, w):
            k = w.shape[-1]
            # Keras' "same" for stride 2: output 2 H; torch: (H - 1) s - 2 p + k + out_pad
            pad = (k - 1) // 2
            return F.conv_transpose2d(x, w, stride=strides, padding=pad,
                                      output_padding=2 * pad + strides - k)
        return transposed
    return lambda x, w: F.max_pool2d(x, options["pool"], strides, options["pool"] // 2)


def measure(name, batch, scale, repeats):
    """{"keras": ms, "keras_seg": ms, "torch": ms, "max_diff": relative difference of the
    two JAX forms' outputs} for one case, each forward + gradients."""
    import jax
    import jax.numpy as jnp
    import numpy as np
    import torch

    kind, (h, w, c), weight_shape, options = CASES[name]
    h, w = max(int(h * scale), 4), max(int(w * scale), 4)
    rng = np.random.default_rng(0)
    x = rng.random((batch, h, w, c), dtype=np.float32)
    weights = None if weight_shape is None else (
        rng.normal(size=weight_shape).astype(np.float32) * 0.05)
    row = {}
    outputs = []
    for label, fn in zip(("keras", "keras_seg"), _jax_functions(kind, options), strict=True):
        args = (jnp.asarray(x), None if weights is None else jnp.asarray(weights))
        argnums = (0,) if weights is None else (0, 1)
        step = jax.jit(jax.grad(lambda a, b, fn=fn: jnp.sum(fn(a, b) ** 2), argnums=argnums))
        outputs.append(np.asarray(jax.jit(fn)(*args)))
        row[label] = _median_ms(lambda step=step, args=args: jax.block_until_ready(
            step(*args)), repeats)
    row["max_diff"] = float(np.abs(outputs[0] - outputs[1]).max() /
                            max(np.abs(outputs[0]).max(), 1e-30))
    torch_fn = _torch_function(kind, options)
    xt = torch.tensor(x).permute(0, 3, 1, 2).requires_grad_(True)
    if weights is None:
        wt = None
    else:  # torch layouts: conv (O, I, kh, kw); transposed conv (I, O, kh, kw)
        order = (3, 2, 0, 1)
        wt = torch.tensor(weights).permute(*order).contiguous().requires_grad_(True)

    def torch_step():
        xt.grad = None
        if wt is not None:
            wt.grad = None
        (torch_fn(xt, wt) ** 2).sum().backward()

    row["torch"] = _median_ms(torch_step, repeats)
    return row


def report(rows, args, command):
    lines = [
        "# XLA's CPU kernels and keras-seg's formulations on JAX",
        "",
        f"Measured {datetime.date.today().isoformat()} with `{command}` on "
        f"{platform.machine()} ({os.cpu_count()} CPUs), Python {platform.python_version()}: "
        f"batch {args.batch}, spatial sizes x{args.scale:g}, each operation with its "
        "gradients (input and weights) compiled with `jax.jit`, median of "
        f"{args.repeats} runs after one; PyTorch: the same operation on channels-last "
        "tensors in the same process (`OMP_WAIT_POLICY=PASSIVE`). `keras.ops`: what Keras' "
        "layers run on JAX; `keras_seg.ops`: what keras-seg's layers run; difference: the "
        "two JAX forms' outputs, relative to the largest value.",
        "",
        "| operation | keras.ops ms | keras_seg.ops ms | PyTorch ms | speed-up | difference |",
        "|---|---:|---:|---:|---:|---:|",
    ]
    for name, row in rows.items():
        lines.append(f"| {name} | {row['keras']:.1f} | {row['keras_seg']:.1f} | "
                     f"{row['torch']:.1f} | {row['keras'] / row['keras_seg']:.1f}x | "
                     f"{row['max_diff']:.1e} |")
    return "\n".join(lines) + "\n"


def parse_args(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--batch", type=int, default=4)
    parser.add_argument("--scale", type=float, default=1.0,
                        help="multiplies the spatial sizes (a quick run: 0.25)")
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--cases", nargs="+", choices=list(CASES), default=list(CASES))
    parser.add_argument("--output", help="write the Markdown table here (atomically)")
    args = parser.parse_args(argv)
    if args.batch < 1 or args.repeats < 1 or args.scale <= 0:
        parser.error("--batch and --repeats must be >= 1 and --scale > 0")
    return args


def main(argv=None):
    args = parse_args(argv)
    import torch

    torch.set_num_threads(min(2, os.cpu_count() or 1))
    rows = {}
    for name in args.cases:
        rows[name] = measure(name, args.batch, args.scale, args.repeats)
        print(f"{name}: " + ", ".join(f"{k} {v:.3g}" for k, v in rows[name].items()),
              flush=True)
    text = report(rows, args, "python benchmarks/jax_kernels.py " + " ".join(
        sys.argv[1:] if argv is None else argv))
    print(text)
    if args.output:
        from keras_seg.visualize import write_text_atomic

        write_text_atomic(args.output, text)
    return rows


if __name__ == "__main__":
    main()

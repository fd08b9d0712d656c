"""What SegNet's pooling indices cost: MaxPoolingWithArgmax2D + MaxUnpooling2D against
MaxPooling2D + UpSampling2D, per Keras backend.

A small encoder-decoder train step (SGD, mean squared error): 3x3 conv 64 - pool - 3x3
conv 64 - upsample - 3x3 conv 64 - 1x1 conv, once with keras-seg's pooling with argmax and
unpooling (SegNet, Badrinarayanan et al. 2017, "SegNet: A Deep Convolutional
Encoder-Decoder Architecture for Image Segmentation"), once with Keras' max pooling and
nearest upsampling. Each backend runs in its own process (``OMP_WAIT_POLICY=PASSIVE``,
``--threads`` threads); median of ``--steps`` compiled steps after one warm-up step.
On TensorFlow the layers run TensorFlow's own kernels on CPU (``keras_seg.ops.
max_pool_with_argmax`` / ``max_unpool``); a second TensorFlow row, "tensorflow, keras.ops",
traces the same steps in ``keras_seg.ops.portable_graph()``, the layers' ``keras.ops``
formulation (what exports use).

    python benchmarks/unpooling_speed.py        # writes benchmarks/unpooling_speed.md
"""

import argparse
import datetime
import json
import os
import statistics
import subprocess
import sys
import time

BACKENDS = ("tensorflow", "jax", "torch")


def _model(kind, channels):
    import keras
    from keras import layers

    from keras_seg.layers import MaxPoolingWithArgmax2D, MaxUnpooling2D

    inputs = keras.Input((None, None, 3))
    x = layers.Conv2D(channels, 3, padding="same", activation="relu")(inputs)
    if kind == "argmax + unpooling":
        pooled, indices = MaxPoolingWithArgmax2D(2)(x)
        y = layers.Conv2D(channels, 3, padding="same", activation="relu")(pooled)
        y = MaxUnpooling2D(2)([y, indices, x])
    else:
        y = layers.MaxPooling2D(2)(x)
        y = layers.Conv2D(channels, 3, padding="same", activation="relu")(y)
        y = layers.UpSampling2D(2)(y)
    y = layers.Conv2D(channels, 3, padding="same", activation="relu")(y)
    return keras.Model(inputs, layers.Conv2D(4, 1)(y))


def _worker(args):
    if args.portable:
        from keras_seg.ops import portable_graph

        with portable_graph():  # the train functions are traced in it
            return _steps(args)
    return _steps(args)


def _steps(args):
    import keras
    import numpy as np

    rng = np.random.default_rng(0)
    x = rng.random((args.batch, args.size, args.size, 3), dtype=np.float32)
    y = rng.random((args.batch, args.size, args.size, 4), dtype=np.float32)
    out = {}
    for kind in ("argmax + unpooling", "max pooling + upsampling"):
        keras.backend.clear_session()
        model = _model(kind, args.channels)
        model.compile(optimizer=keras.optimizers.SGD(0.01), loss="mse")
        model.train_on_batch(x, y)
        times = []
        for _ in range(args.steps):
            t = time.perf_counter()
            model.train_on_batch(x, y)
            times.append(time.perf_counter() - t)
        out[kind] = statistics.median(times)
    print(json.dumps(out), flush=True)


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--backends", nargs="+", choices=BACKENDS, default=list(BACKENDS))
    p.add_argument("--batch", type=int, default=8)
    p.add_argument("--size", type=int, default=128)
    p.add_argument("--channels", type=int, default=64)
    p.add_argument("--steps", type=int, default=10)
    p.add_argument("--threads", type=int, default=2)
    p.add_argument("--output", default=os.path.join(os.path.dirname(__file__),
                                                    "unpooling_speed.md"))
    p.add_argument("--worker", action="store_true", help=argparse.SUPPRESS)
    p.add_argument("--portable", action="store_true", help=argparse.SUPPRESS)
    args = p.parse_args(argv)
    if args.worker:
        _worker(args)
        return 0
    rows = {}
    runs = [(backend, backend, False) for backend in args.backends]
    if "tensorflow" in args.backends:
        runs.insert(args.backends.index("tensorflow") + 1,
                    ("tensorflow, keras.ops", "tensorflow", True))
    for label, backend, portable in runs:
        env = dict(os.environ, KERAS_BACKEND=backend, OMP_WAIT_POLICY="PASSIVE",
                   OMP_NUM_THREADS=str(args.threads), TF_NUM_INTRAOP_THREADS=str(args.threads),
                   TF_NUM_INTEROP_THREADS="1", TF_CPP_MIN_LOG_LEVEL="2")
        cmd = [sys.executable, os.path.abspath(__file__), "--worker", "--batch",
               str(args.batch), "--size", str(args.size), "--channels", str(args.channels),
               "--steps", str(args.steps)] + (["--portable"] if portable else [])
        out = subprocess.run(cmd, env=env, check=True, capture_output=True, text=True).stdout
        rows[label] = json.loads(out.strip().splitlines()[-1])
    command = "python benchmarks/unpooling_speed.py " + " ".join(
        sys.argv[1:] if argv is None else argv)
    lines = [
        "# Pooling indices: their cost in a train step",
        "",
        f"Measured {datetime.date.today().isoformat()} with `{command.strip()}`: batch "
        f"{args.batch} x {args.size} x {args.size}, {args.channels} channels, median of "
        f"{args.steps} steps, {args.threads} threads, `OMP_WAIT_POLICY=PASSIVE`.",
        "",
        "| backend | argmax + unpooling ms | max pooling + upsampling ms | ratio |",
        "|---|---:|---:|---:|",
    ]
    for backend, row in rows.items():
        a, b = row["argmax + unpooling"], row["max pooling + upsampling"]
        lines.append(f"| {backend} | {a * 1000:.1f} | {b * 1000:.1f} | {a / b:.2f}x |")
    text = "\n".join(lines) + "\n"
    from keras_seg.visualize import write_text_atomic

    write_text_atomic(args.output, text)
    print(text)
    return 0


if __name__ == "__main__":
    sys.exit(main())

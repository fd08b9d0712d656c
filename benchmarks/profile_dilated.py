"""Where the train-step time of a dilated model goes, per Keras backend.

The model is torchvision's DeepLab v3 ResNet-50 at output stride 8 as keras-seg builds it
(``keras_seg.convert``'s ``torchvision/deeplabv3_resnet50``, no auxiliary head). Its train
step (SGD momentum 0.9, keras-seg's cross-entropy) is timed whole and in parts, each part
compiled as its own model with a loss on its output, and with two switches that show what a
kernel costs:

- ``full``: the whole model; ``full, keras conv``: its dilated convolutions through
  ``keras.ops.conv`` (what Keras' ``Conv2D`` does) instead of keras-seg's
  ``AtrousConv2D`` path (``keras_seg.ops.atrous_conv``); ``full, frozen BN``: every
  BatchNormalization in inference mode (no batch statistics: what training-mode BN costs);
- ``backbone``: the dilated ResNet-50 alone (loss on its stride-8 output);
- ``ASPP + head``: the ASPP (rates 12, 24, 36 and image pooling), the 3x3 head conv and the
  classifier on a 2048-channel stride-8 map, with and without the fast atrous path;
- ``upsample + loss``: the bilinear resize of 21-class logits from stride 8 to the input
  and the loss.

Each backend runs in its own process with ``OMP_WAIT_POLICY=PASSIVE`` and ``--threads``
threads; each entry is the median of ``--steps`` steps after one warm-up step (build and
compilation excluded). Writes ``benchmarks/profile_dilated.md``.

    python benchmarks/profile_dilated.py
"""

import argparse
import datetime
import json
import os
import statistics
import subprocess
import sys
import time

ARCH = "torchvision/deeplabv3_resnet50"
PARTS = ("full", "full, keras conv", "full, frozen BN", "backbone", "ASPP + head",
         "ASPP + head, keras conv", "upsample + loss")
BACKENDS = ("tensorflow", "jax", "torch")


def _plain_atrous(x, kernel, dilation_rate, padding="same", bias=None):
    import keras

    out = keras.ops.conv(x, kernel, strides=1, padding=padding, dilation_rate=dilation_rate)
    return out if bias is None else out + keras.ops.reshape(bias, (1, 1, 1, -1))


def _part_model(part, args):
    import keras

    from keras_seg import convert
    from keras_seg.applications._common import conv_bn_relu, logits_head
    from keras_seg.layers import ASPP, ResizeLike

    size, classes = args.size, args.classes
    if part.startswith("full"):
        model = convert.get(ARCH).build(num_classes=classes, aux=False)
        if "frozen BN" in part:
            for layer in convert._engine.all_layers(model):
                if isinstance(layer, keras.layers.BatchNormalization):
                    layer.trainable = False
        return model, (size, size, 3), "ce"
    if part == "backbone":
        full = convert.get(ARCH).build(num_classes=classes, aux=False)
        backbone = full.get_layer("resnet50")
        inputs = keras.Input((None, None, 3))
        return keras.Model(inputs, backbone(inputs)["P5"]), (size, size, 3), "mse"
    if part.startswith("ASPP"):
        inputs = keras.Input((None, None, 2048))
        x = ASPP(256, rates=(12, 24, 36), dropout=0.5, bn_epsilon=1e-5)(inputs)
        x = conv_bn_relu(x, 256, 3, "head", bn_epsilon=1e-5)
        return keras.Model(inputs, logits_head(x, classes)), (size // 8, size // 8, 2048), "ce"
    if part == "upsample + loss":
        inputs = keras.Input((None, None, classes))
        reference = keras.Input((None, None, 1))
        out = ResizeLike("bilinear")([inputs, reference])
        return keras.Model([inputs, reference], out), None, "ce"
    raise ValueError(part)


def _worker(args):
    import keras
    import numpy as np

    from keras_seg.layers import atrous
    from keras_seg.losses import SegmentationCrossEntropy

    rng = np.random.default_rng(0)
    results = {}
    for part in PARTS:
        fast = atrous.seg_ops.atrous_conv
        if "keras conv" in part:
            atrous.seg_ops.atrous_conv = _plain_atrous
        try:
            keras.backend.clear_session()
            model, shape, loss = _part_model(part, args)
            if shape is None:  # the resize part: logits at stride 8 and the label size
                small = args.size // 8
                x = [rng.normal(size=(args.batch, small, small, args.classes)).astype("float32"),
                     np.zeros((args.batch, args.size, args.size, 1), "float32")]
                trainable = keras.layers.Dense(args.classes)  # something to train
                inputs = [keras.Input((None, None, args.classes)), keras.Input((None, None, 1))]
                model = keras.Model(inputs, model([trainable(inputs[0]), inputs[1]]))
                y = rng.integers(0, args.classes, (args.batch, args.size, args.size))
            else:
                x = rng.random((args.batch, *shape), dtype=np.float32)
                out = model.compute_output_spec(keras.KerasTensor(x.shape)).shape
                y = (rng.integers(0, args.classes, (args.batch, *out[1:3])) if loss == "ce"
                     else np.zeros((args.batch, *out[1:]), "float32"))
            model.compile(optimizer=keras.optimizers.SGD(0.01, momentum=0.9),
                          loss=SegmentationCrossEntropy() if loss == "ce" else "mse")
            model.train_on_batch(x, y)  # build + compile
            times = []
            for _ in range(args.steps):
                t = time.perf_counter()
                model.train_on_batch(x, y)
                times.append(time.perf_counter() - t)
            results[part] = statistics.median(times)
        finally:
            atrous.seg_ops.atrous_conv = fast
    print(json.dumps(results), flush=True)


def report(results, args, command):
    lines = [
        "# Where the train step of a dilated model goes",
        "",
        f"Measured {datetime.date.today().isoformat()} with `{command}`: {ARCH} as keras-seg "
        f"builds it (DeepLab v3, ResNet-50, output stride 8, no aux head), batch "
        f"{args.batch} x {args.size} x {args.size}, {args.classes} classes, SGD momentum 0.9; "
        f"median of {args.steps} train steps after one warm-up step, {args.threads} threads, "
        "`OMP_WAIT_POLICY=PASSIVE`, one process per backend. Parts are compiled as their own "
        "models (see the script's docstring); `keras conv`: the dilated convolutions through "
        "`keras.ops.conv` instead of `keras_seg.ops.atrous_conv`; `frozen BN`: BatchNorm in "
        "inference mode.",
        "",
        "| part | " + " | ".join(f"{b} ms" for b in results) + " |",
        "|---|" + "---:|" * len(results),
    ]
    for part in PARTS:
        cells = [f"{results[b][part] * 1000:.0f}" if part in results[b] else "-"
                 for b in results]
        lines.append(f"| {part} | " + " | ".join(cells) + " |")
    return "\n".join(lines) + "\n"


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--backends", nargs="+", choices=BACKENDS, default=list(BACKENDS))
    p.add_argument("--batch", type=int, default=4)
    p.add_argument("--size", type=int, default=256)
    p.add_argument("--classes", type=int, default=21)
    p.add_argument("--steps", type=int, default=3)
    p.add_argument("--threads", type=int, default=2)
    p.add_argument("--output", default=os.path.join(os.path.dirname(__file__),
                                                    "profile_dilated.md"))
    p.add_argument("--worker", action="store_true", help=argparse.SUPPRESS)
    args = p.parse_args(argv)
    if args.size % 8 or args.size < 16:
        p.error("--size must be a multiple of 8, at least 16")
    if args.worker:
        _worker(args)
        return 0
    results = {}
    for backend in args.backends:
        env = dict(os.environ, KERAS_BACKEND=backend, OMP_WAIT_POLICY="PASSIVE",
                   OMP_NUM_THREADS=str(args.threads), TF_NUM_INTRAOP_THREADS=str(args.threads),
                   TF_NUM_INTEROP_THREADS="1", TF_CPP_MIN_LOG_LEVEL="2")
        cmd = [sys.executable, os.path.abspath(__file__), "--worker", "--batch",
               str(args.batch), "--size", str(args.size), "--classes", str(args.classes),
               "--steps", str(args.steps), "--threads", str(args.threads)]
        print(f"{backend}: measuring", flush=True)
        out = subprocess.run(cmd, env=env, check=True, capture_output=True, text=True).stdout
        results[backend] = json.loads(out.strip().splitlines()[-1])
    command = "python benchmarks/profile_dilated.py " + " ".join(
        sys.argv[1:] if argv is None else argv)
    text = report(results, args, command.strip())
    from keras_seg.visualize import write_text_atomic

    write_text_atomic(args.output, text)
    print(text)
    return 0


if __name__ == "__main__":
    sys.exit(main())

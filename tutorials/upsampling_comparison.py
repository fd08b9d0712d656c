"""Upsampling in a segmentation decoder: interpolation, unpooling with indices, deconvolution.

An encoder halves the resolution at every pooling; a decoder must bring the class
scores back to the input size. The seed notes of this package compare three ways of
doing it (translated; method: description. pros / cons):

* interpolation: neighbouring values decide the new pixel (nearest, bilinear,
  bicubic). Fast, nothing to learn / -.
* unpooling: the pooling records where each maximum was; unpooling writes the value
  back there, zeros elsewhere. Nothing to learn / the positions must be stored extra;
  a poor upsampling on its own.
* deconvolution: a transposed convolution learns the upsampling. Learnable / more
  compute, checkerboard (grid) artifacts.

This script turns that qualitative table into a measured one. It trains **the same
encoder-decoder** with each method of ``upsampling=`` and nothing else changed, on the
built-in synthetic dataset (:class:`keras_seg.data.SyntheticShapes`), and measures:

* **val mIoU**: dataset-level mean IoU on the validation split
  (:class:`keras_seg.metrics.MeanIoU`, one confusion matrix over all pixels);
* **border mIoU**: the same, counting only the pixels within ``border`` pixels of a
  ground-truth class boundary (a "trimap" evaluation): where upsampling matters most,
  since away from borders every method only has to fill a constant region;
* **parameters**: trainable parameters of the whole model;
* **train step / inference**: median wall time of one compiled ``train_on_batch`` /
  ``predict_on_batch`` on one batch, after warm-up (compilation excluded);
* **peak RSS**: how much the process's resident memory high-water mark rose while the
  model was built, compiled, trained, evaluated and timed, see "Memory" below;
* **forward tensors**: the bytes of every tensor the forward pass of one batch
  produces, counted from the layers' static output shapes (int32 pooling indices
  included): a deterministic, backend-independent companion to the RSS column.

The network is a small U-Net (:func:`keras_seg.applications.UNet`, batch norm, depth 3);
each method only changes how its expanding path goes up x2 (and halves the width):

* ``"nearest"`` / ``"bilinear"``: ``keras.layers.UpSampling2D``, then a 1x1 conv
  halving the width. The resize has no parameters and no stored state; nearest copies
  each value into a 2x2 block, bilinear blends the four nearest values (half-pixel
  centres). Borders can only be as sharp as what the following convolutions rebuild
  from a blocky or blurred map.
* ``"unpool"``: a 1x1 conv halving the width, then SegNet's max unpooling
  (:class:`keras_seg.layers.MaxUnpooling2D`) with the indices of the matching
  contracting-path pooling (:class:`keras_seg.layers.MaxPoolingWithArgmax2D`): no
  parameters in the upsampling, but every pooling keeps an int32 index map as large as
  its output until the decoder uses it. The unpooled map is sparse (one value per 2x2
  window): the convolutions after it densify it. The position of the maximum is a
  high-resolution hint of where an edge was.
* ``"transpose"``: the paper's learned 2x2 stride-2 up-convolution, ``2 * 2 * c * c/2``
  weights from ``c`` channels instead of the 1x1 conv's ``c * c/2``. Each output pixel
  of a 2x2 block has its own weights, which is where checkerboard patterns come from
  when the four do not learn to agree.

``--architecture segnet`` runs :func:`keras_seg.applications.SegNet` instead (no skip
connections: the upsampling alone must restore the borders; ``"transpose"`` adds
``4 * w * w + w`` parameters per stage of width ``w``). Expect the U-Net's skips, which
carry full-resolution detail past the upsampling, to shrink the differences.

The task. The dataset's six shape classes differ only by outline (colour carries no
class information), and learning them takes more steps than a four-row CPU table
affords (an earlier full mode of 768 steps of 8 images at 48x48 left both networks'
``"nearest"`` variants predicting background only; the demo needs 2,560 steps of 16
images for its five classes, ``benchmarks/demo.md``). The full mode uses the demo's
lessons (a depth-4 U-Net, Adam 6e-3, half the default clutter and texture) for 1,024
steps of 16 images at 64x64. The comparison is about borders, so by default the six
shape classes are merged into
one ``"object"`` class: object vs cluttered background, where every object outline is
a border to restore. ``--labels classes`` keeps the seven classes.

What to look at: the border mIoU column against the val mIoU column (the gap is the
border penalty of each method), the parameter and time columns (what the learned
upsampling costs), the two memory columns for ``unpool`` (the stored indices), and the
figure (``*_borders.png``): crops around ground-truth object borders, one column per
method, where blocky (nearest), rounded (bilinear), speckled (unpool) or patterned
(transpose) borders show up.

Memory. On a CPU the honest number is the resident set size (RSS) of the process:
it counts the tensors of every backend (NumPy-, Eigen-, XLA- or ATen-allocated alike),
whereas ``tracemalloc`` only sees Python-heap allocations and misses the tensors
entirely. The worker resets the kernel's high-water mark (``/proc/self/clear_refs``)
after the data are loaded and the backend is warmed up, then reports
the rise of ``VmHWM`` (``/proc/self/status``) over that starting RSS at the end of
its method. The number includes compilation (TF graph / XLA) memory and allocator
caching, which are alike for every method; differences between rows are the signal.
Each method runs in a fresh subprocess, so that no method reuses memory freed by the
previous one or pays for the backend's one-time allocations; ``--fast`` (and
``--in-process``) runs them all in one process, where such a number would not be
comparable, so the column says n/a there. On a GPU one would read the device allocator instead
(``torch.cuda.max_memory_allocated``, ``jax.Device.memory_stats()``,
``tf.config.experimental.get_memory_info``); this tutorial measures the CPU.

Run (pick the backend with ``KERAS_BACKEND``)::

    # full mode: writes benchmarks/upsampling_comparison.md and *_borders.png
    python tutorials/upsampling_comparison.py
    # seconds, meaningless numbers: what CI runs
    python tutorials/upsampling_comparison.py --fast --out /tmp/up
"""

import argparse
import gc
import json
import os
import re
import subprocess
import sys
import tempfile
import time

import numpy as np

METHODS = ("nearest", "bilinear", "unpool", "transpose")
# the seed notes' qualitative table (translated), printed next to the measured one
NOTES_TABLE = """| method | description | pros | cons |
|---|---|---|---|
| interpolation | neighbouring values decide the new pixel (nearest, bilinear, bicubic) | \
fast, nothing to learn | - |
| unpooling | the pooling records where each maximum was; unpooling writes the value back \
there | nothing to learn | the positions must be stored; a poor upsampling on its own |
| deconvolution | a transposed convolution learns the upsampling | learnable | more \
compute, checkerboard (grid) artifacts |"""
FAMILY = {"nearest": "interpolation", "bilinear": "interpolation",
          "unpool": "unpooling (indices)", "transpose": "deconvolution"}

# Settings of the two modes. ``fast`` exists so that CI can execute every line of this
# tutorial in seconds; its numbers mean nothing. ``full`` is what the saved table used.
CONFIGS = {
    "fast": dict(image_size=32, train_images=8, val_images=4, epochs=1, batch_size=4,
                 filters=(4, 8), convs=(1, 1), unet_filters=4, unet_depth=2, lr=3e-3,
                 timing_repeats=2, border=1, crops=2, crop_size=16, zoom=4, isolate=False,
                 object_size=(1 / 8, 1 / 2), labels="objects"),
    # full: the demo's lessons (benchmarks/demo.md): a depth-4 U-Net for context, Adam
    # 6e-3, half the default clutter and texture strength
    "full": dict(image_size=64, train_images=2048, val_images=256, epochs=8, batch_size=16,
                 filters=(12, 24, 48), convs=(2, 2, 2), unet_filters=12, unet_depth=4,
                 lr=6e-3, timing_repeats=20, border=2, crops=4, crop_size=32, zoom=5,
                 isolate=True, object_size=(1 / 12, 1 / 2), labels="objects",
                 data={"clutter": 0.5, "texture": 0.4, "max_objects": 6}),
}


# === Memory ===

def _proc_status_kib(field):
    """A ``VmRSS`` / ``VmHWM`` line of ``/proc/self/status`` in KiB (None off Linux)."""
    try:
        with open("/proc/self/status") as f:
            match = re.search(rf"^{field}:\s+(\d+) kB", f.read(), re.M)
    except OSError:
        return None
    return int(match.group(1)) if match else None


def reset_peak_rss():
    """Reset the kernel's RSS high-water mark to the current RSS; return the RSS in KiB.

    Writing ``5`` to ``/proc/self/clear_refs`` (Linux >= 4.0) sets ``VmHWM`` back to
    ``VmRSS``. Returns None where that is not possible (then no peak is reported).
    """
    gc.collect()
    try:
        with open("/proc/self/clear_refs", "w") as f:
            f.write("5")
    except OSError:
        return None
    return _proc_status_kib("VmRSS")


def peak_rss_rise_mib(rss_at_reset_kib):
    """Rise of the RSS high-water mark since :func:`reset_peak_rss`, in MiB (or None)."""
    peak, now = _proc_status_kib("VmHWM"), _proc_status_kib("VmRSS")
    if rss_at_reset_kib is None or peak is None:
        return None
    # the kernel updates the high-water mark lazily; what is resident now counts too
    return (max(peak, now or 0) - rss_at_reset_kib) / 1024.0


def forward_tensor_mib(model_static, batch_size):
    """MiB of all tensors one forward pass of ``batch_size`` images produces.

    ``model_static`` must be built for a fixed input size (its layers' output shapes
    then have no None but the batch). Every layer output counts once, with its dtype's
    size (so the int32 pooling indices of ``"unpool"`` count too).
    """
    import keras

    total = 0
    for layer in model_static.layers:
        if isinstance(layer, keras.layers.InputLayer):
            continue
        for tensor in keras.tree.flatten(layer.output):
            shape = tuple(tensor.shape)[1:]
            if any(d is None for d in shape):
                raise ValueError(f"layer {layer.name} has a dynamic output shape {shape}.")
            total += batch_size * int(np.prod(shape)) * np.dtype(tensor.dtype).itemsize
    return total / 2**20


# === Data and model ===

def load_data(cfg, seed=0):
    """SyntheticShapes train / val arrays and the label set.

    Returns ``x_train, y_train, x_val, y_val, labels``: images float32 in [0, 1],
    masks int32, and ``labels = {"num_classes", "class_names", "palette"}``. With
    ``cfg["labels"] == "objects"`` the six shape classes are merged into one
    ``"object"`` class (object vs background).
    """
    from keras_seg.data import SyntheticShapes

    size = (cfg["image_size"], cfg["image_size"])
    kw = dict(image_size=size, seed=seed, object_size=tuple(cfg["object_size"]),
              **cfg.get("data", {}))
    train = SyntheticShapes("train", num_images=cfg["train_images"], **kw)
    val = SyntheticShapes("val", num_images=cfg["val_images"], **kw)
    x_train, y_train = train.arrays()
    x_val, y_val = val.arrays()
    y_train, y_val = y_train.astype("int32"), y_val.astype("int32")
    labels = {"num_classes": train.num_classes, "class_names": list(train.class_names),
              "palette": train.palette}
    if cfg["labels"] == "objects":
        y_train, y_val = (y_train > 0).astype("int32"), (y_val > 0).astype("int32")
        labels = {"num_classes": 2, "class_names": ["background", "object"],
                  "palette": train.palette[:2]}
    return (x_train.astype("float32") / 255.0, y_train,
            x_val.astype("float32") / 255.0, y_val, labels)


def build_model(architecture, method, num_classes, cfg, input_shape=(None, None, 3)):
    """The network of the comparison; only ``upsampling`` changes between methods."""
    from keras_seg.applications import SegNet, UNet

    if architecture == "segnet":
        return SegNet(num_classes, input_shape=input_shape, filters=tuple(cfg["filters"]),
                      convs=tuple(cfg["convs"]), upsampling=method)
    return UNet(num_classes, input_shape=input_shape, filters=cfg["unet_filters"],
                depth=cfg["unet_depth"], batch_norm=True, dropout=0.0, upsampling=method)


def border_band(masks, width):
    """Boolean ``(N, H, W)``: pixels within ``width`` px (chessboard) of a class boundary."""
    from scipy import ndimage

    edge = np.zeros(masks.shape, dtype=bool)
    edge[:, 1:, :] |= masks[:, 1:, :] != masks[:, :-1, :]
    edge[:, :-1, :] |= masks[:, 1:, :] != masks[:, :-1, :]
    edge[:, :, 1:] |= masks[:, :, 1:] != masks[:, :, :-1]
    edge[:, :, :-1] |= masks[:, :, 1:] != masks[:, :, :-1]
    if width > 1:
        structure = np.ones((1, 2 * width - 1, 2 * width - 1), dtype=bool)
        edge = ndimage.binary_dilation(edge, structure=structure)
    return edge


def _median_ms(fn, repeats):
    fn()  # warm-up
    times = []
    for _ in range(repeats):
        t0 = time.perf_counter()
        fn()
        times.append(time.perf_counter() - t0)
    return 1e3 * float(np.median(times))


# === One method ===

def run_method(method, cfg, architecture="unet", seed=0, pred_path=None, measure_rss=True):
    """Train and measure one upsampling method; return a dict of the measured columns.

    Called in a fresh worker subprocess (the default) or in the main process
    (``--fast`` / ``--in-process``; then ``measure_rss=False``: in a process that ran
    other methods before, the RSS high-water mark is not comparable between methods,
    and ``peak_rss_mib`` is None). The validation predictions of the first ``crops``
    images go to ``pred_path`` (``.npy``) for the figure.
    """
    import keras

    from keras_seg.losses import SegmentationCrossEntropy
    from keras_seg.metrics import MeanIoU

    x_train, y_train, x_val, y_val, labels = load_data(cfg, seed)
    num_classes = labels["num_classes"]
    keras.ops.convert_to_numpy(keras.ops.ones((2, 2)) * 2)  # warm the backend up
    rss0 = reset_peak_rss() if measure_rss else None  # from here: what this method allocates

    keras.utils.set_random_seed(seed)
    rng = np.random.default_rng(seed)
    model = build_model(architecture, method, num_classes, cfg)
    batch = cfg["batch_size"]
    per_epoch = len(x_train) // batch  # full batches only: one compiled shape
    schedule = keras.optimizers.schedules.PolynomialDecay(
        cfg["lr"], cfg["epochs"] * per_epoch, 0.0, power=0.9)
    model.compile(optimizer=keras.optimizers.Adam(schedule), loss=SegmentationCrossEntropy())

    # training: a plain loop of compiled steps (train_on_batch), the same function the
    # timing below calls, so that each backend compiles the step once
    t0 = time.perf_counter()
    for epoch in range(cfg["epochs"]):
        order = rng.permutation(len(x_train))
        for k in range(per_epoch):
            idx = order[k * batch:(k + 1) * batch]
            loss = model.train_on_batch(x_train[idx], y_train[idx])
        print(f"  [{method}] epoch {epoch + 1}/{cfg['epochs']}: loss {float(np.ravel(loss)[0]):.4f}"
              f" ({time.perf_counter() - t0:.0f} s)", file=sys.stderr, flush=True)
    fit_s = time.perf_counter() - t0

    # evaluation: dataset-level mIoU, and the same restricted to the border band
    miou = MeanIoU(num_classes)
    border = MeanIoU(num_classes, name="border_mean_iou")
    band = border_band(y_val, cfg["border"]).astype("float32")
    predictions = []
    for k in range(0, len(x_val), batch):
        logits = model.predict_on_batch(x_val[k:k + batch])
        miou.update_state(y_val[k:k + batch], logits)
        border.update_state(y_val[k:k + batch], logits, sample_weight=band[k:k + batch])
        predictions.append(np.argmax(keras.ops.convert_to_numpy(logits), axis=-1))
    if pred_path:
        np.save(pred_path, np.concatenate(predictions)[: cfg["crops"]].astype("uint8"))

    # speed: one batch, compiled, median over repeats (keras syncs when it returns numpy)
    xb, yb = x_train[:batch], y_train[:batch]
    train_ms = _median_ms(lambda: model.train_on_batch(xb, yb), cfg["timing_repeats"])
    infer_ms = _median_ms(lambda: model.predict_on_batch(xb), cfg["timing_repeats"])
    peak = peak_rss_rise_mib(rss0)

    static = build_model(architecture, method, num_classes, cfg, input_shape=x_train.shape[1:])
    return {
        "method": method,
        "val_miou": float(miou.result()),
        "border_miou": float(border.result()),
        "params": int(sum(np.prod(w.shape) for w in model.trainable_weights)),
        "train_step_ms": train_ms,
        "inference_ms": infer_ms,
        "peak_rss_mib": peak,
        "forward_mib": forward_tensor_mib(static, batch),
        "fit_s": fit_s,
        "final_loss": float(np.asarray(loss).ravel()[0]),
    }


def _run_isolated(method, cfg, architecture, seed, pred_path):
    """:func:`run_method` in a fresh Python process (same backend); parse its JSON line."""
    command = [sys.executable, os.path.abspath(__file__), "--worker", method,
               "--config", json.dumps(cfg), "--architecture", architecture,
               "--seed", str(seed), "--pred-path", pred_path]
    # stdout carries the JSON result; the worker's progress and errors go to our stderr
    done = subprocess.run(command, stdout=subprocess.PIPE, text=True, env=os.environ.copy())
    if done.returncode != 0:
        raise RuntimeError(f"the worker for {method!r} failed (exit {done.returncode}); "
                           "its error is printed above.")
    return json.loads(done.stdout.strip().splitlines()[-1])


# === Report ===

def _fmt(value, spec):
    return "n/a" if value is None else format(value, spec)


def markdown_table(results):
    """The measured version of the notes' table (one row per method)."""
    lines = [
        "| method | family | learned | val mIoU | border mIoU | parameters | "
        "train step (ms) | inference (ms) | peak RSS rise (MiB) | forward tensors (MiB) |",
        "|---|---|---|---:|---:|---:|---:|---:|---:|---:|",
    ]
    for r in results:
        lines.append(
            f"| {r['method']} | {FAMILY[r['method']]} | "
            f"{'yes' if r['method'] == 'transpose' else 'no'} | {r['val_miou']:.3f} | "
            f"{r['border_miou']:.3f} | {r['params']:,} | {r['train_step_ms']:.1f} | "
            f"{r['inference_ms']:.1f} | {_fmt(r['peak_rss_mib'], '.0f')} | "
            f"{r['forward_mib']:.2f} |")
    return "\n".join(lines)


def border_figure(images, masks, predictions, palette, cfg, path):
    """Save a PNG: crops around ground-truth borders; columns image, truth, each method.

    The crop of each image is centred on the ground-truth boundary pixel whose
    neighbourhood holds the most boundary pixels: chosen from the labels alone, never
    from the predictions, so no method is favoured.
    """
    from PIL import Image, ImageDraw

    from keras_seg.visualize import colorize

    size, zoom = cfg["crop_size"], cfg["zoom"]
    half = size // 2
    edges = border_band(masks, 1)
    names = ["image", "truth"] + list(predictions)
    cell, gap, top = size * zoom, 4, 14
    sheet = Image.new("RGB", (len(names) * (cell + gap), top + len(images) * (cell + gap)),
                      (255, 255, 255))
    draw = ImageDraw.Draw(sheet)
    for j, name in enumerate(names):
        draw.text((j * (cell + gap) + 2, 1), name, fill=(0, 0, 0))
    h, w = masks.shape[1:]
    for i in range(len(images)):
        density = _box_sum(edges[i].astype("float32"), size)
        cy, cx = np.unravel_index(np.argmax(np.where(edges[i], density, -1)), (h, w))
        y0 = int(np.clip(cy - half, 0, h - size))
        x0 = int(np.clip(cx - half, 0, w - size))
        window = (slice(y0, y0 + size), slice(x0, x0 + size))
        panels = [(images[i] * 255).round().astype("uint8")[window],
                  colorize(masks[i][window], palette)]
        panels += [colorize(pred[i][window], palette) for pred in predictions.values()]
        for j, panel in enumerate(panels):
            tile = Image.fromarray(panel).resize((cell, cell), Image.NEAREST)
            sheet.paste(tile, (j * (cell + gap), top + i * (cell + gap)))
    sheet.save(path)
    return path


def _box_sum(a, size):
    """Sum of ``a`` over the ``size x size`` box centred on each pixel (zero padded)."""
    from scipy import ndimage

    return ndimage.uniform_filter(a, size=size, mode="constant") * size * size


def parse_args(argv=None):
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--fast", action="store_true",
                   help="tiny images, 1 epoch, a few steps, in one process (CI)")
    p.add_argument("--architecture", choices=("unet", "segnet"), default="unet",
                   help="the encoder-decoder trained with each method (default: a small "
                        "U-Net; segnet: no skip connections, needs far longer training)")
    p.add_argument("--methods", default=",".join(METHODS),
                   help=f"comma-separated subset of {','.join(METHODS)}")
    p.add_argument("--epochs", type=int, default=None, help="override the mode's epochs")
    p.add_argument("--labels", choices=("objects", "classes"), default=None,
                   help="objects (default): object vs background, the six shape classes "
                        "merged; classes: the dataset's seven classes (needs far longer "
                        "training)")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--out", default=None,
                   help="folder for the markdown table and the figure (default: benchmarks/ "
                        "in full mode, a temporary folder with --fast)")
    p.add_argument("--in-process", action="store_true",
                   help="run every method in this process (faster; peak RSS less reliable)")
    p.add_argument("--worker", default=None, help=argparse.SUPPRESS)
    p.add_argument("--config", default=None, help=argparse.SUPPRESS)
    p.add_argument("--pred-path", default=None, help=argparse.SUPPRESS)
    return p.parse_args(argv)


def main(argv=None):
    args = parse_args(argv)
    if args.worker:  # a subprocess started by _run_isolated: one method, JSON on stdout
        cfg = json.loads(args.config)
        result = run_method(args.worker, cfg, args.architecture, args.seed, args.pred_path)
        print(json.dumps(result))
        return result

    import keras

    mode = "fast" if args.fast else "full"
    cfg = dict(CONFIGS[mode])
    if args.epochs is not None:
        cfg["epochs"] = args.epochs
    if args.labels is not None:
        cfg["labels"] = args.labels
    isolate = cfg["isolate"] and not args.in_process
    methods = [m.strip() for m in args.methods.split(",") if m.strip()]
    unknown = sorted(set(methods) - set(METHODS))
    if unknown or not methods:
        raise SystemExit(f"--methods: unknown {unknown}; choose from {METHODS}.")
    out = args.out or (tempfile.mkdtemp(prefix="upsampling_") if args.fast else
                       os.path.join(os.path.dirname(os.path.abspath(__file__)), os.pardir,
                                    "benchmarks"))
    os.makedirs(out, exist_ok=True)
    backend = keras.backend.backend()

    results, predictions = [], {}
    load = os.getloadavg()[0]
    t_start = time.perf_counter()
    with tempfile.TemporaryDirectory() as tmp:
        for method in methods:
            pred_path = os.path.join(tmp, f"{method}.npy")
            if isolate:
                result = _run_isolated(method, cfg, args.architecture, args.seed, pred_path)
            else:
                keras.backend.clear_session()
                result = run_method(method, cfg, args.architecture, args.seed, pred_path,
                                    measure_rss=False)
            results.append(result)
            predictions[method] = np.load(pred_path)
            print(f"{method:>10}: val mIoU {result['val_miou']:.3f}, border mIoU "
                  f"{result['border_miou']:.3f}, fit {result['fit_s']:.1f} s", flush=True)
    total_s = time.perf_counter() - t_start

    # the figure: ground truth and predictions around borders of the first val images
    _, _, x_val, y_val, labels = load_data(cfg, args.seed)
    stem = "upsampling_comparison"
    if args.architecture != "unet":
        stem += "_" + args.architecture
    figure = border_figure(x_val[: cfg["crops"]], y_val[: cfg["crops"]], predictions,
                           labels["palette"], cfg, os.path.join(out, stem + "_borders.png"))

    merged = " (the six shape classes merged into object)" if cfg["labels"] == "objects" else ""
    net = (f"SegNet(filters={tuple(cfg['filters'])}, convs={tuple(cfg['convs'])})"
           if args.architecture == "segnet" else
           f"UNet(filters={cfg['unet_filters']}, depth={cfg['unet_depth']}, batch_norm=True, "
           "dropout=0)")
    command = "python tutorials/upsampling_comparison.py " + " ".join(
        a for a in (argv if argv is not None else sys.argv[1:]))
    report = "\n".join([
        f"# Upsampling methods compared ({mode} mode)",
        "",
        f"Generated by `KERAS_BACKEND={backend} {command.strip()}` "
        f"({os.cpu_count()} CPUs, load average {load:.1f} at start, {total_s:.0f} s in all; "
        f"{'one fresh process per method' if isolate else 'all methods in one process'}).",
        "",
        f"Network: `{net}` with `upsampling=<method>`, {labels['num_classes']} classes "
        f"({', '.join(labels['class_names'])}). Data: "
        f"`SyntheticShapes` {cfg['image_size']}x{cfg['image_size']}"
        f"{merged}, object sizes {cfg['object_size'][0]:.3g}-{cfg['object_size'][1]:.3g} "
        f"of the side, options {cfg.get('data', {})}, "
        f"{cfg['train_images']} train / {cfg['val_images']} val images, seed {args.seed}. "
        f"Training: {cfg['epochs']} epochs, batch {cfg['batch_size']}, Adam lr {cfg['lr']:g} "
        "with poly decay (power 0.9), `keras_seg.losses.SegmentationCrossEntropy`. Border "
        f"mIoU: pixels within {cfg['border']} px of a ground-truth boundary. Times: median of "
        f"{cfg['timing_repeats']} compiled steps on one batch of {cfg['batch_size']}. Peak RSS "
        "rise: high-water mark of the resident memory above its level before the model was "
        "built (includes compilation; measured only with one fresh process per method, n/a "
        "otherwise). Forward tensors: all layer outputs of one forward batch, counted.",
        "",
        markdown_table(results),
        "",
        "The notes' qualitative table, for comparison:",
        "",
        NOTES_TABLE,
        "",
        f"Figure: `{os.path.basename(figure)}` (crops around ground-truth borders of the "
        "first validation images; columns: image, truth, then each method).",
        "",
    ])
    print()
    print(report)
    md_path = os.path.join(out, stem + ".md")
    with open(md_path, "w") as f:
        f.write(report)
    print(f"table: {md_path}\nfigure: {figure}")
    return {"results": results, "markdown": md_path, "figure": figure}


if __name__ == "__main__":
    main()

"""Upsampling methods measured: mIoU, border mIoU, parameters, step times and memory.

Runs the comparison of ``tutorials/upsampling_comparison.py`` (the same network trained
with each ``upsampling=`` method on :class:`keras_seg.data.SyntheticShapes`, through
the tutorial's own functions: read it for the methods and the task) and measures, for
each method, beyond the tutorial's val mIoU, border mIoU and parameters:

* **train step / inference**: median wall time of one compiled ``train_on_batch`` /
  ``predict_on_batch`` on one batch, after warm-up (compilation excluded), taken after
  training and evaluation;
* **peak RSS**: how much the process's resident memory high-water mark rose while the
  model was built, compiled, trained, evaluated and timed, see "Memory" below;
* **forward tensors**: the bytes of every tensor the forward pass of one batch
  produces, counted from the layers' static output shapes (int32 pooling indices
  included): a deterministic, backend-independent companion to the RSS column.

It writes the table (with the seed notes' qualitative table beside it) to
``upsampling_comparison.md`` and a figure, ``upsampling_comparison_borders.png``:
crops around ground-truth object borders of the first validation images, one column
per method, where blocky (nearest), rounded (bilinear), speckled (unpool) or patterned
(transpose) borders show up. What to look at besides the tutorial's columns: the
parameter and time columns (what the learned upsampling costs) and the two memory
columns for ``unpool`` (the stored indices).

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
comparable, so the column says n/a there. On a GPU one would read the device allocator
instead (``torch.cuda.max_memory_allocated``, ``jax.Device.memory_stats()``,
``tf.config.experimental.get_memory_info``); this benchmark measures the CPU.

Run (pick the backend with ``KERAS_BACKEND``; the tutorial's options apply too:
``--architecture``, ``--methods``, ``--epochs``, ``--labels``, ``--seed``)::

    # full mode: writes benchmarks/upsampling_comparison.md and *_borders.png
    python benchmarks/upsampling_comparison.py
    # seconds, meaningless numbers: what CI runs
    python benchmarks/upsampling_comparison.py --fast --out /tmp/up
"""

import argparse
import gc
import importlib.util
import json
import os
import re
import subprocess
import sys
import tempfile
import time

import numpy as np

HERE = os.path.dirname(os.path.abspath(__file__))
TUTORIAL_PATH = os.path.join(HERE, os.pardir, "tutorials", "upsampling_comparison.py")


def _load_tutorial():
    """The tutorial's module (``tutorials/`` is a folder of scripts, not a package)."""
    spec = importlib.util.spec_from_file_location("tutorial_upsampling_comparison",
                                                  TUTORIAL_PATH)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


tutorial = _load_tutorial()

# the seed notes' qualitative table (translated), printed next to the measured one
NOTES_TABLE = """| method | description | pros | cons |
|---|---|---|---|
| interpolation | neighbouring values decide the new pixel (nearest, bilinear, bicubic) | \
fast, nothing to learn | - |
| unpooling | the pooling records where each maximum was; unpooling writes the value back \
there | nothing to learn | the positions must be stored; a poor upsampling on its own |
| deconvolution | a transposed convolution learns the upsampling | learnable | more \
compute, checkerboard (grid) artifacts |"""

# measuring settings added to the tutorial's mode settings (tutorial.CONFIGS): timed
# repeats, crops of the figure (count, side, zoom), one fresh process per method
MEASURE = {
    "fast": dict(timing_repeats=2, crops=2, crop_size=16, zoom=4, isolate=False),
    "full": dict(timing_repeats=20, crops=4, crop_size=32, zoom=5, isolate=True),
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


# === Time ===

def median_ms(fn, repeats):
    """Median wall time of ``fn()`` over ``repeats`` calls after one warm-up call, in ms."""
    fn()  # warm-up
    times = []
    for _ in range(repeats):
        t0 = time.perf_counter()
        fn()
        times.append(time.perf_counter() - t0)
    return 1e3 * float(np.median(times))


# === One method ===

def run_method(method, cfg, architecture="unet", seed=0, pred_path=None, measure_rss=True,
               data=None):
    """Train, score and measure one upsampling method; return a dict of the columns.

    ``cfg`` is a tutorial mode's settings with :data:`MEASURE`'s. Called in a fresh
    worker subprocess (the default) or in the main process (``--fast`` /
    ``--in-process``; then ``measure_rss=False``: in a process that ran other methods
    before, the RSS high-water mark is not comparable between methods, and
    ``peak_rss_mib`` is None). ``data`` (the tutorial's :func:`load_data`) is loaded here
    when not given. The validation predictions of the first ``crops`` images go to
    ``pred_path`` (``.npy``) for the figure.
    """
    import keras

    if data is None:
        data = tutorial.load_data(cfg, seed)
    x_train, y_train = data[0], data[1]
    keras.ops.convert_to_numpy(keras.ops.ones((2, 2)) * 2)  # warm the backend up
    rss0 = reset_peak_rss() if measure_rss else None  # from here: what this method allocates

    model, result, predictions = tutorial.train_and_evaluate(method, data, cfg, architecture,
                                                             seed)
    if pred_path:
        np.save(pred_path, predictions[: cfg["crops"]])

    # speed: one batch, compiled, median over repeats (keras syncs when it returns numpy)
    batch = cfg["batch_size"]
    xb, yb = x_train[:batch], y_train[:batch]
    result["train_step_ms"] = median_ms(lambda: model.train_on_batch(xb, yb),
                                        cfg["timing_repeats"])
    result["inference_ms"] = median_ms(lambda: model.predict_on_batch(xb),
                                       cfg["timing_repeats"])
    result["peak_rss_mib"] = peak_rss_rise_mib(rss0)

    static = tutorial.build_model(architecture, method, data[4]["num_classes"], cfg,
                                  input_shape=x_train.shape[1:])
    result["forward_mib"] = forward_tensor_mib(static, batch)
    return result


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
            f"| {r['method']} | {tutorial.FAMILY[r['method']]} | "
            f"{'yes' if r['method'] == 'transpose' else 'no'} | {r['val_mean_iou']:.3f} | "
            f"{r['border_mean_iou']:.3f} | {r['params']:,} | {r['train_step_ms']:.1f} | "
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
    edges = tutorial.border_band(masks, 1)
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
    """The tutorial's options, the output folder, ``--in-process`` and the worker's."""
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    tutorial.add_arguments(p)
    p.add_argument("--out", default=None,
                   help="folder for the markdown table and the figure (default: benchmarks/ "
                        "in full mode, a temporary folder with --fast)")
    p.add_argument("--in-process", action="store_true",
                   help="run every method in this process (faster; peak RSS n/a)")
    p.add_argument("--worker", default=None, help=argparse.SUPPRESS)
    p.add_argument("--config", default=None, help=argparse.SUPPRESS)
    p.add_argument("--pred-path", default=None, help=argparse.SUPPRESS)
    return p.parse_args(argv)


def main(argv=None):
    """Measure every selected method, write the table and the figure; return their paths."""
    args = parse_args(argv)
    if args.worker:  # a subprocess started by _run_isolated: one method, JSON on stdout
        cfg = json.loads(args.config)
        result = run_method(args.worker, cfg, args.architecture, args.seed, args.pred_path)
        print(json.dumps(result))
        return result

    import keras

    mode = "fast" if args.fast else "full"
    cfg = {**tutorial.mode_config(args), **MEASURE[mode]}
    isolate = cfg["isolate"] and not args.in_process
    methods = tutorial.selected_methods(args.methods)
    out = args.out or (tempfile.mkdtemp(prefix="upsampling_") if args.fast else HERE)
    os.makedirs(out, exist_ok=True)
    backend = keras.backend.backend()
    data = tutorial.load_data(cfg, args.seed)
    _, _, x_val, y_val, labels = data

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
                                    measure_rss=False, data=data)
            results.append(result)
            predictions[method] = np.load(pred_path)
            print(f"{method:>10}: val mIoU {result['val_mean_iou']:.3f}, border mIoU "
                  f"{result['border_mean_iou']:.3f}, fit {result['fit_s']:.1f} s", flush=True)
    total_s = time.perf_counter() - t_start

    # the figure: ground truth and predictions around borders of the first val images
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
    command = "python benchmarks/upsampling_comparison.py " + " ".join(
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

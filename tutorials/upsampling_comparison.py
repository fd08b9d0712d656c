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

This tutorial puts the qualitative table to a test. It trains **the same
encoder-decoder** with each method of ``upsampling=`` and nothing else changed, on the
built-in synthetic dataset (:class:`keras_seg.data.SyntheticShapes`), and reports for
each method:

* **val mIoU**: dataset-level mean IoU on the validation split
  (:class:`keras_seg.metrics.MeanIoU`, one confusion matrix over all pixels);
* **border mIoU**: the same, counting only the pixels within ``border`` pixels of a
  ground-truth class boundary (a "trimap" evaluation): where upsampling matters most,
  since away from borders every method only has to fill a constant region;
* **parameters**: trainable parameters of the whole model (what learning the
  upsampling costs).

The network is a small U-Net (:func:`keras_seg.applications.UNet`, batch norm, depth 4;
2 with ``--fast``); each method only changes how its expanding path goes up x2 (and
halves the width):

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
border penalty of each method) and the parameter column (what the learned upsampling
costs).

Time and memory. ``benchmarks/upsampling_comparison.py`` runs these same functions, one
fresh process per method, and adds what this tutorial leaves out: step times, the peak
resident memory, the bytes of the forward tensors (where ``"unpool"``'s stored indices
show) and a figure of crops around object borders, one column per method. Its table
is ``benchmarks/upsampling_comparison.md``.

Run (pick the backend with ``KERAS_BACKEND``)::

    # full mode: the four methods one after the other (about 10 minutes on 2 cores)
    python tutorials/upsampling_comparison.py
    # seconds, meaningless numbers: what CI runs
    python tutorials/upsampling_comparison.py --fast
"""

import argparse
import sys
import time

import numpy as np

METHODS = ("nearest", "bilinear", "unpool", "transpose")
FAMILY = {"nearest": "interpolation", "bilinear": "interpolation",
          "unpool": "unpooling (indices)", "transpose": "deconvolution"}

# Settings of the two modes. ``fast`` exists so that CI can execute every line of this
# tutorial in seconds; its numbers mean nothing. ``full`` is what the saved table used.
CONFIGS = {
    "fast": dict(image_size=32, train_images=8, val_images=4, epochs=1, batch_size=4,
                 filters=(4, 8), convs=(1, 1), unet_filters=4, unet_depth=2, lr=3e-3,
                 border=1, object_size=(1 / 8, 1 / 2), labels="objects"),
    # full: the demo's lessons (benchmarks/demo.md): a depth-4 U-Net for context, Adam
    # 6e-3, half the default clutter and texture strength
    "full": dict(image_size=64, train_images=2048, val_images=256, epochs=8, batch_size=16,
                 filters=(12, 24, 48), convs=(2, 2, 2), unet_filters=12, unet_depth=4,
                 lr=6e-3, border=2, object_size=(1 / 12, 1 / 2), labels="objects",
                 data={"clutter": 0.5, "texture": 0.4, "max_objects": 6}),
}


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


# === One method ===

def train_and_evaluate(method, data, cfg, architecture="unet", seed=0):
    """Train the network with one upsampling method and score it on the validation split.

    ``data`` is what :func:`load_data` returns. Returns ``(model, result, predictions)``:
    the trained model, a dict with ``method``, ``val_mean_iou``, ``border_mean_iou``, ``params``,
    ``fit_s`` (training seconds) and ``final_loss``, and the predicted label maps of the
    validation images (uint8, ``(N, H, W)``).
    """
    import keras

    from keras_seg.losses import SegmentationCrossEntropy
    from keras_seg.metrics import MeanIoU

    x_train, y_train, x_val, y_val, labels = data
    num_classes = labels["num_classes"]
    keras.utils.set_random_seed(seed)
    rng = np.random.default_rng(seed)
    model = build_model(architecture, method, num_classes, cfg)
    batch = cfg["batch_size"]
    per_epoch = len(x_train) // batch  # full batches only: one compiled shape
    schedule = keras.optimizers.schedules.PolynomialDecay(
        cfg["lr"], cfg["epochs"] * per_epoch, 0.0, power=0.9)
    model.compile(optimizer=keras.optimizers.Adam(schedule), loss=SegmentationCrossEntropy())

    # training: a plain loop of compiled steps (train_on_batch), so that each backend
    # compiles the step once and the order of the batches is ours to seed
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

    result = {
        "method": method,
        "val_mean_iou": float(miou.result()),
        "border_mean_iou": float(border.result()),
        "params": int(sum(np.prod(w.shape) for w in model.trainable_weights)),
        "fit_s": fit_s,
        "final_loss": float(np.asarray(loss).ravel()[0]),
    }
    return model, result, np.concatenate(predictions).astype("uint8")


# === Command line ===

def mode_config(args):
    """The settings of ``args``' mode with its overrides (``--epochs``, ``--labels``)."""
    cfg = dict(CONFIGS["fast" if args.fast else "full"])
    if args.epochs is not None:
        cfg["epochs"] = args.epochs
    if args.labels is not None:
        cfg["labels"] = args.labels
    return cfg


def selected_methods(text):
    """The methods of a comma-separated ``--methods`` value, checked."""
    methods = [m.strip() for m in text.split(",") if m.strip()]
    unknown = sorted(set(methods) - set(METHODS))
    if unknown or not methods:
        raise SystemExit(f"--methods: unknown {unknown}; choose from {METHODS}.")
    return methods


def add_arguments(parser):
    """The options of the comparison (the benchmark script adds its own to these)."""
    parser.add_argument("--fast", action="store_true",
                        help="tiny images, 1 epoch, a few steps (CI)")
    parser.add_argument("--architecture", choices=("unet", "segnet"), default="unet",
                        help="the encoder-decoder trained with each method (default: a "
                             "small U-Net; segnet: no skip connections, needs far longer "
                             "training)")
    parser.add_argument("--methods", default=",".join(METHODS),
                        help=f"comma-separated subset of {','.join(METHODS)}")
    parser.add_argument("--epochs", type=int, default=None,
                        help="override the mode's epochs")
    parser.add_argument("--labels", choices=("objects", "classes"), default=None,
                        help="objects (default): object vs background, the six shape "
                             "classes merged; classes: the dataset's seven classes (needs "
                             "far longer training)")
    parser.add_argument("--seed", type=int, default=0,
                        help="seed of the data, the initialisation and the batch order")
    return parser


def summary(results):
    """The results as an aligned text table, with each method's border gap."""
    lines = [f"{'method':>10}  {'family':<19}  {'val mIoU':>8}  {'border mIoU':>11}  "
             f"{'gap':>6}  {'parameters':>10}"]
    for r in results:
        val, border = r["val_mean_iou"], r["border_mean_iou"]
        lines.append(f"{r['method']:>10}  {FAMILY[r['method']]:<19}  {val:8.3f}  "
                     f"{border:11.3f}  {val - border:6.3f}  {r['params']:>10,}")
    return "\n".join(lines)


def main(argv=None):
    """Train and score every selected method; print the comparison; return the results."""
    import keras

    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    args = add_arguments(parser).parse_args(argv)
    cfg = mode_config(args)
    methods = selected_methods(args.methods)
    data = load_data(cfg, args.seed)

    results = []
    for method in methods:
        keras.backend.clear_session()
        _, result, _ = train_and_evaluate(method, data, cfg, args.architecture, args.seed)
        results.append(result)
        print(f"{method:>10}: val mIoU {result['val_mean_iou']:.3f}, border mIoU "
              f"{result['border_mean_iou']:.3f}, fit {result['fit_s']:.1f} s", flush=True)

    print(f"\n{data[4]['num_classes']} classes ({', '.join(data[4]['class_names'])}), "
          f"border: within {cfg['border']} px of a ground-truth boundary; gap = val mIoU - "
          "border mIoU\n")
    print(summary(results))
    return results


if __name__ == "__main__":
    main()

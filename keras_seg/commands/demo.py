"""``keras-seg demo``: the whole job in one command, on the built-in synthetic dataset.

Trains a small U-Net on :class:`keras_seg.data.SyntheticShapes`, prints the per-class IoU
table of the held-out test split, writes pictures of test predictions
(``OUTPUT/pictures/test_NNN.png``: image / truth / prediction / overlay with a legend of
the classes), the test confusion matrix (``OUTPUT/confusion_matrix.png``) and, through
:func:`keras_seg.trainer.train`, the training curves (``OUTPUT/run/curves.png``), and
exports the model (ONNX when tf2onnx is installed, else SavedModel) with a parity check
against Keras.
"""

import os
import time

# Settings measured on a 2-core CPU (benchmarks/demo.md): test mIoU 0.73-0.83 in 4.5-10
# minutes of training, depending on the backend's speed, for the runs that leave the
# initial all-background plateau in time; some seeds do not (0.26-0.50), on any backend.
# The synthetic training split is generated on demand, so it is made large (2048 batches)
# and each short epoch draws random batches of it: the 2560 steps see mostly new images
# (no augmentation needed).
DEMO_DEFAULTS = {
    "epochs": 10,
    "steps_per_epoch": 256,
    "batch_size": 16,
    "lr": 6e-3,
    "size": 64,
    "train_images": 32768,
    "val_images": 256,
    "filters": 16,
    "depth": 4,
    "dropout": 0.0,
    "workers": 2,
}

# The built-in dataset as the demo draws it: five of the six shape classes (star left
# out: one class fewer to learn in the CPU budget), the default object sizes (1/16 to 1/2
# of the side), occlusion and noise, half the default clutter and texture strength, at
# most six objects per image. `keras-seg train / evaluate --synthetic-args` take the same
# options (the run's config.json records them).
DEMO_DATA = {
    "shapes": ["disc", "square", "triangle", "ring", "cross"],
    "clutter": 0.5,
    "texture": 0.4,
    "max_objects": 6,
}


def add_parser(sub):
    """Register the ``demo`` sub-command on ``sub`` (an argparse sub-parsers object).

    Args:
        sub: the object returned by ``ArgumentParser.add_subparsers``.
    """
    d = DEMO_DEFAULTS
    p = sub.add_parser("demo", help="train a small U-Net on the built-in synthetic dataset, "
                       "report mIoU, save pictures, export")
    p.add_argument("--epochs", type=int, default=d["epochs"])
    p.add_argument("--steps-per-epoch", type=int, default=d["steps_per_epoch"])
    p.add_argument("--batch-size", type=int, default=d["batch_size"])
    p.add_argument("--lr", type=float, default=d["lr"])
    p.add_argument("--size", type=int, default=d["size"], help="image side")
    p.add_argument("--train-images", type=int, default=d["train_images"])
    p.add_argument("--val-images", type=int, default=d["val_images"],
                   help="images in the validation and in the test split")
    p.add_argument("--filters", type=int, default=d["filters"], help="U-Net base width")
    p.add_argument("--depth", type=int, default=d["depth"], help="U-Net poolings")
    p.add_argument("--dropout", type=float, default=d["dropout"],
                   help="dropout rate at the end of the U-Net's contracting path (0: none; "
                   "the paper's 0.5 stalled 2 of 5 runs, none 2 of 9: benchmarks/demo.md)")
    p.add_argument("--workers", type=int, default=d["workers"],
                   help="threads generating training batches while the model trains")
    p.add_argument("--pictures", type=int, default=8,
                   help="test pictures to write (image / truth / prediction / overlay); 0: none")
    p.add_argument("--export", default="auto", choices=("auto", "onnx", "saved_model", "none"))
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--output", default="demo_output", help="output folder")
    p.add_argument("--verbose", type=int, default=None, choices=(0, 1, 2),
                   help="Keras fit display: 0 silent, 1 progress bar, 2 one line per epoch "
                   "(default: 1 on a terminal, 2 when the output is redirected)")
    p.set_defaults(func=run)


def run(args):
    """Run the parsed ``keras-seg demo`` command; return the exit status.

    Args:
        args: the parsed arguments (see :func:`add_parser`).
    """
    import keras

    from keras_seg import visualize
    from keras_seg.commands._common import fit_verbosity
    from keras_seg.model_base import inference_model
    from keras_seg.trainer import TrainConfig, evaluate, format_iou_table, train

    start = time.time()
    print(f"keras {keras.__version__}, backend {keras.backend.backend()}")
    config = TrainConfig(
        model="unet",
        model_options={"filters": args.filters, "depth": args.depth, "batch_norm": True,
                       "dropout": args.dropout},
        data="synthetic", synthetic_size=args.size, synthetic_train=args.train_images,
        synthetic_val=args.val_images, synthetic_options=dict(DEMO_DATA), epochs=args.epochs,
        steps_per_epoch=args.steps_per_epoch, batch_size=args.batch_size,
        lr=args.lr, optimizer="adam", schedule="poly", augment=False,
        output=os.path.join(args.output, "run"), seed=args.seed, workers=args.workers,
        resume=False,
        verbose=fit_verbosity(args.verbose),
    )
    config.validate()  # bad flags are reported before anything runs
    if args.pictures < 0:
        raise ValueError(f"--pictures must be >= 0 (0 writes none), got {args.pictures}.")
    print(f"data: SyntheticShapes {args.size}x{args.size}, {DEMO_DATA}; U-Net filters "
          f"{args.filters}, depth {args.depth}; {args.epochs} epochs x {args.steps_per_epoch} "
          f"steps of {args.batch_size} new images")
    result = train(config)
    model = inference_model(result["model"])
    test = config.dataset("test")
    scores = evaluate(model, test, ignore_index=config.ignore_index, batch_size=8)
    print(f"\nHeld-out test split ({scores['images']} images, {args.size}x{args.size}):")
    print(format_iou_table(scores))

    from keras_seg import inference

    pictures = os.path.join(args.output, "pictures")
    count = min(args.pictures, len(test))
    images = [test[i][0] for i in range(count)]
    preds = inference.predict(model, images) if count else []  # --pictures 0: none
    for i in range(count):
        figure = visualize.prediction_figure(images[i], preds[i], test.palette,
                                             truth=test[i][1], class_names=test.class_names,
                                             title=f"test image {i}")
        visualize.save_figure(figure, os.path.join(pictures, f"test_{i:03d}.png"))
    visualize.save_confusion_matrix(
        scores["confusion"], scores["class_names"],
        os.path.join(args.output, "confusion_matrix.png"),
        title=f"U-Net on the held-out test split ({scores['images']} images)")
    print(f"wrote {count} image / truth / prediction / overlay pictures to {pictures}/, "
          f"{args.output}/confusion_matrix.png and the training curves "
          f"{config.output}/curves.png")
    _export(model, args)
    elapsed = time.time() - start
    print(f"\ndemo: test mIoU {scores['mean_iou']:.4f} (validation "
          f"{result['val_mean_iou']:.4f}); "
          f"training {result['seconds']:.0f} s, total {elapsed:.0f} s")
    return 0


def _export(model, args):
    fmt = args.export
    if fmt == "none":
        return
    if fmt == "auto":
        try:
            import onnxruntime  # noqa: F401
            import tf2onnx  # noqa: F401

            fmt = "onnx"
        except ImportError:
            fmt = "saved_model"
    from keras_seg.export import export

    path = os.path.join(args.output, "unet_demo.onnx" if fmt == "onnx" else "unet_demo_savedmodel")
    report = export(model, path, format=fmt)
    print(report)  # the path, the route and the parity check against Keras

"""The ``keras-seg`` command line: ``keras-seg --help``."""

import argparse
import importlib
import os
import sys
import time


def _cmd_models(args):
    from keras_seg import applications, backbones

    print("Architectures (keras_seg.applications):")
    for name in applications.available():
        builder = applications.MODELS[name]
        doc = (builder.__doc__ or "").strip().splitlines()
        print(f"  {name:<16} {builder.__name__:<16} {doc[0] if doc else ''}")
    print("Backbones (keras_seg.backbones.get):")
    for name in backbones.available():
        print(f"  {name}")
    return 0


def _cmd_demo(args):
    """Build a U-Net, train it a few steps on random data and print its summary."""
    import keras
    import numpy as np

    from keras_seg.applications import UNet

    print(f"keras {keras.__version__}, backend {keras.backend.backend()}")
    keras.utils.set_random_seed(args.seed)
    size, classes = args.size, 3
    rng = np.random.default_rng(args.seed)
    images = rng.uniform(0, 1, (8, size, size, 3)).astype("float32")
    # a learnable target: class by brightness band of the red channel
    masks = np.minimum((images[..., 0] * classes).astype("int32"), classes - 1)
    model = UNet(num_classes=classes, filters=args.filters, depth=3)
    model.summary(line_length=100)
    model.compile(
        optimizer=keras.optimizers.Adam(1e-3),
        loss=keras.losses.SparseCategoricalCrossentropy(from_logits=True),
        metrics=["accuracy"],
    )
    start = time.time()
    history = model.fit(images, masks, batch_size=4, epochs=args.epochs, verbose=2)
    print(f"trained {args.epochs} epochs in {time.time() - start:.1f} s; loss "
          f"{history.history['loss'][0]:.4f} -> {history.history['loss'][-1]:.4f}")
    if args.output:
        os.makedirs(args.output, exist_ok=True)
        path = os.path.join(args.output, "unet_demo.keras")
        model.save(path)
        print(f"saved {path}")
    return 0


# Sub-commands living in keras_seg/commands/<name>.py; each module defines
# ``add_parser(subparsers)`` which registers its parser and sets ``func``.
COMMAND_MODULES = []


def build_parser():
    parser = argparse.ArgumentParser(
        prog="keras-seg",
        description="Semantic segmentation models for Keras 3 (TensorFlow, JAX, PyTorch). "
        "Set KERAS_BACKEND to choose the backend.",
    )
    from keras_seg import __version__

    parser.add_argument("--version", action="version", version=f"keras-seg {__version__}")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")
    p = sub.add_parser("models", help="list the architectures and backbones")
    p.set_defaults(func=_cmd_models)
    p = sub.add_parser("demo", help="build a U-Net and train it briefly on random data")
    p.add_argument("--epochs", type=int, default=5, help="training epochs (default 5)")
    p.add_argument("--size", type=int, default=64, help="image side (default 64)")
    p.add_argument("--filters", type=int, default=16, help="U-Net base width (default 16)")
    p.add_argument("--seed", type=int, default=0, help="random seed")
    p.add_argument("--output", default="demo_output", help="folder for the saved model "
                   "('' to skip saving)")
    p.set_defaults(func=_cmd_demo)
    for name in COMMAND_MODULES:
        importlib.import_module(f"keras_seg.commands.{name}").add_parser(sub)
    return parser


def main(argv=None):
    parser = build_parser()
    args = parser.parse_args(argv)
    if not getattr(args, "command", None):
        parser.print_help()
        return 0
    return args.func(args)


if __name__ == "__main__":
    sys.exit(main())

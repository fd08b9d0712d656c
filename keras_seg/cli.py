"""The ``keras-seg`` command line: ``keras-seg --help``."""

import argparse
import importlib
import sys


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


# Sub-commands living in keras_seg/commands/<name>.py; each module defines
# ``add_parser(subparsers)`` which registers its parser and sets ``func``.
COMMAND_MODULES = ["demo", "train", "evaluate", "predict", "export", "recipe"]


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

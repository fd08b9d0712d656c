"""``keras-seg export``: a .keras model to SavedModel / ONNX / LiteRT, checked against Keras."""

import argparse
import os

_SUFFIX_FORMATS = {".onnx": "onnx", ".tflite": "litert"}
_DEFAULT_SUFFIX = {"onnx": ".onnx", "litert": ".tflite", "saved_model": "_saved_model"}


def add_parser(sub):
    """Register the ``export`` sub-command on ``sub`` (an argparse sub-parsers object).

    Args:
        sub: the object returned by ``ArgumentParser.add_subparsers``.
    """
    from keras_seg.export import FORMATS

    p = sub.add_parser(
        "export", help="export a .keras model to SavedModel, ONNX or LiteRT (from any "
        "backend, through TensorFlow) and check the artifact's outputs against Keras",
        description="Export the inference model (main 'logits' output) of a .keras file. "
        "SavedModel and ONNX keep the batch and spatial sizes dynamic; LiteRT has a fixed "
        "--input-size. The artifact is checked against Keras at two input sizes and only "
        "then moved to --output.")
    p.add_argument("model", help="path of a .keras segmentation model")
    p.add_argument("--format", choices=FORMATS, default=None,
                   help="default: from the --output suffix (.onnx, .tflite), else saved_model")
    p.add_argument("--output", default=None,
                   help="artifact path (default: MODEL with .onnx / .tflite / _saved_model)")
    p.add_argument("--input-size", type=_size, default=None, metavar="HxW",
                   help="fixed input size, required for litert (e.g. 512x512)")
    p.add_argument("--opset", type=int, default=None, help="ONNX opset (default: tf2onnx's)")
    p.add_argument("--no-check", dest="check", action="store_false",
                   help="skip the parity check against Keras")
    p.add_argument("--check-sizes", type=_size, nargs="+", default=None, metavar="HxW",
                   help="input sizes of the parity check (default 67x93 45x71)")
    p.add_argument("--rtol", type=float, default=None,
                   help="relative tolerance of the check (default 1e-4 for float32 models)")
    p.add_argument("--verbose", action="store_true", help="show the converters' output")
    p.set_defaults(func=run)


def _size(text):
    parts = text.lower().replace(",", "x").split("x")
    try:
        h, w = (int(v) for v in parts)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected HxW, e.g. 512x512, got {text!r}") from None
    if h < 1 or w < 1:
        raise argparse.ArgumentTypeError(f"sizes must be positive, got {text!r}")
    return h, w


def run(args):
    """Run the parsed ``keras-seg export`` command; return the exit status.

    The model file and the output path (its folder created and writable) are checked
    before the (slow) export starts; bad input raises and :func:`keras_seg.cli.main`
    reports it on one line.

    Args:
        args: the parsed arguments (see :func:`add_parser`).
    """
    from keras_seg.commands._common import load_segmentation_model
    from keras_seg.export import DEFAULT_SIZES, export

    fmt = args.format
    if fmt is None:
        suffix = os.path.splitext(args.output or "")[1].lower()
        fmt = _SUFFIX_FORMATS.get(suffix, "saved_model")
    output = args.output or os.path.splitext(args.model)[0] + _DEFAULT_SUFFIX[fmt]
    model = load_segmentation_model(args.model)
    report = export(model, output, fmt, check=args.check,
                    sizes=args.check_sizes or DEFAULT_SIZES, rtol=args.rtol,
                    opset=args.opset, input_size=args.input_size, verbose=args.verbose)
    print(report)
    return 0

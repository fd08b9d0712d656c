"""``keras-seg predict``: segment image files with a saved model.

Writes, for each image ``<stem>.<ext>``, ``OUTPUT/<stem>.png`` (the class-index mask
as a palette PNG: pixel value = class, colors from
:func:`keras_seg.data.base.default_palette`) and ``OUTPUT/<stem>_overlay.png`` (the
colored mask blended over the image); with ``--pictures`` also
``OUTPUT/<stem>_picture.png``, a picture to look at: image / prediction / overlay
columns with titles and a legend of the class colors with their names
(:func:`keras_seg.visualize.prediction_figure`).

The class names are ``--class-names a,b,c`` (or ``@FILE``, one per line: the syntax of
``train`` / ``evaluate``), else the ``class_names`` of the ``config.json`` beside the
model (the run folder ``keras-seg train`` wrote it to), else ``class_<k>``.
"""

import os

import numpy as np

# the loader shared with evaluate and export (evaluate imports it from here), and the
# exit status keras_seg.cli.main gives bad input (a missing or unreadable file, a
# model that is not a segmentation model)
from keras_seg.cli import EXIT_BAD_INPUT  # noqa: F401
from keras_seg.commands._common import load_segmentation_model


def add_parser(sub):
    """Register the ``predict`` sub-command on ``sub`` (an argparse sub-parsers object).

    Args:
        sub: the object returned by ``ArgumentParser.add_subparsers``.
    """
    from keras_seg.inference import TTA_SCALES
    from keras_seg.trainer.config import parse_class_names

    p = sub.add_parser(
        "predict", help="segment images with a .keras model: index-mask PNGs and overlays",
        description="Segment images with a saved .keras model. Writes OUTPUT/<stem>.png "
        "(palette PNG, pixel value = class index) and OUTPUT/<stem>_overlay.png, and with "
        "--pictures OUTPUT/<stem>_picture.png (titled columns and a legend of the classes).")
    p.add_argument("model", help="path of a .keras segmentation model")
    p.add_argument("images", nargs="+", help="image files (anything Pillow reads)")
    p.add_argument("--output", required=True, help="output folder (created)")
    p.add_argument("--tta", action="store_true",
                   help="multi-scale (" + ", ".join(str(s) for s in TTA_SCALES) +
                   ") + horizontal-flip test-time augmentation, as DeepLab v3 / PSPNet")
    p.add_argument("--scales", type=float, nargs="+", default=None, metavar="S",
                   help="test-time scales (overrides those of --tta), e.g. 0.75 1.0 1.25")
    p.add_argument("--flip", action="store_true", help="add horizontal-flip TTA")
    p.add_argument("--crf", action="store_true",
                   help="refine with DenseCRF (DeepLab v1's post-processing)")
    p.add_argument("--tile", type=int, default=None, metavar="N",
                   help="sliding-window side in pixels for large images (overlap-tile input "
                   "side for unpadded U-Nets)")
    p.add_argument("--overlap", type=float, default=1 / 3, metavar="F",
                   help="overlap fraction of neighbouring windows (default 1/3)")
    p.add_argument("--stride", type=int, default=None, metavar="N",
                   help="pad image sides to a multiple of N (default: the model's own padding "
                   "multiple, else 32)")
    p.add_argument("--batch-size", type=int, default=1, help="windows / images per forward "
                   "pass (default 1)")
    p.add_argument("--alpha", type=float, default=0.5,
                   help="weight of the mask colors in the overlay (default 0.5)")
    p.add_argument("--pictures", action="store_true",
                   help="also write OUTPUT/<stem>_picture.png: image / prediction / overlay "
                   "with column titles and a legend of the class colors and names")
    p.add_argument("--class-names", type=parse_class_names, default=None,
                   metavar="A,B,C|@FILE",
                   help="the model's class names in label order, a,b,c or @FILE (one per "
                   "line), as train and evaluate take them; named in the pictures' legends "
                   "and the printed pixel counts (default: the class_names of the "
                   "config.json beside the model, else class_<k>)")
    p.set_defaults(func=run)


def read_image(path, channels=3):
    """Read an image file as a ``uint8`` array ``(H, W, channels)`` (RGB or gray).

    Raises:
        FileNotFoundError: the file does not exist.
        ValueError: Pillow cannot read it, or ``channels`` is not 1 or 3.
    """
    from PIL import Image, UnidentifiedImageError

    if channels not in (1, 3):
        raise ValueError(f"The model takes {channels}-channel images; image files give 1 "
                         "(gray) or 3 (RGB). Predict with keras_seg.inference.predict on "
                         "your own arrays.")
    if not os.path.exists(path):
        raise FileNotFoundError(f"Image {path!r} does not exist.")
    try:
        with Image.open(path) as im:
            array = np.asarray(im.convert("RGB" if channels == 3 else "L"))
    except (UnidentifiedImageError, OSError, ValueError) as err:
        raise ValueError(f"Cannot read image {path!r} ({type(err).__name__}: {err}); pass a "
                         "PNG, JPEG or another format Pillow reads.") from None
    return array if channels == 3 else array[..., None]


def save_index_png(mask, path, palette):
    """Write a class map as a palette PNG (pixel value = class index), atomically.

    More than 256 classes do not fit a palette: those masks are written as 16-bit
    grayscale PNGs (same pixel values, no colors).

    Args:
        mask: integer class map ``(H, W)``.
        path: the PNG file to write.
        palette: ``(num_classes, 3)`` uint8 colors stored in the palette.

    Returns:
        ``path``.
    """
    from PIL import Image

    from keras_seg.visualize import write_atomic

    mask = np.asarray(mask)
    if mask.max(initial=0) < 256:
        image = Image.fromarray(mask.astype(np.uint8))  # "L"; putpalette makes it "P"
        flat = np.zeros((256, 3), np.uint8)
        flat[:min(len(palette), 256)] = palette[:256]
        image.putpalette(flat.reshape(-1).tolist())
    else:
        image = Image.fromarray(mask.astype(np.uint16))
    return write_atomic(path, lambda tmp: image.save(tmp, format="PNG"))


def output_names(stem, pictures=False):
    """The files ``keras-seg predict`` writes for an image of file stem ``stem``.

    Args:
        stem: the image file's name without folder and extension.
        pictures: whether ``--pictures`` is given.
    """
    names = [stem + ".png", stem + "_overlay.png"]
    return names + [stem + "_picture.png"] if pictures else names


def class_names_for(model_path, num_classes, given=None):
    """The names of the classes of a model: ``given``, else the run's, else ``class_<k>``.

    Args:
        model_path: the ``.keras`` file; the ``class_names`` of the ``config.json`` in its
            folder are used when ``given`` is None (see
            :func:`keras_seg.commands._common.stored_class_names`).
        num_classes: the model's number of classes.
        given: the ``--class-names`` value (a sequence of names), or None.

    Returns:
        A list of ``num_classes`` names.

    Raises:
        ValueError: ``given`` is not ``num_classes`` distinct names.
    """
    from keras_seg.commands._common import stored_class_names
    from keras_seg.trainer.config import check_class_names

    if given is not None:
        if len(given) != num_classes:
            raise ValueError(
                f"--class-names gives {len(given)} names but the model {model_path!r} "
                f"predicts {num_classes} classes; give one name per class, in label order.")
        return list(check_class_names(given, num_classes, "predict --class-names"))
    names = stored_class_names(model_path, num_classes)
    return names if names is not None else [f"class_{k}" for k in range(num_classes)]


def run(args):
    """Run the parsed ``keras-seg predict`` command; return the exit status.

    Bad input raises (``FileNotFoundError``, ``ValueError``) before anything is
    written; :func:`keras_seg.cli.main` reports it.

    Args:
        args: the parsed arguments (see :func:`add_parser`).
    """
    from keras_seg import inference, visualize
    from keras_seg.data.base import default_palette

    stems, writers = {}, {}
    for path in args.images:
        stem = os.path.splitext(os.path.basename(path))[0]
        for name in output_names(stem, args.pictures):
            if name in writers:
                raise ValueError(f"Images {writers[name]!r} and {path!r} would both write "
                                 f"{name}; rename one or predict them into different "
                                 "folders.")
            writers[name] = path
        stems[stem] = path
    model = load_segmentation_model(args.model)
    scales = args.scales or (inference.TTA_SCALES if args.tta else (1.0,))
    predictor = inference.Predictor(
        model, scales=scales, flip=args.flip or args.tta, crf=args.crf, tile=args.tile,
        overlap=args.overlap, batch_size=args.batch_size, stride=args.stride)
    # one logit = binary: classes 0 and 1
    num_classes = max(predictor.num_classes, 2)
    names = class_names_for(args.model, num_classes, args.class_names)
    images = [read_image(path, predictor.channels) for path in args.images]
    masks = predictor(images)
    palette = default_palette(num_classes)
    os.makedirs(args.output, exist_ok=True)
    for (stem, path), image, mask in zip(stems.items(), images, masks, strict=True):
        mask_path = save_index_png(mask, os.path.join(args.output, stem + ".png"), palette)
        rgb = image if image.shape[-1] == 3 else np.repeat(image, 3, axis=-1)
        written = [mask_path, visualize.save_png(
            visualize.overlay(rgb, mask, palette, alpha=args.alpha),
            os.path.join(args.output, stem + "_overlay.png"))]
        if args.pictures:
            figure = visualize.prediction_figure(rgb, mask, palette, class_names=names,
                                                 alpha=args.alpha,
                                                 title=os.path.basename(path))
            written.append(visualize.save_figure(
                figure, os.path.join(args.output, stem + "_picture.png")))
        counts = np.bincount(mask.reshape(-1), minlength=len(palette))
        present = ", ".join(f"{names[c]}: {n}" for c, n in enumerate(counts) if n)
        print(f"{path} -> {', '.join(written)} ({mask.shape[1]}x{mask.shape[0]}; "
              f"pixels per class {present})")
    return 0

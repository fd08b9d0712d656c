"""``keras-seg evaluate``: per-class IoU, mIoU, pixel accuracy and a confusion-matrix picture.

The classes are the model's: its output channels are the number of classes, so a split
where a class is absent still counts the pixels predicted as that class. The class names
are ``--class-names``, else the ``class_names`` of the ``config.json`` beside the model
(the run folder ``keras-seg train`` wrote it to), else the dataset's.

The dataset flags are :class:`~keras_seg.trainer.TrainConfig` fields, generated from the
fields' descriptions as ``keras-seg train`` does, so a run's data options can be passed
unchanged; ``--split`` and ``--synthetic-count`` replace the training split options.

``--output FOLDER`` writes ``eval.json`` (the :func:`keras_seg.trainer.evaluate` result,
with the key names of :func:`keras_seg.metrics.iou_from_confusion`: ``per_class_iou``,
``mean_iou``, ``pixel_accuracy``, ``mean_accuracy``, ``frequency_weighted_iou``, plus
``confusion``, ``num_classes``, ``class_names``, ``images``) and ``confusion_matrix.png``
(:func:`keras_seg.visualize.confusion_figure`: class names on both axes, row-normalized
values in the cells, each row's pixel count, a color scale).
"""

import json
import os

#: the TrainConfig fields that are flags of ``evaluate``
CONFIG_FIELDS = ("data", "data_format", "num_classes", "class_names", "synthetic_size",
                 "synthetic_options", "ignore_index", "seed")


def add_parser(sub):
    """Register the ``evaluate`` sub-command on ``sub`` (an argparse sub-parsers object).

    Args:
        sub: the object returned by ``ArgumentParser.add_subparsers``.
    """
    from keras_seg.trainer import add_config_arguments

    p = sub.add_parser("evaluate", help="score a .keras model on a dataset split")
    p.add_argument("model", help="path of a .keras model")
    p.add_argument("--split", default="val", help="split to score (default: val)")
    p.add_argument("--synthetic-count", type=int, default=128,
                   help="images of the synthetic split (default: 128)")
    p.add_argument("--tta", action="store_true",
                   help="multi-scale (0.5 ... 1.75) + flip test-time augmentation")
    p.add_argument("--limit", type=int, default=None, help="evaluate the first N images")
    p.add_argument("--output", dest="report", default=None, metavar="FOLDER",
                   help="folder for eval.json (the scores and the confusion counts) and "
                   "confusion_matrix.png (row-normalized, with the class names)")
    group = p.add_argument_group(
        "data", "The classes are the model's: --num-classes, when given, must equal its output "
        "channels; without --class-names the names come from the config.json beside the "
        "model, else from the dataset.")
    add_config_arguments(group, CONFIG_FIELDS)
    p.set_defaults(func=run)


def run(args):
    """Run the parsed ``keras-seg evaluate`` command; return the exit status.

    Args:
        args: the parsed arguments (see :func:`add_parser`).
    """
    from keras_seg import visualize
    from keras_seg.commands._common import load_segmentation_model, stored_class_names
    from keras_seg.trainer import (
        TrainConfig,
        config_values,
        evaluate,
        evaluation_to_json,
        format_iou_table,
    )
    from keras_seg.trainer.evaluation import model_num_classes

    model = load_segmentation_model(args.model)
    config = TrainConfig(**config_values(args, CONFIG_FIELDS),
                         synthetic_train=args.synthetic_count,
                         synthetic_val=args.synthetic_count).validate()
    classes = model_num_classes(model)
    if config.num_classes is not None and config.num_classes != classes:
        raise ValueError(
            f"--num-classes {config.num_classes} does not match the model {args.model!r}, "
            f"which predicts {classes} classes (its output channels). Leave --num-classes "
            "out, or evaluate the model trained for that many classes.")
    if config.class_names is not None and len(config.class_names) != classes:
        raise ValueError(
            f"--class-names gives {len(config.class_names)} names but the model "
            f"{args.model!r} predicts {classes} classes; give one name per class, in label "
            "order.")
    names = config.class_names
    if names is None:
        names = stored_class_names(args.model, classes)
    # a folder dataset is read with the model's classes (no scan of the masks); the
    # other datasets have their own, which evaluate checks against the model's
    folder = config.resolved_data_format() == "folder"
    dataset = config.dataset(args.split, num_classes=classes if folder else None)
    scales = (0.5, 0.75, 1.0, 1.25, 1.5, 1.75) if args.tta else (1.0,)
    result = evaluate(model, dataset, ignore_index=config.ignore_index, scales=scales,
                      flip=args.tta, limit=args.limit, num_classes=classes,
                      class_names=names, model_name=args.model)
    print(f"{args.model} on {config.data} [{args.split}], {result['images']} images, "
          f"{classes} classes (the model's):")
    print(format_iou_table(result))
    if args.report:
        os.makedirs(args.report, exist_ok=True)

        def write_json(tmp):
            with open(tmp, "w") as f:
                json.dump(evaluation_to_json(result), f, indent=2)

        visualize.write_atomic(os.path.join(args.report, "eval.json"), write_json)
        title = (f"{os.path.basename(args.model)} on {config.data} [{args.split}], "
                 f"{result['images']} images")
        path = visualize.save_confusion_matrix(
            result["confusion"], result["class_names"],
            os.path.join(args.report, "confusion_matrix.png"), title=title)
        print(f"wrote {path} and eval.json")
    return 0

"""``keras-seg evaluate``: per-class IoU, mIoU, pixel accuracy and a confusion-matrix image.

The dataset flags are :class:`~keras_seg.trainer.TrainConfig` fields, generated from the
fields' descriptions as ``keras-seg train`` does, so a run's data options can be passed
unchanged; ``--split`` and ``--synthetic-count`` replace the training split options.
"""

import json
import os

#: the TrainConfig fields that are flags of ``evaluate``
CONFIG_FIELDS = ("data", "data_format", "num_classes", "synthetic_size", "synthetic_options",
                 "ignore_index", "seed")


def add_parser(sub):
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
                   help="folder for confusion_matrix.png and eval.json")
    add_config_arguments(p.add_argument_group("data"), CONFIG_FIELDS)
    p.set_defaults(func=run)


def run(args):
    from keras_seg import visualize
    from keras_seg.commands.predict import load_segmentation_model
    from keras_seg.trainer import (
        TrainConfig,
        config_values,
        evaluate,
        evaluation_to_json,
        format_iou_table,
    )

    model = load_segmentation_model(args.model)
    config = TrainConfig(**config_values(args, CONFIG_FIELDS),
                         synthetic_train=args.synthetic_count,
                         synthetic_val=args.synthetic_count).validate()
    dataset = config.dataset(args.split)
    scales = (0.5, 0.75, 1.0, 1.25, 1.5, 1.75) if args.tta else (1.0,)
    result = evaluate(model, dataset, ignore_index=config.ignore_index, scales=scales,
                      flip=args.tta, limit=args.limit)
    print(f"{args.model} on {config.data} [{args.split}], {result['images']} images:")
    print(format_iou_table(result))
    if args.report:
        os.makedirs(args.report, exist_ok=True)
        with open(os.path.join(args.report, "eval.json"), "w") as f:
            json.dump(evaluation_to_json(result), f, indent=2)
        path = visualize.save_png(
            visualize.confusion_image(result["confusion"], result["class_names"]),
            os.path.join(args.report, "confusion_matrix.png"))
        print(f"wrote {path} and eval.json")
    return 0

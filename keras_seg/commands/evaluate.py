"""``keras-seg evaluate``: per-class IoU, mIoU, pixel accuracy and a confusion-matrix image."""

import json
import os


def add_parser(sub):
    from keras_seg.commands.train import _json_dict
    from keras_seg.trainer import DATA_FORMATS

    p = sub.add_parser("evaluate", help="score a .keras model on a dataset split")
    p.add_argument("model", help="path of a .keras model")
    p.add_argument("--data", default="synthetic",
                   help="dataset folder, or 'synthetic' for the built-in dataset")
    p.add_argument("--data-format", default="auto", choices=("auto", *DATA_FORMATS))
    p.add_argument("--split", default="val")
    p.add_argument("--synthetic-size", type=int, default=96)
    p.add_argument("--synthetic-count", type=int, default=128)
    p.add_argument("--synthetic-args", default={}, type=_json_dict,
                   help="JSON SyntheticShapes options (as given to train)")
    p.add_argument("--ignore-index", type=int, default=255)
    p.add_argument("--tta", action="store_true",
                   help="multi-scale (0.5 ... 1.75) + flip test-time augmentation")
    p.add_argument("--limit", type=int, default=None, help="evaluate the first N images")
    p.add_argument("--seed", type=int, default=0, help="seed of the synthetic dataset")
    p.add_argument("--output", default=None,
                   help="folder for confusion_matrix.png and eval.json")
    p.set_defaults(func=run)


def run(args):
    from keras_seg import visualize
    from keras_seg.commands.predict import load_segmentation_model
    from keras_seg.trainer import (
        TrainConfig,
        evaluate,
        evaluation_to_json,
        format_iou_table,
        load_dataset,
    )

    model = load_segmentation_model(args.model)
    config = TrainConfig(data=args.data, data_format=args.data_format,
                         synthetic_size=args.synthetic_size,
                         synthetic_train=args.synthetic_count,
                         synthetic_val=args.synthetic_count,
                         synthetic_options=args.synthetic_args, seed=args.seed)
    dataset = load_dataset(config, args.split)
    scales = (0.5, 0.75, 1.0, 1.25, 1.5, 1.75) if args.tta else (1.0,)
    result = evaluate(model, dataset, ignore_index=args.ignore_index, scales=scales,
                      flip=args.tta, limit=args.limit)
    print(f"{args.model} on {args.data} [{args.split}], {result['images']} images:")
    print(format_iou_table(result))
    if args.output:
        os.makedirs(args.output, exist_ok=True)
        with open(os.path.join(args.output, "eval.json"), "w") as f:
            json.dump(evaluation_to_json(result), f, indent=2)
        path = visualize.save_png(
            visualize.confusion_image(result["confusion"], result["class_names"]),
            os.path.join(args.output, "confusion_matrix.png"))
        print(f"wrote {path} and eval.json")
    return 0

"""``keras-seg train``: train an architecture on a dataset folder or the built-in data."""

import json


def add_parser(sub):
    from keras_seg.trainer import CLASS_WEIGHTING, DATA_FORMATS, LOSSES, SCHEDULES

    p = sub.add_parser(
        "train", help="train a model (progress bar, CSV/TensorBoard logs, best/last "
        "checkpoints, resumes after an interruption)")
    p.add_argument("--model", default="unet", help="architecture (see `keras-seg models`)")
    p.add_argument("--backbone", default=None, help="backbone name (default: the paper's)")
    p.add_argument("--backbone-args", default=None, type=_json_dict,
                   help='JSON backbone_options, e.g. \'{"width_multiplier": 0.25}\'')
    p.add_argument("--model-args", default={}, type=_json_dict,
                   help='JSON builder options, e.g. \'{"filters": 16, "depth": 3}\'')
    p.add_argument("--data", default="synthetic",
                   help="dataset folder, or 'synthetic' for the built-in dataset")
    p.add_argument("--data-format", default="auto", choices=("auto", *DATA_FORMATS))
    p.add_argument("--num-classes", type=int, default=None,
                   help="classes of a folder dataset (default: inferred from the masks)")
    p.add_argument("--train-split", default="train")
    p.add_argument("--val-split", default="val")
    p.add_argument("--synthetic-size", type=int, default=96,
                   help="image side of the synthetic dataset")
    p.add_argument("--synthetic-train", type=int, default=512)
    p.add_argument("--synthetic-val", type=int, default=128)
    p.add_argument("--synthetic-args", default={}, type=_json_dict,
                   help='JSON SyntheticShapes options, e.g. \'{"clutter": 0.5}\'')
    p.add_argument("--epochs", type=int, default=10)
    p.add_argument("--batch-size", type=int, default=8)
    p.add_argument("--crop", type=_crop, default=None, metavar="H[,W]",
                   help="random training crop (required when images differ in size)")
    p.add_argument("--no-augment", dest="augment", action="store_false",
                   help="no random flip / scale")
    p.add_argument("--optimizer", default="adam", choices=("adam", "sgd"))
    p.add_argument("--lr", type=float, default=1e-3)
    p.add_argument("--weight-decay", type=float, default=0.0)
    p.add_argument("--schedule", default="poly", choices=SCHEDULES)
    p.add_argument("--loss", default="ce", choices=LOSSES)
    p.add_argument("--class-weighting", default="none", choices=CLASS_WEIGHTING)
    p.add_argument("--ignore-index", type=int, default=255)
    p.add_argument("--steps-per-epoch", type=int, default=None)
    p.add_argument("--output", default=None, help="run folder (default runs/MODEL)")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--workers", type=int, default=1,
                   help="threads preparing batches while the model trains")
    p.add_argument("--no-resume", dest="resume", action="store_false",
                   help="start over even if OUTPUT/last.keras exists")
    p.add_argument("--verbose", type=int, default=1, choices=(0, 1, 2))
    p.set_defaults(func=run)


def _json_dict(text):
    import argparse

    try:
        value = json.loads(text)
    except json.JSONDecodeError as err:
        raise argparse.ArgumentTypeError(f"not valid JSON ({err}): {text!r}") from None
    if not isinstance(value, dict):
        raise argparse.ArgumentTypeError(f"expected a JSON object {{...}}, got {text!r}")
    return value


def _crop(text):
    import argparse

    try:
        parts = [int(v) for v in text.replace("x", ",").split(",")]
    except ValueError:
        raise argparse.ArgumentTypeError(f"crop must be H or H,W, got {text!r}") from None
    if len(parts) == 1:
        parts = parts * 2
    if len(parts) != 2 or min(parts) < 1:
        raise argparse.ArgumentTypeError(f"crop must be H or H,W, got {text!r}")
    return tuple(parts)


def run(args):
    from keras_seg.trainer import TrainConfig, format_iou_table, train

    config = TrainConfig(
        model=args.model, backbone=args.backbone, backbone_options=args.backbone_args,
        model_options=args.model_args, data=args.data, data_format=args.data_format,
        num_classes=args.num_classes,
        train_split=args.train_split, val_split=args.val_split,
        synthetic_size=args.synthetic_size, synthetic_train=args.synthetic_train,
        synthetic_val=args.synthetic_val, synthetic_options=args.synthetic_args,
        workers=args.workers, epochs=args.epochs, batch_size=args.batch_size,
        crop_size=args.crop, augment=args.augment, optimizer=args.optimizer, lr=args.lr,
        weight_decay=args.weight_decay, schedule=args.schedule, loss=args.loss,
        class_weighting=args.class_weighting, ignore_index=args.ignore_index,
        steps_per_epoch=args.steps_per_epoch, output=args.output or f"runs/{args.model}",
        seed=args.seed, resume=args.resume, verbose=args.verbose,
    )
    result = train(config)
    print(f"\nValidation ({result['evaluation']['images']} images, best checkpoint):")
    print(format_iou_table(result["evaluation"]))
    print(f"best: {result['best_path']}  last: {result['last_path']}  "
          f"train time: {result['seconds']:.1f} s")
    return 0

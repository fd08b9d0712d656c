"""Run a paper's training recipe (the scripts in the repository's ``applications/``).

A recipe is a dict of :class:`keras_seg.trainer.TrainConfig` fields as the paper trained
(crop, batch, optimizer, poly schedule, loss, class weighting, augmentation,
iterations), plus an optional ``"fast"`` dict of overrides that shrink the run to
seconds (tiny widths and images; used by the test suite). :func:`run` parses the
command line of a recipe script::

    python applications/pspnet.py --data /data/VOCdevkit --output runs/pspnet
    python applications/pspnet.py --fast          # seconds, on the built-in data

and calls :func:`keras_seg.trainer.train`.
"""

import argparse
import dataclasses

from keras_seg.trainer import TrainConfig

_FIELDS = {f.name for f in dataclasses.fields(TrainConfig)}

#: what ``--fast`` sets for every recipe (each recipe's ``"fast"`` dict shrinks its model)
FAST = {"synthetic_size": 48, "synthetic_train": 8, "synthetic_val": 4, "batch_size": 4,
        "crop_size": None, "iterations": 2, "augment": False, "rotation": 0.0,
        "elastic": False, "boundary_weights": False, "verbose": 2}


def config_from_recipe(recipe, fast=False, **overrides):
    """The :class:`TrainConfig` of ``recipe`` (with its ``"fast"`` overrides if ``fast``).

    Args:
        recipe: dict of TrainConfig fields; keys ``"paper"``, ``"notes"`` and ``"fast"``
            are descriptive / reserved.
        fast: apply :data:`FAST` and ``recipe["fast"]``.
        **overrides: further field values (None values are ignored).

    Raises:
        ValueError: a key that is not a TrainConfig field (typo in a recipe).
    """
    values = {k: v for k, v in recipe.items() if k not in ("paper", "notes", "fast")}
    if fast:
        values.update(FAST)
        values.update(recipe.get("fast", {}))
    values.update({k: v for k, v in overrides.items() if v is not None})
    unknown = sorted(set(values) - _FIELDS)
    if unknown:
        raise ValueError(f"Recipe keys {unknown} are not TrainConfig fields; valid fields: "
                         f"{sorted(_FIELDS)}.")
    return TrainConfig(**values).validate()


def parse_args(recipe, argv=None):
    parser = argparse.ArgumentParser(
        description=f"Train {recipe['model']} as {recipe.get('paper', 'the paper')} did.")
    parser.add_argument("--data", default=None,
                        help="dataset folder (VOC / Cityscapes / CamVid / images+masks); "
                        "default: the built-in synthetic dataset")
    parser.add_argument("--output", default=None, help="run folder")
    parser.add_argument("--iterations", type=int, default=None,
                        help="training steps in all (default: the paper's)")
    parser.add_argument("--epochs", type=int, default=None,
                        help="train this many epochs instead of the paper's iterations")
    parser.add_argument("--batch-size", type=int, default=None)
    parser.add_argument("--fast", action="store_true",
                        help="tiny model and images, a few steps: checks the recipe runs")
    return parser.parse_args(argv)


def run(recipe, argv=None):
    """Train ``recipe`` with the command-line options in ``argv``; returns train()'s dict."""
    from keras_seg.trainer import format_iou_table, train

    args = parse_args(recipe, argv)
    overrides = {"data": args.data, "output": args.output or f"runs/{recipe['model']}_recipe",
                 "batch_size": args.batch_size, "iterations": args.iterations}
    if args.epochs is not None:
        overrides.update(epochs=args.epochs)
    config = config_from_recipe(recipe, fast=args.fast, **overrides)
    if args.epochs is not None:
        config.iterations = None
    print(f"{recipe.get('paper', recipe['model'])}: {config}")
    result = train(config)
    print(format_iou_table(result["evaluation"]))
    return result

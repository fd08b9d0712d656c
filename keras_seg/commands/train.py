"""``keras-seg train``: train an architecture on a dataset folder or the built-in data.

Every flag is a :class:`~keras_seg.trainer.TrainConfig` field, generated from the
field's description (:func:`keras_seg.trainer.add_config_arguments`).
"""


def add_parser(sub):
    from keras_seg.trainer import SECTIONS, add_config_arguments

    p = sub.add_parser(
        "train", help="train a model (progress bar, CSV/TensorBoard logs, best/last "
        "checkpoints, resumes after an interruption)")
    for section, names in SECTIONS.items():
        add_config_arguments(p.add_argument_group(section), names)
    p.set_defaults(func=run)


def run(args):
    from keras_seg.commands._common import fit_verbosity
    from keras_seg.trainer import TrainConfig, config_values, format_iou_table, train

    values = config_values(args)
    values.setdefault("output", f"runs/{values.get('model', TrainConfig.model)}")
    values.setdefault("verbose", fit_verbosity())  # no progress bar in a redirected log
    result = train(TrainConfig(**values))
    print(f"\nValidation ({result['evaluation']['images']} images, best checkpoint):")
    print(format_iou_table(result["evaluation"]))
    print(f"best: {result['best_path']}  last: {result['last_path']}  "
          f"train time: {result['seconds']:.1f} s")
    return 0

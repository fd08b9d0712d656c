"""``keras-seg recipe``: train a paper's recipe (``applications/NAME.toml``)."""


def add_parser(sub):
    """Register the ``recipe`` sub-command on ``sub`` (an argparse sub-parsers object).

    Args:
        sub: the object returned by ``ArgumentParser.add_subparsers``.
    """
    from keras_seg import recipes

    p = sub.add_parser(
        "recipe", help="train a model as its paper did (a recipe of applications/)",
        description="Train a paper recipe: a TOML file of TrainConfig fields "
        "(crop, batch, optimizer, schedule, loss, augmentation, iterations). "
        "Available by name: " + (", ".join(recipes.available_recipes()) or "none found") + ".")
    recipes.add_arguments(p)
    p.set_defaults(func=run)


def run(args):
    """Run the parsed ``keras-seg recipe`` command; return the exit status.

    Args:
        args: the parsed arguments (see :func:`keras_seg.recipes.add_arguments`).
    """
    from keras_seg import recipes

    return recipes.run_command(args)

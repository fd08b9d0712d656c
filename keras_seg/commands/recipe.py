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
    p.add_argument("--verbose", type=int, default=None, choices=(0, 1, 2),
                   help="Keras fit display: 0 silent, 1 progress bar, 2 one line per epoch "
                   "(default: the recipe's, and 2 whenever the output is redirected)")
    p.set_defaults(func=run)


def run(args):
    """Run the parsed ``keras-seg recipe`` command; return the exit status.

    A recipe that cannot be found, read or validated raises (``FileNotFoundError``,
    ``ValueError``) before training; :func:`keras_seg.cli.main` reports it.

    Args:
        args: the parsed arguments (see :func:`keras_seg.recipes.add_arguments`, plus
            ``verbose``).
    """
    from keras_seg import recipes
    from keras_seg.commands._common import fit_verbosity

    # the recipe's own verbosity on a terminal; one line per epoch in a redirected log
    if args.verbose is None and fit_verbosity() != 1:
        args.verbose = 2
    recipe, config = recipes.prepare(args.recipe, args)
    recipes.train_recipe(recipe, config, args.fast)
    return 0

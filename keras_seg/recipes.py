"""Paper training recipes: TOML files in the repository's ``applications/``, one runner.

A recipe says how a paper trained its model (crop, batch, optimizer, poly schedule,
loss, class weighting, augmentation, iterations) as :class:`keras_seg.trainer.TrainConfig`
fields, grouped in the sections of :data:`keras_seg.trainer.SECTIONS`::

    [recipe]                   # description: paper and notes (required), reference
    paper = "PSPNet (Zhao et al., CVPR 2017)"
    notes = "..."

    [model]                    # then one table per section, keys = TrainConfig fields
    model = "pspnet"
    model_options = { aux = true }

    [optimization]
    lr = 0.01
    schedule = "poly"

    [fast.model]               # the recipe's own overrides in --fast mode
    backbone_options = { width_multiplier = 0.125 }

A key left out keeps TrainConfig's default. Arrays become tuples (``crop_size = [473,
473]``); TOML has no null, so a field whose default is None is set by giving a value
and cleared by leaving the key out.

Where a recipe is found (:func:`find_recipe`): an argument that ends in ``.toml`` or
contains a path separator is a file path; a bare name ``NAME`` is
``applications/NAME.toml`` in the current directory, else in the repository holding the
installed ``keras_seg`` package (a source checkout or an editable install; a plain
``pip install`` carries no recipes).

Run one::

    keras-seg recipe pspnet --data /data/VOCdevkit --output runs/pspnet
    keras-seg recipe pspnet --fast          # seconds, tiny widths, built-in data
    python -m keras_seg.recipes applications/pspnet.toml --fast

``--fast`` applies :data:`FAST` (shared tiny settings: 48-px synthetic images, 2
iterations, no augmentation) and then the recipe's ``[fast.*]`` tables; it checks that a
recipe runs, it does not train anything useful.
"""

import argparse
import dataclasses
import difflib
import os
import sys
import typing
from pathlib import Path

if sys.version_info >= (3, 11):
    import tomllib
else:  # Python 3.10: the same parser, from PyPI (a dependency there)
    import tomli as tomllib

from keras_seg.trainer import SECTIONS, TrainConfig

#: what ``--fast`` sets for every recipe, before the recipe's own ``[fast.*]`` tables
#: (which shrink its model): tiny synthetic images, 2 iterations, no augmentation
FAST = {"synthetic_size": 48, "synthetic_train": 8, "synthetic_val": 4, "batch_size": 4,
        "crop_size": None, "iterations": 2, "augment": False, "rotation": 0.0,
        "elastic": False, "boundary_weights": False, "verbose": 2}

#: keys of the ``[recipe]`` table: required ones map to True
RECIPE_KEYS = {"paper": True, "notes": True, "reference": False}

#: the folder, relative to the current directory or to the repository, holding recipes
RECIPE_FOLDER = "applications"

_SECTION_OF = {name: section for section, names in SECTIONS.items() for name in names}

_TYPE_WORDS = {bool: "true or false", int: "an integer", float: "a number",
               str: "a string", dict: "an inline table { key = value, ... }",
               tuple: "an array of numbers, e.g. [473, 473]"}


@dataclasses.dataclass(frozen=True)
class Recipe:
    """A loaded, validated recipe (see :func:`load_recipe`).

    Attributes:
        name: the file's stem (``"pspnet"``); the default run folder is ``runs/NAME``
            when the recipe sets no ``output``.
        path: the file it was read from.
        paper: the ``[recipe]`` table's ``paper``.
        notes: the ``[recipe]`` table's ``notes``.
        reference: the ``[recipe]`` table's ``reference`` (None when absent).
        sections: section name -> ``{field: value}`` of the recipe's section tables.
        fast: section name -> ``{field: value}`` of its ``[fast.<section>]`` tables.
    """

    name: str
    path: str
    paper: str
    notes: str
    reference: str | None
    sections: dict
    fast: dict

    def values(self, fast=False):
        """The recipe's fields as one flat dict.

        Args:
            fast: apply :data:`FAST` and then the recipe's ``[fast.*]`` tables. A dict
                value of a ``[fast.*]`` table (``model_options``...) is merged into the
                recipe's dict rather than replacing it.

        Returns:
            ``{field: value}``.
        """
        values = {}
        for table in self.sections.values():
            values.update(table)
        if fast:
            values.update(FAST)
            for table in self.fast.values():
                for key, value in table.items():
                    if isinstance(value, dict) and isinstance(values.get(key), dict):
                        value = {**values[key], **value}
                    values[key] = value
        return values


# ------------------------------------------------------------------------- finding


def recipe_folders():
    """The folders searched for a bare recipe name, in order.

    ``applications/`` of the current directory, then ``applications/`` of the repository
    holding the installed package (the parent of the ``keras_seg`` folder, when it has
    a ``pyproject.toml``). Folders that do not exist are left out.

    Returns:
        A list of :class:`pathlib.Path`.
    """
    folders = [Path.cwd() / RECIPE_FOLDER]
    repository = Path(__file__).resolve().parent.parent
    if (repository / "pyproject.toml").is_file():
        folders.append(repository / RECIPE_FOLDER)
    unique = []
    for folder in folders:
        if folder.is_dir() and all(folder.resolve() != f.resolve() for f in unique):
            unique.append(folder)
    return unique


def available_recipes():
    """The recipes a bare name can reach: ``{name: path}``.

    A name found in several :func:`recipe_folders` maps to the first (the current
    directory wins).

    Returns:
        A dict sorted by name.
    """
    found = {}
    for folder in recipe_folders():
        for path in sorted(folder.glob("*.toml")):
            found.setdefault(path.stem, path)
    return dict(sorted(found.items()))


def find_recipe(name_or_path):
    """The file of a recipe given as a path or a bare name.

    Args:
        name_or_path: a path (ends in ``.toml`` or contains a path separator) or a bare
            name ``NAME``, looked up as ``applications/NAME.toml`` in
            :func:`recipe_folders`.

    Returns:
        A :class:`pathlib.Path`.

    Raises:
        FileNotFoundError: no such file; for a bare name the message lists the folders
            searched and the recipes available.
    """
    text = os.fspath(name_or_path)
    separators = {os.sep, "/"} | ({os.altsep} if os.altsep else set())
    if text.endswith(".toml") or any(s in text for s in separators):
        path = Path(text)
        if not path.is_file():
            raise FileNotFoundError(f"Recipe file {text} does not exist.")
        return path
    folders = recipe_folders()
    for folder in folders:
        path = folder / f"{text}.toml"
        if path.is_file():
            return path
    searched = ", ".join(str(f) for f in folders) or (
        f"no {RECIPE_FOLDER}/ folder in the current directory or the package's repository")
    names = ", ".join(available_recipes()) or "none"
    raise FileNotFoundError(f"No recipe named {text!r} (searched {searched}). Available "
                            f"recipes: {names}. Give a path to use another file.")


# ------------------------------------------------------------------------- loading


def load_recipe(name_or_path):
    """Read and validate a recipe file.

    Checks that the file is valid TOML, has a ``[recipe]`` table with ``paper`` and
    ``notes``, only the sections of :data:`keras_seg.trainer.SECTIONS` (and
    ``[fast.<section>]``), that every key is a TrainConfig field of that section with a
    value of the field's type, and that the whole configuration (and its fast mode)
    passes :meth:`TrainConfig.validate`.

    Args:
        name_or_path: a recipe name or path (see :func:`find_recipe`).

    Returns:
        A :class:`Recipe`.

    Raises:
        FileNotFoundError: the recipe does not exist.
        ValueError: naming the file, the section and the key that is wrong, and what
            is allowed there.
    """
    path = find_recipe(name_or_path)
    try:
        with open(path, "rb") as f:
            data = tomllib.load(f)
    except tomllib.TOMLDecodeError as err:
        raise ValueError(f"{path}: not valid TOML: {err}.") from None
    recipe = _parse(data, path)
    for fast in (False, True):
        _validate_config(recipe, recipe.values(fast=fast), fast=fast)
    return recipe


def _parse(data, path):
    allowed = f"[recipe], {', '.join(f'[{s}]' for s in SECTIONS)} and [fast.<section>]"
    for key, value in data.items():
        if not isinstance(value, dict):
            where = _SECTION_OF.get(key)
            hint = f" (it belongs in [{where}])" if where else ""
            raise ValueError(f"{path}: key {key!r} is outside any table{hint}; a recipe "
                             f"has only tables: {allowed}.")
        if key not in ("recipe", "fast", *SECTIONS):
            raise ValueError(f"{path}: unknown section [{key}]{_did_you_mean(key, SECTIONS)}; "
                             f"a recipe has {allowed}.")
    if "recipe" not in data:
        raise ValueError(f"{path}: no [recipe] table; add one with paper = \"...\" and "
                         "notes = \"...\" (reference = \"...\" optional).")
    header = data["recipe"]
    for key, value in header.items():
        if key not in RECIPE_KEYS:
            raise ValueError(f"{path}: [recipe] {key!r} is not a recipe key; allowed: "
                             f"{', '.join(RECIPE_KEYS)} (training settings go in "
                             f"{', '.join(f'[{s}]' for s in SECTIONS)}).")
        if not isinstance(value, str) or not value.strip():
            raise ValueError(f"{path}: [recipe] {key} must be a non-empty string, got "
                             f"{value!r}.")
    missing = [key for key, required in RECIPE_KEYS.items() if required and key not in header]
    if missing:
        raise ValueError(f"{path}: [recipe] lacks {', '.join(missing)}; give each as a "
                         "string.")
    sections = {section: _parse_table(path, section, section, data[section])
                for section in SECTIONS if section in data}
    fast = {}
    for section, table in data.get("fast", {}).items():
        if not isinstance(table, dict):
            where = _SECTION_OF.get(section)
            hint = f"[fast.{where}]" if where else "a [fast.<section>] table"
            raise ValueError(f"{path}: [fast] {section!r} is a key, not a table; put fast "
                             f"overrides in {hint} ([fast.<section>], <section> one of "
                             f"{', '.join(SECTIONS)}).")
        if section not in SECTIONS:
            raise ValueError(f"{path}: unknown section [fast.{section}]"
                             f"{_did_you_mean(section, SECTIONS)}; fast overrides go in "
                             f"[fast.<section>], <section> one of {', '.join(SECTIONS)}.")
        fast[section] = _parse_table(path, f"fast.{section}", section, table)
    if "model" not in sections.get("model", {}):
        raise ValueError(f"{path}: [model] must name the architecture: model = \"...\" "
                         "(`keras-seg models` lists them).")
    return Recipe(name=path.stem, path=str(path), paper=header["paper"],
                  notes=header["notes"], reference=header.get("reference"),
                  sections=sections, fast=fast)


def _parse_table(path, label, section, table):
    """Check the keys of one section table; return ``{field: converted value}``."""
    values = {}
    for key, value in table.items():
        where = _SECTION_OF.get(key)
        if where is None:
            raise ValueError(f"{path}: [{label}] {key!r} is not a TrainConfig field"
                             f"{_did_you_mean(key, _SECTION_OF)}; the keys of [{section}] "
                             f"are: {', '.join(SECTIONS[section])}.")
        if where != section:
            right = f"fast.{where}" if label.startswith("fast.") else where
            raise ValueError(f"{path}: [{label}] {key!r} belongs in [{right}], not "
                             f"[{label}]; move it there.")
        try:
            values[key] = _convert(key, value)
        except ValueError as err:
            raise ValueError(f"{path}: [{label}] {key} = {value!r}: {err}") from None
    return values


def _field_types(name):
    hint = typing.get_type_hints(TrainConfig)[name]
    args = typing.get_args(hint) if typing.get_origin(hint) is not None else (hint,)
    return tuple(a for a in args if a is not type(None))


def _convert(name, value):
    """``value`` as field ``name`` takes it (arrays -> tuples, ints -> floats)."""
    types = _field_types(name)
    number = isinstance(value, (int, float)) and not isinstance(value, bool)
    if bool in types and isinstance(value, bool):
        return value
    if float in types and number:
        return float(value)
    if int in types and isinstance(value, int) and not isinstance(value, bool):
        return value
    if str in types and isinstance(value, str):
        return value
    if dict in types and isinstance(value, dict):
        return value
    if tuple in types and isinstance(value, (list, tuple)) and all(
            isinstance(v, (int, float)) and not isinstance(v, bool) for v in value):
        return tuple(value)
    expected = " or ".join(_TYPE_WORDS.get(t, t.__name__) for t in types)
    raise ValueError(f"expected {expected}, got {type(value).__name__}")


def _did_you_mean(word, choices):
    close = difflib.get_close_matches(word, list(choices), n=1)
    return f" (did you mean {close[0]!r}?)" if close else ""


def _validate_config(recipe, values, fast=False, overrides=None):
    """``TrainConfig(**values).validate()``; a ValueError names the file, and the section
    and key when the value is wrong by itself (TrainConfig's defaults + that key fail)."""
    try:
        return TrainConfig(**values).validate()
    except ValueError as err:
        error = err
    tables = [(f"fast.{s}", t) for s, t in recipe.fast.items()] if fast else []
    tables += list(recipe.sections.items())
    for key, value in (overrides or {}).items():
        message = _message(key, value)
        if message is not None:
            raise ValueError(f"{recipe.path}: override {key}={value!r}: {message}") from None
    for label, table in tables:
        for key, value in table.items():
            message = _message(key, value)
            if message is not None:
                raise ValueError(f"{recipe.path}: [{label}] {key} = {value!r}: "
                                 f"{message}") from None
    mode = " in --fast mode" if fast else ""
    if overrides:
        mode += f" with the overrides {overrides}"
    raise ValueError(f"{recipe.path}: the configuration{mode} is invalid: {error}") from None


def _message(key, value):
    """TrainConfig's error for ``key = value`` on its defaults (None: no error)."""
    try:
        TrainConfig(**{key: value}).validate()
    except ValueError as err:
        return str(err)
    return None


# -------------------------------------------------------------------------- config


def config_from_recipe(recipe, fast=False, **overrides):
    """The :class:`keras_seg.trainer.TrainConfig` of a recipe.

    Args:
        recipe: a :class:`Recipe`, or a recipe name or path (loaded with
            :func:`load_recipe`).
        fast: apply :data:`FAST` and the recipe's ``[fast.*]`` tables (see
            :meth:`Recipe.values`).
        **overrides: further TrainConfig field values, applied last (None values are
            ignored, so unset command-line options can be passed as they are). An
            ``epochs`` override without ``iterations`` clears the recipe's
            ``iterations`` (which would take precedence over ``epochs``).

    Returns:
        A validated TrainConfig. Its ``output`` is the override, else the recipe's
        ``[run] output``, else ``runs/NAME``; in fast mode without an ``output``
        override it gets the suffix ``-fast``, so that a fast run never resumes from (or
        overwrites) a full run's checkpoints.

    Raises:
        ValueError: an override that is not a TrainConfig field or has a bad value, or
            an invalid configuration (naming the recipe file).
    """
    if not isinstance(recipe, Recipe):
        recipe = load_recipe(recipe)
    values = recipe.values(fast=fast)
    overrides = {k: v for k, v in overrides.items() if v is not None}
    for key, value in overrides.items():
        if key not in _SECTION_OF:
            raise ValueError(f"Override {key!r} is not a TrainConfig field"
                             f"{_did_you_mean(key, _SECTION_OF)}; fields: "
                             f"{', '.join(_SECTION_OF)}.")
        try:
            overrides[key] = _convert(key, value)
        except ValueError as err:
            raise ValueError(f"Override {key}={value!r}: {err}.") from None
    values.setdefault("output", f"runs/{recipe.name}")
    if fast and "output" not in overrides:
        values["output"] += "-fast"
    if "epochs" in overrides and "iterations" not in overrides:
        values["iterations"] = None
    values.update(overrides)
    return _validate_config(recipe, values, fast=fast, overrides=overrides)


# --------------------------------------------------------------------- command line


def add_arguments(parser, name=True):
    """Add the recipe runner's arguments to an ``argparse`` parser.

    Args:
        parser: an ``argparse.ArgumentParser`` (or a sub-command's parser).
        name: add the positional ``NAME_OR_PATH`` argument too.

    Returns:
        ``parser``.
    """
    if name:
        parser.add_argument(
            "recipe", metavar="NAME_OR_PATH",
            help=f"a recipe file, or a name NAME for {RECIPE_FOLDER}/NAME.toml in the current "
            "directory or else in the keras-seg repository (e.g. pspnet, unet, deeplabv3)")
    parser.add_argument("--data", default=None,
                        help="dataset folder (VOC / Cityscapes / CamVid / images+masks); "
                        "default: the built-in synthetic dataset")
    parser.add_argument("--output", default=None,
                        help="run folder (default: the recipe's [run] output, else "
                        "runs/NAME; with --fast, that plus -fast)")
    length = parser.add_mutually_exclusive_group()
    length.add_argument("--iterations", type=int, default=None,
                        help="training steps in all (default: the paper's)")
    length.add_argument("--epochs", type=int, default=None,
                        help="train this many epochs instead of the paper's iterations")
    parser.add_argument("--batch-size", type=int, default=None,
                        help="images per step (default: the paper's)")
    parser.add_argument("--fast", action="store_true",
                        help="tiny model and images, 2 steps on the built-in data: checks "
                        "that the recipe runs")
    return parser


def parse_args(argv=None):
    """Parse the runner's options (without the recipe name).

    Args:
        argv: the options, e.g. ``["--fast"]`` (None: ``sys.argv[1:]``).

    Returns:
        An ``argparse.Namespace``.
    """
    parser = argparse.ArgumentParser(description="Train a paper recipe.")
    return add_arguments(parser, name=False).parse_args(argv)


def run(name_or_path, argv=None):
    """Train a recipe with the command-line options in ``argv``.

    Args:
        name_or_path: a recipe name or path (see :func:`find_recipe`).
        argv: runner options (``--data``, ``--output``, ``--iterations`` or
            ``--epochs``, ``--batch-size``, ``--fast``); None: ``sys.argv[1:]``.

    Returns:
        :func:`keras_seg.trainer.train`'s dict.

    Raises:
        FileNotFoundError, ValueError: as :func:`load_recipe` and
            :func:`config_from_recipe`.
    """
    args = parse_args(argv)
    recipe, config = prepare(name_or_path, args)
    return train_recipe(recipe, config, args.fast)


def prepare(name_or_path, args):
    """Load a recipe and build its configuration from parsed runner options.

    Args:
        name_or_path: a recipe name or path (see :func:`find_recipe`).
        args: an ``argparse.Namespace`` with ``data``, ``output``, ``iterations``,
            ``epochs``, ``batch_size``, ``fast`` and optionally ``verbose``.

    Returns:
        ``(recipe, config)``: the :class:`Recipe` and its validated ``TrainConfig``.

    Raises:
        FileNotFoundError, ValueError: as :func:`load_recipe` and
            :func:`config_from_recipe`.
    """
    recipe = load_recipe(name_or_path)
    config = config_from_recipe(recipe, fast=args.fast, data=args.data, output=args.output,
                                iterations=args.iterations, epochs=args.epochs,
                                batch_size=args.batch_size,
                                verbose=getattr(args, "verbose", None))
    return recipe, config


def train_recipe(recipe, config, fast=False):
    """Train ``config`` (a recipe's configuration), printing what runs and the IoU table.

    Args:
        recipe: the :class:`Recipe` (its paper and path are printed).
        config: its ``TrainConfig`` (from :func:`config_from_recipe` or :func:`prepare`).
        fast: whether this is the fast mode (printed).

    Returns:
        :func:`keras_seg.trainer.train`'s dict.
    """
    from keras_seg.trainer import format_iou_table, train

    print(f"{recipe.paper}: recipe {recipe.path}{' (fast mode)' if fast else ''}")
    print(config)
    result = train(config)
    print(f"\nValidation ({result['evaluation']['images']} images, best checkpoint):")
    print(format_iou_table(result["evaluation"]))
    print(f"best: {result['best_path']}  last: {result['last_path']}  "
          f"train time: {result['seconds']:.1f} s")
    return result


def main(argv=None):
    """``python -m keras_seg.recipes NAME_OR_PATH [options]``: the same as ``keras-seg recipe``.

    Args:
        argv: the arguments (None: ``sys.argv[1:]``).

    Returns:
        The exit status (2 with one line on stderr for a recipe that cannot be found,
        read or validated).
    """
    from keras_seg.cli import main as cli_main

    return cli_main(["recipe", *(sys.argv[1:] if argv is None else argv)])


if __name__ == "__main__":
    sys.exit(main())

"""What several ``keras-seg`` sub-commands share: loading a model file, the fit display.

How the command line reports bad input (one line on stderr, exit status 2) lives in
:func:`keras_seg.cli.main`, once for every sub-command.
"""

import json
import os
import sys


def load_segmentation_model(path):
    """Load a ``.keras`` model and check that it is a segmentation model.

    The one loader of ``keras-seg predict``, ``evaluate`` and ``export``: a missing
    file, a folder, a file Keras cannot load and a model that is not a segmentation
    model all raise the same clear errors in the three commands.

    The model is loaded without its training configuration (``compile=False``): these
    commands only run it, so a loss or metric that cannot be rebuilt never stops them.

    Args:
        path: a ``.keras`` file written by ``model.save`` (any keras-seg model loads
            without ``custom_objects``: importing ``keras_seg``, done here, registers its
            layers).

    Returns:
        The loaded ``keras.Model`` (with its auxiliary heads, if any; prediction and
        export use :func:`keras_seg.inference_model`).

    Raises:
        FileNotFoundError: ``path`` does not exist.
        ValueError: ``path`` is a folder, the file cannot be loaded as a Keras model,
            or the model is not a segmentation model (one image input
            ``(batch, H, W, C)`` to logits ``(batch, h, w, classes)``).
    """
    import keras

    import keras_seg  # noqa: F401  (registers the custom layers for deserialization)
    from keras_seg import inference

    path = os.fspath(path)
    if not os.path.exists(path):
        raise FileNotFoundError(
            f"Model file {path!r} does not exist. Pass the path of a .keras file written by "
            "model.save('name.keras') (e.g. runs/unet/best.keras after keras-seg train).")
    if os.path.isdir(path):
        raise ValueError(f"{path!r} is a folder; pass a .keras model file (a SavedModel "
                         "folder is an export for serving, not loadable here).")
    try:
        model = keras.saving.load_model(path, compile=False)
    except Exception as err:  # Keras raises many types for a bad or foreign file
        raise ValueError(
            f"Could not load {path!r} as a Keras model ({type(err).__name__}: {err}). Pass a "
            ".keras file written by model.save('name.keras').") from err
    if not isinstance(model, keras.Model):
        raise ValueError(f"{path!r} holds a {type(model).__name__}, not a keras.Model.")
    try:
        inference.Predictor(model)  # checks that it is a segmentation model
    except ValueError as err:
        raise ValueError(f"{path!r}: {err}") from None
    return model


def fit_verbosity(verbose=None):
    """The Keras ``fit`` display of ``keras-seg train`` / ``demo`` / ``recipe``.

    Keras' progress bar (``verbose=1``) redraws its line with terminal control codes,
    which fill a redirected log (``> train.log``, a CI job, ``nohup``) with them. So
    the progress bar is the default only when standard output is a terminal; otherwise
    it is one line per epoch (``verbose=2``).

    Args:
        verbose: the ``--verbose`` value the user gave (0, 1 or 2), or None when the
            flag was not given.

    Returns:
        ``verbose`` when given; else 1 when standard output is a terminal, 2 otherwise.
    """
    if verbose is not None:
        return verbose
    isatty = getattr(sys.stdout, "isatty", None)
    return 1 if isatty is not None and isatty() else 2


def stored_class_names(model_path, num_classes):
    """The class names of the run a model was saved in, or None.

    Reads ``class_names`` from the ``config.json`` in the model file's folder (what
    ``keras-seg train`` writes beside ``best.keras`` / ``last.keras``).

    Args:
        model_path: path of the ``.keras`` model.
        num_classes: the model's number of classes; names of another count are not used
            (a line says so).

    Returns:
        A list of ``num_classes`` names, or None when there is no usable ``config.json``.
    """
    path = os.path.join(os.path.dirname(os.path.abspath(model_path)), "config.json")
    if not os.path.exists(path):
        return None
    try:
        with open(path) as f:
            names = json.load(f).get("class_names")
    except (OSError, ValueError, AttributeError) as err:
        print(f"Class names not read from {path} ({type(err).__name__}: {err}).")
        return None
    if not isinstance(names, list) or not all(isinstance(n, str) for n in names):
        return None
    if len(names) != num_classes:
        print(f"Class names of {path} not used: {len(names)} names for a model of "
              f"{num_classes} classes (that config.json belongs to another model).")
        return None
    return names

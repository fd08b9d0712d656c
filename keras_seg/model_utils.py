"""Helpers on built segmentation models."""

import keras

MAIN_OUTPUT = "logits"


def output_names(model):
    """Names of a model's outputs: the keys of its output dict, or ``[MAIN_OUTPUT]``."""
    out = model.output
    return list(out) if isinstance(out, dict) else [MAIN_OUTPUT]


def inference_model(model):
    """The single-output model that serves predictions, sharing ``model``'s weights.

    Models built with auxiliary or deep-supervision heads (PSPNet ``aux=True``,
    G-FRNet, U-Net ``deep_supervision=True``) return a dict of named outputs whose
    main output is ``"logits"`` (full resolution); the other heads exist only for
    training. This returns ``keras.Model(model.inputs, model.output["logits"])``
    (the heads are dropped, no weight is copied), or ``model`` itself when it
    already has a single output.

    Args:
        model: a ``keras.Model`` from :mod:`keras_seg.applications`.

    Returns:
        A ``keras.Model`` image ``(batch, H, W, C)`` -> logits
        ``(batch, H, W, num_classes)``.

    Raises:
        ValueError: the model has several outputs and none is named ``"logits"``.
    """
    out = model.output
    if not isinstance(out, dict):
        if isinstance(out, (list, tuple)):
            raise ValueError(
                f"Model {model.name!r} has {len(out)} unnamed outputs; keras-seg models name "
                f"their main output {MAIN_OUTPUT!r}. Build the model with a dict output."
            )
        return model
    if MAIN_OUTPUT not in out:
        raise ValueError(
            f"Model {model.name!r} has outputs {sorted(out)} but no {MAIN_OUTPUT!r} output; "
            "cannot tell which one is the main prediction."
        )
    return keras.Model(model.inputs, out[MAIN_OUTPUT], name=f"{model.name}_inference")

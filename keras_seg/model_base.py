"""Deep supervision with one label map: :class:`SegmentationModel`.

Models built with auxiliary or deep-supervision heads (PSPNet ``aux=True``,
G-FRNet, U-Net ``deep_supervision=True``) return a dict of named outputs whose main
output is ``"logits"``. Plain Keras 3 cannot ``fit`` such a model on one label map
(``model.fit(images, masks)`` fails with "y_true and y_pred have different
structures"), and would put every compiled metric on every head. The builders
therefore return a :class:`SegmentationModel`, a functional ``keras.Model`` that

* gives the one label map (and sample weight) to every output's loss; the
  keras-seg losses resize the labels to each head's resolution by nearest
  neighbour (:mod:`keras_seg.losses`);
* weights the outputs' losses by the paper's weights stored in the model
  (PSPNet aux 0.4, G-FRNet 1 each) unless ``compile`` is given ``loss_weights``;
* computes the compiled metrics on the ``"logits"`` output only, so the logs read
  ``mean_iou`` / ``val_mean_iou`` for the main prediction.

Usage::

    model = keras_seg.applications.PSPNet(21, aux=True)   # a SegmentationModel
    model.compile(optimizer="sgd", loss=keras_seg.losses.SegmentationCrossEntropy(),
                  metrics=[keras_seg.metrics.MeanIoU(21)])
    model.fit(images, masks)            # total loss = CE(logits) + 0.4 * CE(aux)

Saved as ``.keras`` it loads back with ``keras.saving.load_model(path)`` and no
``custom_objects`` (the class is registered once ``keras_seg`` is imported).
"""

import keras
from keras import tree

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


def _check_loss_weights(loss_weights, output_keys, who):
    if loss_weights is None:
        return {key: 1.0 for key in output_keys}
    if not isinstance(loss_weights, dict):
        raise ValueError(f"{who}: loss_weights must be a dict {{output name: weight}} over the "
                         f"outputs {output_keys}, got {loss_weights!r}.")
    unknown = sorted(set(loss_weights) - set(output_keys))
    if unknown:
        raise ValueError(f"{who}: loss_weights names {unknown}, which are not outputs of the "
                         f"model; its outputs are {output_keys}.")
    out = {}
    for key in output_keys:
        value = loss_weights.get(key, 1.0)
        try:
            value = float(value)
        except (TypeError, ValueError) as e:
            raise ValueError(f"{who}: loss weight of {key!r} must be a float, got "
                             f"{value!r}.") from e
        if value < 0:
            raise ValueError(f"{who}: loss weight of {key!r} must be >= 0, got {value}.")
        out[key] = value
    return out


@keras.saving.register_keras_serializable(package="keras_seg")
class SegmentationModel(keras.Model):
    """A functional model with named outputs that trains on one label map.

    Build it like ``keras.Model``: ``SegmentationModel(inputs, outputs,
    loss_weights=...)`` where ``outputs`` is a dict of float32 logits with the
    main, full-resolution prediction under ``"logits"`` and the auxiliary /
    deep-supervision heads under other names, at any resolution.

    ``compile(loss=..., loss_weights=None, metrics=...)`` differs from Keras' in
    three points: a single ``loss`` is applied to every output; ``loss_weights``
    defaults to the weights stored in the model (:attr:`default_loss_weights`);
    ``metrics`` / ``weighted_metrics`` given as a list are computed on the
    ``"logits"`` output only (a dict keyed by output name keeps Keras' per-output
    behaviour). In ``fit`` / ``evaluate`` a single ``y`` (the label map
    ``(batch, H, W)``) and a single ``sample_weight`` are given to every output;
    a dict ``y`` keyed by output name is used as given. The total loss is
    ``sum_k loss_weights[k] * loss(y, outputs[k])``.

    Args:
        inputs: the model inputs (``keras.Input`` tensors).
        outputs: a dict ``{name: tensor}`` with a ``"logits"`` entry.
        name: model name.
        loss_weights: ``{output name: weight}`` stored with the model (saved in its
            config); outputs not named get 1.0; None gives 1.0 to every output.
        **kwargs: passed on to ``keras.Model``.

    Raises:
        ValueError: ``outputs`` is not a dict with a ``"logits"`` entry, or
            ``loss_weights`` names an unknown output or holds a negative weight.
    """

    def __init__(self, inputs, outputs, name=None, *, loss_weights=None, **kwargs):
        if not isinstance(outputs, dict) or MAIN_OUTPUT not in outputs:
            raise ValueError(
                "SegmentationModel: outputs must be a dict of named outputs with a "
                f"{MAIN_OUTPUT!r} entry (the main prediction), got "
                f"{tree.map_structure(lambda _: '*', outputs)!r}. Use keras.Model for a "
                "single-output model.")
        keys = list(outputs)
        self._default_loss_weights = _check_loss_weights(loss_weights, keys,
                                                         "SegmentationModel")
        super().__init__(inputs, outputs, name=name, **kwargs)
        self._metrics_on_main_output = True

    @property
    def default_loss_weights(self):
        """``{output name: weight}`` used by ``compile`` when no ``loss_weights`` is given."""
        return dict(self._default_loss_weights)

    def compile(self, optimizer="rmsprop", loss=None, loss_weights=None, metrics=None,
                weighted_metrics=None, **kwargs):
        """``keras.Model.compile`` with the deep-supervision defaults (see the class doc)."""
        keys = list(self.output)
        if loss is not None and not isinstance(loss, (dict, list, tuple)):
            loss = {key: loss for key in keys}
        if loss_weights is None and isinstance(loss, dict):
            loss_weights = {key: self._default_loss_weights[key] for key in loss}
        self._metrics_on_main_output = not isinstance(metrics, dict) and not isinstance(
            weighted_metrics, dict)
        super().compile(optimizer=optimizer, loss=loss, loss_weights=loss_weights,
                        metrics=metrics, weighted_metrics=weighted_metrics, **kwargs)

    def compile_from_config(self, config):
        """Re-compile a loaded model from its saved compile config.

        Keras skips this for models that override ``compile``; the override here
        only fills defaults, and the saved config holds the resolved ``loss`` and
        ``loss_weights`` dicts, so compiling from it restores the training setup.
        """
        config = keras.saving.deserialize_keras_object(config)
        self.compile(**config)
        if getattr(self, "optimizer", None) is not None and self.built:
            self.optimizer.build(self.trainable_variables)

    def _replicate(self, value, y_pred):
        if value is None or not isinstance(y_pred, dict) or tree.is_nested(value):
            return value
        return {key: value for key in y_pred}

    def compute_loss(self, x=None, y=None, y_pred=None, sample_weight=None, training=True):
        """Keras' ``compute_loss`` with one label map given to every output."""
        return super().compute_loss(x, self._replicate(y, y_pred), y_pred,
                                    self._replicate(sample_weight, y_pred), training=training)

    def compute_metrics(self, x, y, y_pred, sample_weight=None):
        """Keras' ``compute_metrics`` on the ``"logits"`` output (list metrics)."""
        if self._metrics_on_main_output and isinstance(y_pred, dict):
            y_pred = y_pred[MAIN_OUTPUT]
            if isinstance(y, dict):
                y = y[MAIN_OUTPUT]
            if isinstance(sample_weight, dict):
                sample_weight = sample_weight[MAIN_OUTPUT]
        else:
            y = self._replicate(y, y_pred)
            sample_weight = self._replicate(sample_weight, y_pred)
        return super().compute_metrics(x, y, y_pred, sample_weight)

    def get_config(self):
        return {**super().get_config(), "loss_weights": self.default_loss_weights}


def segmentation_model(inputs, outputs, name=None, loss_weights=None):
    """The model a builder returns: a :class:`SegmentationModel` for a dict of outputs
    (deep supervision), a plain ``keras.Model`` for a single output tensor.

    Args:
        inputs: model inputs.
        outputs: a logits tensor, or a dict of named logits with ``"logits"``.
        name: model name.
        loss_weights: the paper's ``{output name: weight}`` (dict outputs only).

    Returns:
        ``SegmentationModel`` or ``keras.Model``.
    """
    if isinstance(outputs, dict):
        return SegmentationModel(inputs, outputs, name=name, loss_weights=loss_weights)
    return keras.Model(inputs, outputs, name=name)

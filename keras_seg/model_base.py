"""The model base of keras-seg: :class:`SegmentationModel` and the helpers on built models.

Every builder of :mod:`keras_seg.applications` returns a :class:`SegmentationModel`, a
functional ``keras.Model`` that also records the model's geometry (its output stride,
the multiple its input sides are padded to, and its convolution padding, ``"same"`` or
``"valid"``), saved in its config, so that inference reads them instead of probing
the graph (:func:`model_geometry`).

Deep supervision with one label map: models built with auxiliary or deep-supervision
heads (PSPNet ``aux=True``, G-FRNet, U-Net ``deep_supervision=True``) return a dict of
named outputs whose main output is ``"logits"``. Plain Keras 3 cannot ``fit`` such a
model on one label map (``model.fit(images, masks)`` fails with "y_true and y_pred have
different structures"), and would put every compiled metric on every head. The builders
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


def logits_dtype():
    """The dtype every model computes and returns its logits in: ``"float32"``, also under
    the ``mixed_float16`` / ``mixed_bfloat16`` policies (the heads keep float32 so that
    losses and metrics see full-precision logits), and ``"float64"`` when
    ``keras.config.floatx()`` is ``"float64"`` (a float64 model stays float64 to its end).
    Read when a model is built."""
    return "float64" if keras.config.floatx() == "float64" else "float32"


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
    # one input passed as a tensor, not a one-item list, so that calling the model on a
    # tensor matches its input structure (Keras warns otherwise)
    inputs = model.inputs[0] if len(model.inputs) == 1 else model.inputs
    geometry = model_geometry(model)
    if geometry is not None:
        return SegmentationModel(inputs, out[MAIN_OUTPUT], name=f"{model.name}_inference",
                                 **geometry)
    return keras.Model(inputs, out[MAIN_OUTPUT], name=f"{model.name}_inference")


#: the convolution paddings a model may declare
PADDINGS = ("same", "valid")


def model_geometry(model):
    """The geometry a keras-seg model declares, or None for any other model.

    Args:
        model: a ``keras.Model``.

    Returns:
        ``{"output_stride": int, "padding": "same" | "valid"}`` for a
        :class:`SegmentationModel` (every keras-seg builder returns one): ``output_stride``
        is the stride of the model's deepest feature map, the multiple its input sides
        are padded to (inference pads to it as the model does); ``padding="valid"``
        marks unpadded convolutions (output smaller than the input, U-Net's
        overlap-tile). None for a model that declares nothing (callers probe it).
    """
    if isinstance(model, SegmentationModel) and model.output_stride is not None:
        return {"output_stride": model.output_stride, "padding": model.padding}
    return None


def _check_geometry(output_stride, padding):
    if output_stride is not None and (
            not isinstance(output_stride, int) or isinstance(output_stride, bool)
            or output_stride < 1):
        raise ValueError(f"SegmentationModel: output_stride must be a positive int or None, "
                         f"got {output_stride!r}.")
    if padding not in PADDINGS:
        raise ValueError(f"SegmentationModel: padding must be one of {PADDINGS}, got "
                         f"{padding!r}.")


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
    """A functional segmentation model that declares its geometry and trains on one label map.

    Build it like ``keras.Model``: ``SegmentationModel(inputs, outputs,
    loss_weights=..., output_stride=..., padding=...)`` where ``outputs`` is one float32
    logits tensor, or a dict of float32 logits with the main, full-resolution
    prediction under ``"logits"`` and the auxiliary / deep-supervision heads under
    other names, at any resolution. With a single output it behaves exactly as
    ``keras.Model``; the points below concern dict outputs.

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
            config); outputs not named get 1.0; None gives 1.0 to every output (dict
            outputs only).
        output_stride: stride of the deepest feature map, the multiple the model pads
            its input sides to (None: not declared; inference then probes the graph).
        padding: ``"same"`` (output as large as the input) or ``"valid"`` (unpadded
            convolutions, output smaller by a border).
        **kwargs: passed on to ``keras.Model``.

    Raises:
        ValueError: ``outputs`` is a list, or a dict without a ``"logits"`` entry;
            ``loss_weights`` given for a single output, naming an unknown output or
            holding a negative weight; a bad ``output_stride`` or ``padding``.
    """

    def __init__(self, inputs, outputs, name=None, *, loss_weights=None, output_stride=None,
                 padding="same", **kwargs):
        if isinstance(outputs, dict):
            if MAIN_OUTPUT not in outputs:
                raise ValueError(
                    "SegmentationModel: a dict of outputs needs a "
                    f"{MAIN_OUTPUT!r} entry (the main prediction), got "
                    f"{tree.map_structure(lambda _: '*', outputs)!r}.")
            self._default_loss_weights = _check_loss_weights(loss_weights, list(outputs),
                                                             "SegmentationModel")
        elif isinstance(outputs, (list, tuple)):
            raise ValueError("SegmentationModel: outputs must be one logits tensor or a dict of "
                             f"named outputs with a {MAIN_OUTPUT!r} entry, got a "
                             f"{type(outputs).__name__} of {len(outputs)}.")
        elif loss_weights is not None:
            raise ValueError("SegmentationModel: loss_weights apply to a dict of outputs; this "
                             "model has a single output.")
        else:
            self._default_loss_weights = {MAIN_OUTPUT: 1.0}
        _check_geometry(output_stride, padding)
        self.output_stride = output_stride
        self.padding = padding
        super().__init__(inputs, outputs, name=name, **kwargs)
        self._metrics_on_main_output = True

    @property
    def default_loss_weights(self):
        """``{output name: weight}`` used by ``compile`` when no ``loss_weights`` is given."""
        return dict(self._default_loss_weights)

    def compile(self, optimizer="rmsprop", loss=None, loss_weights=None, metrics=None,
                weighted_metrics=None, **kwargs):
        """``keras.Model.compile`` with the deep-supervision defaults (see the class doc)."""
        if not isinstance(self.output, dict):
            self._metrics_on_main_output = False
            super().compile(optimizer=optimizer, loss=loss, loss_weights=loss_weights,
                            metrics=metrics, weighted_metrics=weighted_metrics, **kwargs)
            return
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

    def train_step(self, *args, **kwargs):
        """Keras' ``train_step`` (JAX's also takes the state); on the PyTorch backend the
        weights' gradients are released once the optimizer has applied them. Keras' torch
        trainer releases them at the next step, after its forward pass, so they stood beside
        that pass's activations: one more copy of the trainable weights at the step's peak
        and between steps."""
        logs = super().train_step(*args, **kwargs)
        if keras.backend.backend() == "torch":
            for variable in self.trainable_variables:
                variable.value.grad = None
        return logs

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
        config = {**super().get_config(), "output_stride": self.output_stride,
                  "padding": self.padding}
        if isinstance(self.output, dict):
            config["loss_weights"] = self.default_loss_weights
        return config

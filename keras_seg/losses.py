"""Segmentation losses, ready for ``model.compile(loss=...)`` on every backend.

Every loss here takes

* ``y_true``: integer class maps ``(batch, H, W)`` or ``(batch, H, W, 1)``, where
  pixels equal to ``ignore_index`` (default 255, PASCAL VOC's "void") are left out;
* ``y_pred``: logits ``(batch, h, w, num_classes)`` (probabilities with
  ``from_logits=False``), at the label size or another one: when the sizes differ
  the labels are resized to the prediction by **nearest neighbour** (the default,
  ``resize="labels"``: the usual training of auxiliary / deep-supervision heads and
  of DeepLab v1 at stride 8; no new class value can appear), or the logits are
  upsampled **bilinearly** to the labels (``resize="logits"``);
* ``sample_weight`` (optional): a per-pixel weight map ``(batch, H, W)`` (e.g. the
  U-Net boundary weight map of :mod:`keras_seg.data`), resized along with the
  labels by nearest neighbour, or a per-image weight ``(batch,)``.

**Normalisation.** Keras' ``Loss.__call__`` multiplies the per-pixel losses by the
sample weight and divides by the number of pixels, which counts ignored pixels and
makes a weight map change the loss scale. These losses reduce themselves instead
(they override ``__call__``): pixel-wise losses return the *weighted mean over the
non-ignored pixels*, ``sum_i w_i l_i / sum_i w_i`` with ``w_i`` = sample weight x
class weight of the pixel's label. With class weights and no sample weight this is
exactly ``torch.nn.functional.cross_entropy(weight=..., ignore_index=...,
reduction="mean")``; multiplying every weight by a constant leaves the loss
unchanged, so turning a weight map on does not call for another learning rate. A
batch without any valid pixel gives 0 (never NaN).

**Precision.** The losses compute in float32 (16-bit logits are cast), so they are
safe under the ``mixed_float16`` / ``mixed_bfloat16`` policies; float64 logits (a model
built with ``keras.config.set_floatx("float64")``) are kept in float64.

**Label values.** Labels outside ``[0, num_classes)`` that are not
``ignore_index`` raise a ``ValueError`` when the labels are a NumPy array (eager
use). Inside a compiled ``fit`` step nothing can be raised: such pixels are then
excluded like ignored ones, and it is the data pipeline that validates label
values (:mod:`keras_seg.data` readers raise on them).
"""

import keras
import numpy as np
from keras import ops

from keras_seg.ops import per_replica_loss
from keras_seg.ops import resize as _resize

_RESIZE_MODES = ("labels", "logits")
_CLASS_MODES = ("all", "present")
_PROB_EPS = 1e-7


def _register(cls):
    return keras.saving.register_keras_serializable(package="keras_seg")(cls)


def _check_labels_eagerly(y_true, num_classes, ignore_index, who):
    """Raise on out-of-range label values when the labels are a NumPy array."""
    if not isinstance(y_true, np.ndarray):
        return
    if not np.issubdtype(y_true.dtype, np.integer):
        if not np.all(np.isfinite(y_true)) or np.any(y_true != np.round(y_true)):
            raise ValueError(
                f"{who}: labels must hold integer class indices, got non-integer values "
                f"(dtype {y_true.dtype}). Pass the class map, not one-hot or probabilities."
            )
    values = np.unique(y_true)
    bad = values[(values < 0) | (values >= num_classes)]
    if ignore_index is not None:
        bad = bad[bad != ignore_index]
    if bad.size:
        raise ValueError(
            f"{who}: labels contain values {bad[:10].tolist()} outside [0, {num_classes}) "
            f"that are not ignore_index={ignore_index}. Remap them to class indices or to "
            f"the ignore index, or build the model with more classes (the prediction has "
            f"{num_classes} channels)."
        )


def labels_to_int(y_true, who="labels"):
    """``(batch, H, W)`` or ``(batch, H, W, 1)`` labels -> int32 ``(batch, H, W)``."""
    labels = ops.convert_to_tensor(y_true)
    if len(labels.shape) == 4 and labels.shape[-1] == 1:
        labels = ops.squeeze(labels, axis=-1)
    if len(labels.shape) != 3:
        raise ValueError(
            f"{who}: labels must be class maps of shape (batch, H, W) or (batch, H, W, 1), "
            f"got shape {tuple(labels.shape)}."
        )
    return ops.cast(labels, "int32")


def _same_static_size(a, b):
    sa, sb = tuple(a.shape[1:3]), tuple(b.shape[1:3])
    return None not in sa and sa == sb


def _spatial_size(x):
    """Static ``(H, W)`` ints when known, else the dynamic sizes."""
    h, w = x.shape[1], x.shape[2]
    if h is not None and w is not None:
        return (int(h), int(w))
    shape = ops.shape(x)
    return (shape[1], shape[2])


def resize_labels(labels, size):
    """Nearest-neighbour resize of int class maps ``(batch, H, W)`` to ``size``.

    Nearest neighbour only picks existing values, so no class (and no label between
    a class and the ignore index) is invented. Works inside ``tf.function``.
    """
    x = ops.cast(ops.expand_dims(labels, -1), "float32")  # exact for values < 2**24
    return ops.cast(ops.round(_resize(x, size, "nearest")[..., 0]), "int32")


def compute_dtype(y_pred):
    """The dtype a loss computes in for predictions ``y_pred``: ``"float64"`` for float64
    predictions, else ``"float32"`` (16-bit predictions are cast up)."""
    return "float64" if keras.backend.standardize_dtype(y_pred.dtype) == "float64" else "float32"


def _divide_or_zero(numerator, denominator):
    """``numerator / denominator``, 0 where the denominator is 0, in the inputs' dtype
    (``keras.ops.divide_no_nan`` returns float32 for float64 inputs on the torch backend of
    Keras 3.15)."""
    nonzero = denominator != 0
    quotient = numerator / ops.where(nonzero, denominator, ops.ones_like(denominator))
    return ops.where(nonzero, quotient, ops.zeros_like(quotient))


def _check_class_vector(values, num_classes, what, who):
    if values is None:
        return None
    if len(values) != num_classes:
        raise ValueError(
            f"{who}: {what} has {len(values)} entries but the prediction has {num_classes} "
            f"classes; give one float per class."
        )
    return ops.convert_to_tensor(np.asarray(values, dtype="float32"))


def _as_float_list(values, what, who):
    if values is None:
        return None
    try:
        out = [float(v) for v in np.asarray(values, dtype="float64").reshape(-1)]
    except (TypeError, ValueError) as e:
        raise ValueError(f"{who}: {what} must be a list of floats, got {values!r}.") from e
    if not all(np.isfinite(out)) or min(out) < 0:
        raise ValueError(f"{who}: {what} must be finite and >= 0, got {out}.")
    return out


class SegmentationLoss(keras.losses.Loss):
    """Base class of the keras-seg losses: label / resolution / weight handling.

    Subclasses implement ``compute(labels, scores, weights)`` on the prepared
    tensors: ``labels`` int32 ``(batch, h, w)`` with every excluded pixel set to 0,
    ``scores`` float32 ``(batch, h, w, num_classes)`` (logits or probabilities, see
    ``from_logits``) and ``weights`` float32 ``(batch, h, w)``: 0 on ignored and
    out-of-range pixels, else the sample weight (1 without one).

    Args:
        ignore_index: label value excluded from the loss (None: no ignored value).
        resize: ``"labels"`` (nearest-neighbour labels to the prediction size) or
            ``"logits"`` (bilinear prediction to the label size) when sizes differ.
        from_logits: whether ``y_pred`` are logits (True) or probabilities.
        name: loss name.
    """

    def __init__(self, ignore_index=255, resize="labels", from_logits=True, name=None):
        super().__init__(name=name, dtype="float32")
        if resize not in _RESIZE_MODES:
            raise ValueError(f"{type(self).__name__}: resize must be one of {_RESIZE_MODES}, "
                             f"got {resize!r}.")
        if ignore_index is not None and not isinstance(ignore_index, (int, np.integer)):
            raise ValueError(f"{type(self).__name__}: ignore_index must be an int or None, got "
                             f"{ignore_index!r}.")
        self.ignore_index = None if ignore_index is None else int(ignore_index)
        self.resize = resize
        self.from_logits = bool(from_logits)

    def __call__(self, y_true, y_pred, sample_weight=None):
        with keras.name_scope(self.name):
            labels, scores, weights = self.prepare(y_true, y_pred, sample_weight)
            # divided by the replicas under tf.distribute, as keras.losses.Loss.__call__ does
            return per_replica_loss(self.compute(labels, scores, weights))

    def call(self, y_true, y_pred):
        """The reduced (scalar) loss without sample weights."""
        return self.__call__(y_true, y_pred)

    def prepare(self, y_true, y_pred, sample_weight=None):
        """Bring labels, predictions and weights to one resolution.

        Returns:
            ``(labels, scores, weights)`` as described in the class docstring.
        """
        who = type(self).__name__
        scores = ops.convert_to_tensor(y_pred)
        scores = ops.cast(scores, compute_dtype(scores))
        if len(scores.shape) != 4:
            raise ValueError(f"{who}: y_pred must be (batch, h, w, num_classes), got shape "
                             f"{tuple(scores.shape)}.")
        num_classes = scores.shape[-1]
        if num_classes is None or num_classes < 2:
            raise ValueError(f"{who}: y_pred needs a static number of classes >= 2 on its last "
                             f"axis (one logit per class, background included), got "
                             f"{num_classes}.")
        _check_labels_eagerly(y_true, num_classes, self.ignore_index, who)
        labels = labels_to_int(y_true, who)
        weight_map = None
        if sample_weight is not None:
            weight_map = ops.cast(ops.convert_to_tensor(sample_weight), scores.dtype)
            if len(weight_map.shape) == 4 and weight_map.shape[-1] == 1:
                weight_map = ops.squeeze(weight_map, axis=-1)
            if len(weight_map.shape) == 1:
                weight_map = ops.reshape(weight_map, (-1, 1, 1))
            elif len(weight_map.shape) != 3:
                raise ValueError(f"{who}: sample_weight must be per pixel (batch, H, W) or per "
                                 f"image (batch,), got shape {tuple(weight_map.shape)}.")
        if not _same_static_size(labels, scores):
            if self.resize == "labels":
                size = _spatial_size(scores)
                labels = resize_labels(labels, size)
                if weight_map is not None and weight_map.shape[1:3] != (1, 1):
                    weight_map = _resize(ops.expand_dims(weight_map, -1), size, "nearest")
                    weight_map = weight_map[..., 0]
            else:
                scores = _resize(scores, _spatial_size(labels), "bilinear")
        valid = ops.logical_and(labels >= 0, labels < num_classes)
        if self.ignore_index is not None:
            valid = ops.logical_and(valid, labels != self.ignore_index)
        weights = ops.cast(valid, scores.dtype)
        if weight_map is not None:
            weights = weights * weight_map
        labels = ops.where(valid, labels, 0)
        return labels, scores, weights

    def log_probs(self, scores):
        """Log-probabilities from logits (or from probabilities, clipped)."""
        if self.from_logits:
            return ops.log_softmax(scores, axis=-1)
        return ops.log(ops.clip(scores, _PROB_EPS, 1.0))

    def probs(self, scores):
        """Probabilities from logits (or the probabilities themselves)."""
        return ops.softmax(scores, axis=-1) if self.from_logits else scores

    def compute(self, labels, scores, weights):
        raise NotImplementedError

    def get_config(self):
        return {"name": self.name, "ignore_index": self.ignore_index, "resize": self.resize,
                "from_logits": self.from_logits}


@_register
class SegmentationCrossEntropy(SegmentationLoss):
    """Pixel-wise softmax cross-entropy with ignore index, class weights and label smoothing.

    The loss of FCN (Long et al. 2015) and of nearly every model here. Per pixel
    ``i`` with label ``y`` and ``C`` classes::

        l_i = (1 - eps) * w[y] * (-log p_y) + (eps / C) * sum_c w[c] * (-log p_c)
        loss = sum_i s_i * l_i / sum_i s_i * w[y_i]

    (``w``: class weights, default 1; ``s``: sample weight, 0 on ignored pixels;
    ``eps``: label smoothing), which equals
    ``torch.nn.functional.cross_entropy(logits, y, weight=w, ignore_index=...,
    label_smoothing=eps)`` (its ``"mean"`` reduction). Class-weight schemes of the
    papers (median frequency balancing of SegNet, ENet's ``1 / ln(1.02 + p)``) are
    computed from a dataset by :mod:`keras_seg.data.class_weights`.

    Args:
        ignore_index: label value excluded from the loss (255); None for none.
        class_weights: None or ``num_classes`` floats >= 0.
        label_smoothing: ``eps`` in [0, 1).
        resize: ``"labels"`` or ``"logits"``, see :mod:`keras_seg.losses`.
        from_logits: ``y_pred`` are logits (True) or probabilities (False).
        name: loss name.

    Shapes: ``y_true`` ``(B, H, W)`` / ``(B, H, W, 1)`` ints; ``y_pred``
    ``(B, h, w, C)``; ``sample_weight`` ``(B, H, W)`` or ``(B,)``; returns a
    float32 scalar.
    """

    def __init__(self, ignore_index=255, class_weights=None, label_smoothing=0.0,
                 resize="labels", from_logits=True, name="segmentation_cross_entropy"):
        super().__init__(ignore_index=ignore_index, resize=resize, from_logits=from_logits,
                         name=name)
        self.class_weights = _as_float_list(class_weights, "class_weights", type(self).__name__)
        label_smoothing = float(label_smoothing)
        if not 0.0 <= label_smoothing < 1.0:
            raise ValueError(f"SegmentationCrossEntropy: label_smoothing must be in [0, 1), got "
                             f"{label_smoothing}.")
        self.label_smoothing = label_smoothing

    def compute(self, labels, scores, weights):
        num_classes = scores.shape[-1]
        logp = self.log_probs(scores)
        nll = -ops.take_along_axis(logp, ops.expand_dims(labels, -1), axis=-1)[..., 0]
        cw = _check_class_vector(self.class_weights, num_classes, "class_weights",
                                 type(self).__name__)
        if cw is not None:
            cw = ops.cast(cw, nll.dtype)
        label_weight = ops.ones_like(nll) if cw is None else ops.take(cw, labels)
        per_pixel = label_weight * nll
        eps = self.label_smoothing
        if eps:
            smooth = -logp if cw is None else -logp * cw
            per_pixel = (1.0 - eps) * per_pixel + (eps / num_classes) * ops.sum(smooth, -1)
        return _divide_or_zero(ops.sum(weights * per_pixel), ops.sum(weights * label_weight))

    def get_config(self):
        return {**super().get_config(), "class_weights": self.class_weights,
                "label_smoothing": self.label_smoothing}


class _OverlapLoss(SegmentationLoss):
    """Soft Dice / Jaccard: shared per-class soft counts."""

    def __init__(self, ignore_index=255, smooth=1.0, class_weights=None, classes="all",
                 resize="labels", from_logits=True, name=None):
        super().__init__(ignore_index=ignore_index, resize=resize, from_logits=from_logits,
                         name=name)
        if classes not in _CLASS_MODES:
            raise ValueError(f"{type(self).__name__}: classes must be one of {_CLASS_MODES}, got "
                             f"{classes!r}.")
        self.smooth = float(smooth)
        if self.smooth < 0:
            raise ValueError(f"{type(self).__name__}: smooth must be >= 0, got {smooth}.")
        self.class_weights = _as_float_list(class_weights, "class_weights", type(self).__name__)
        self.classes = classes

    def soft_counts(self, labels, scores, weights):
        """Per-class soft intersection ``I``, predicted mass ``P`` and label count ``G``."""
        num_classes = scores.shape[-1]
        probs = self.probs(scores)
        truth = ops.one_hot(labels, num_classes, dtype=probs.dtype)
        w = ops.expand_dims(weights, -1)
        axes = (0, 1, 2)
        inter = ops.sum(probs * truth * w, axis=axes)
        pred = ops.sum(probs * w, axis=axes)
        true = ops.sum(truth * w, axis=axes)
        return inter, pred, true

    def reduce_classes(self, score, true):
        """``1 - weighted mean over classes of the per-class score``."""
        num_classes = score.shape[-1]
        cw = _check_class_vector(self.class_weights, num_classes, "class_weights",
                                 type(self).__name__)
        cw = ops.ones((num_classes,), score.dtype) if cw is None else ops.cast(cw, score.dtype)
        if self.classes == "present":
            cw = cw * ops.cast(true > 0, score.dtype)
        return 1.0 - _divide_or_zero(ops.sum(cw * score), ops.sum(cw))

    def get_config(self):
        return {**super().get_config(), "smooth": self.smooth,
                "class_weights": self.class_weights, "classes": self.classes}


@_register
class DiceLoss(_OverlapLoss):
    """Soft multiclass Dice loss (Milletari et al. 2016, "V-Net"; multiclass form of
    Sudre et al. 2017), ignore-aware.

    With softmax probabilities ``p``, one-hot labels ``g`` and weights ``s``
    (0 on ignored pixels), summed over the batch and the pixels per class ``c``::

        dice_c = (2 * sum s p_c g_c + smooth) / (sum s p_c + sum s g_c + smooth)
        loss = 1 - sum_c w_c dice_c / sum_c w_c

    Args:
        ignore_index: label value excluded (255); None for none.
        smooth: additive smoothing (1.0); keeps classes absent from a batch defined.
        class_weights: None (equal) or ``num_classes`` floats: the weights ``w_c``
            of the mean over classes.
        classes: ``"all"`` (every class in the mean) or ``"present"`` (only the
            classes present in the batch's labels).
        resize: ``"labels"`` or ``"logits"``, see :mod:`keras_seg.losses`.
        from_logits: ``y_pred`` are logits (True) or probabilities (False).
        name: loss name.

    Shapes: ``y_true`` ``(B, H, W)`` ints; ``y_pred`` ``(B, h, w, C)``;
    ``sample_weight`` ``(B, H, W)`` or ``(B,)``; returns a float32 scalar in [0, 1].
    """

    def __init__(self, ignore_index=255, smooth=1.0, class_weights=None, classes="all",
                 resize="labels", from_logits=True, name="dice_loss"):
        super().__init__(ignore_index=ignore_index, smooth=smooth, class_weights=class_weights,
                         classes=classes, resize=resize, from_logits=from_logits, name=name)

    def compute(self, labels, scores, weights):
        inter, pred, true = self.soft_counts(labels, scores, weights)
        dice = (2.0 * inter + self.smooth) / (pred + true + self.smooth + _PROB_EPS)
        return self.reduce_classes(dice, true)


@_register
class JaccardLoss(_OverlapLoss):
    """Soft multiclass Jaccard (IoU) loss (Rahman & Wang 2016), ignore-aware.

    With the soft counts of :class:`DiceLoss`::

        iou_c = (sum s p_c g_c + smooth) / (sum s p_c + sum s g_c - sum s p_c g_c + smooth)
        loss = 1 - sum_c w_c iou_c / sum_c w_c

    Args:
        ignore_index: label value excluded (255); None for none.
        smooth: additive smoothing (1.0).
        class_weights: None (equal) or ``num_classes`` floats for the class mean.
        classes: ``"all"`` or ``"present"`` (classes present in the batch's labels).
        resize: ``"labels"`` or ``"logits"``, see :mod:`keras_seg.losses`.
        from_logits: ``y_pred`` are logits (True) or probabilities (False).
        name: loss name.

    Shapes: as :class:`DiceLoss`; returns a float32 scalar in [0, 1].
    """

    def __init__(self, ignore_index=255, smooth=1.0, class_weights=None, classes="all",
                 resize="labels", from_logits=True, name="jaccard_loss"):
        super().__init__(ignore_index=ignore_index, smooth=smooth, class_weights=class_weights,
                         classes=classes, resize=resize, from_logits=from_logits, name=name)

    def compute(self, labels, scores, weights):
        inter, pred, true = self.soft_counts(labels, scores, weights)
        iou = (inter + self.smooth) / (pred + true - inter + self.smooth + _PROB_EPS)
        return self.reduce_classes(iou, true)


@_register
class FocalLoss(SegmentationLoss):
    """Softmax focal loss (Lin, Goyal, Girshick, He & Dollar 2017, "Focal Loss for
    Dense Object Detection"), pixel-wise, ignore-aware.

    Per pixel with label ``y`` and probability ``p_y``::

        l_i = -alpha_y * (1 - p_y) ** gamma * log(p_y)
        loss = sum_i s_i l_i / sum_i s_i

    ``gamma = 0`` and no ``alpha`` give the cross-entropy.

    Args:
        gamma: focusing parameter >= 0 (2, the paper's best).
        alpha: None (1), a float (a constant factor, the paper's 0.25 for its
            binary case), or ``num_classes`` floats (``alpha_y`` per label class).
        ignore_index: label value excluded (255); None for none.
        resize: ``"labels"`` or ``"logits"``, see :mod:`keras_seg.losses`.
        from_logits: ``y_pred`` are logits (True) or probabilities (False).
        name: loss name.

    Shapes: ``y_true`` ``(B, H, W)`` ints; ``y_pred`` ``(B, h, w, C)``;
    ``sample_weight`` ``(B, H, W)`` or ``(B,)``; returns a float32 scalar.
    """

    def __init__(self, gamma=2.0, alpha=None, ignore_index=255, resize="labels",
                 from_logits=True, name="focal_loss"):
        super().__init__(ignore_index=ignore_index, resize=resize, from_logits=from_logits,
                         name=name)
        self.gamma = float(gamma)
        if self.gamma < 0:
            raise ValueError(f"FocalLoss: gamma must be >= 0, got {gamma}.")
        if alpha is None or isinstance(alpha, (int, float, np.floating, np.integer)):
            self.alpha = None if alpha is None else float(alpha)
        else:
            self.alpha = _as_float_list(alpha, "alpha", "FocalLoss")

    def compute(self, labels, scores, weights):
        logp = self.log_probs(scores)
        logp_y = ops.take_along_axis(logp, ops.expand_dims(labels, -1), axis=-1)[..., 0]
        p_y = ops.exp(logp_y)
        per_pixel = -ops.power(ops.maximum(1.0 - p_y, 0.0), self.gamma) * logp_y
        if isinstance(self.alpha, list):
            alpha = _check_class_vector(self.alpha, scores.shape[-1], "alpha", "FocalLoss")
            per_pixel = per_pixel * ops.take(ops.cast(alpha, per_pixel.dtype), labels)
        elif self.alpha is not None:
            per_pixel = per_pixel * self.alpha
        return _divide_or_zero(ops.sum(weights * per_pixel), ops.sum(weights))

    def get_config(self):
        return {**super().get_config(), "gamma": self.gamma, "alpha": self.alpha}


@_register
class LovaszSoftmax(SegmentationLoss):
    """Lovasz-softmax loss (Berman, Rannen Triki & Blaschko 2018, "The Lovasz-Softmax
    loss: A tractable surrogate for the optimization of the intersection-over-union
    measure in neural networks", CVPR).

    For each class ``c``: the errors ``e_i = |g_ic - p_ic|`` of the valid pixels,
    sorted in decreasing order, dotted with the gradient of the Lovasz extension of
    the Jaccard loss at the sorted ground truth (paper Eq. 9 and Alg. 1); the loss
    is the mean over classes (the ``"present"`` classes of the labels by default,
    as the paper's code), and with ``per_image=True`` the mean of that over the
    images (an image without any valid pixel contributes 0, as in the paper's code).

    Per-pixel weights: a pixel of weight 0 is left out like an ignored pixel, and
    a positive weight ``s_i`` scales its error (``s_i e_i``); with binary weights
    this is exactly the loss on the selected pixels.

    Args:
        per_image: compute the loss per image and average (True) or over the whole
            batch at once (False, default).
        classes: ``"present"`` (default) or ``"all"``.
        ignore_index: label value excluded (255); None for none.
        resize: ``"labels"`` or ``"logits"``, see :mod:`keras_seg.losses`.
        from_logits: ``y_pred`` are logits (True) or probabilities (False).
        name: loss name.

    Shapes: ``y_true`` ``(B, H, W)`` ints; ``y_pred`` ``(B, h, w, C)``;
    ``sample_weight`` ``(B, H, W)`` or ``(B,)``; returns a float32 scalar. Costs a
    sort of ``h * w`` (per image) or ``B * h * w`` values per class.
    """

    def __init__(self, per_image=False, classes="present", ignore_index=255,
                 resize="labels", from_logits=True, name="lovasz_softmax"):
        super().__init__(ignore_index=ignore_index, resize=resize, from_logits=from_logits,
                         name=name)
        if classes not in _CLASS_MODES:
            raise ValueError(f"LovaszSoftmax: classes must be one of {_CLASS_MODES}, got "
                             f"{classes!r}.")
        self.per_image = bool(per_image)
        self.classes = classes

    def compute(self, labels, scores, weights):
        num_classes = scores.shape[-1]
        probs = self.probs(scores)
        truth = ops.one_hot(labels, num_classes, dtype=probs.dtype)
        groups = 1
        if self.per_image:
            groups = probs.shape[0] if probs.shape[0] is not None else ops.shape(probs)[0]
        # (groups, C, N): one row per image (or one for the batch) and class
        probs = ops.transpose(ops.reshape(probs, (groups, -1, num_classes)), (0, 2, 1))
        truth = ops.transpose(ops.reshape(truth, (groups, -1, num_classes)), (0, 2, 1))
        weights = ops.expand_dims(ops.reshape(weights, (groups, -1)), 1)
        valid = ops.cast(weights > 0, weights.dtype)
        truth = truth * valid
        errors = ops.abs(truth - probs) * weights
        # invalid pixels sort after every valid one; their error is 0, so they add nothing
        # and leave the prefix sums of the valid pixels as if they had been removed
        order = ops.argsort(-(errors - (1.0 - valid)), axis=-1)
        errors = ops.take_along_axis(errors, order, axis=-1)
        truth = ops.take_along_axis(truth, order, axis=-1)
        total = ops.sum(truth, axis=-1, keepdims=True)
        inter = total - ops.cumsum(truth, axis=-1)
        union = total + ops.cumsum(1.0 - truth, axis=-1)
        jaccard = 1.0 - inter / ops.maximum(union, 1.0)
        grad = ops.concatenate([jaccard[..., :1], jaccard[..., 1:] - jaccard[..., :-1]], -1)
        per_class = ops.sum(errors * grad, axis=-1)  # (groups, C)
        if self.classes == "present":
            present = ops.cast(total[..., 0] > 0, total.dtype)
            per_group = _divide_or_zero(ops.sum(per_class * present, -1),
                                          ops.sum(present, -1))
        else:
            per_group = ops.mean(per_class, axis=-1)
        return ops.mean(per_group)

    def get_config(self):
        return {**super().get_config(), "per_image": self.per_image, "classes": self.classes}


@_register
class CombinedLoss(keras.losses.Loss):
    """A weighted sum of losses: ``sum_k weights[k] * losses[k](y_true, y_pred, sw)``.

    E.g. ``CombinedLoss([SegmentationCrossEntropy(), DiceLoss()], [1.0, 0.5])``.

    Args:
        losses: a non-empty list of ``keras.losses.Loss`` objects (or identifiers
            accepted by ``keras.losses.get``).
        weights: None (all 1) or one float per loss.
        name: loss name.

    Shapes: whatever the summed losses take; returns a float32 scalar (float64 for float64
    predictions). Under ``tf.distribute`` each summed loss divides by the replicas itself
    (``keras.losses.Loss`` and :class:`SegmentationLoss` both do), so the sum is not
    divided again.
    """

    def __init__(self, losses, weights=None, name="combined_loss"):
        super().__init__(name=name, dtype="float32")
        if not isinstance(losses, (list, tuple)) or not losses:
            raise ValueError(f"CombinedLoss: losses must be a non-empty list of losses, got "
                             f"{losses!r}.")
        self.losses = [keras.losses.get(loss) for loss in losses]
        for given, loss in zip(losses, self.losses, strict=True):
            if loss is None:
                raise ValueError(f"CombinedLoss: unknown loss {given!r}.")
        if weights is None:
            weights = [1.0] * len(self.losses)
        weights = _as_float_list(weights, "weights", "CombinedLoss")
        if len(weights) != len(self.losses):
            raise ValueError(f"CombinedLoss: {len(weights)} weights for {len(self.losses)} "
                             f"losses; give one weight per loss.")
        self.weights = weights

    def __call__(self, y_true, y_pred, sample_weight=None):
        with keras.name_scope(self.name):
            total = 0.0
            for weight, loss in zip(self.weights, self.losses, strict=True):
                value = loss(y_true, y_pred, sample_weight=sample_weight)
                value = ops.cast(value, compute_dtype(value))
                total = total + weight * value
            return total

    def call(self, y_true, y_pred):
        return self.__call__(y_true, y_pred)

    def get_config(self):
        return {"name": self.name, "weights": self.weights,
                "losses": [keras.saving.serialize_keras_object(loss) for loss in self.losses]}

    @classmethod
    def from_config(cls, config):
        config = dict(config)
        config["losses"] = [keras.saving.deserialize_keras_object(loss)
                            for loss in config["losses"]]
        return cls(**config)


#: the loss names of :func:`get` (``keras-seg train --loss``)
LOSSES = ("ce", "dice", "focal", "lovasz", "ce+dice")


def get(name, ignore_index=255, class_weights=None):
    """The loss called ``name`` (one of :data:`LOSSES`), ready for ``model.compile``.

    Args:
        name: ``"ce"`` (:class:`SegmentationCrossEntropy`), ``"dice"``
            (:class:`DiceLoss`), ``"focal"`` (:class:`FocalLoss`), ``"lovasz"``
            (:class:`LovaszSoftmax`) or ``"ce+dice"`` (their sum, a
            :class:`CombinedLoss` with weights 1 and 1).
        ignore_index: label value the loss leaves out.
        class_weights: per-class weights of the cross-entropy (``"ce"`` and the
            cross-entropy term of ``"ce+dice"``); the other losses do not use them.

    Returns:
        A ``keras.losses.Loss``.

    Raises:
        ValueError: ``name`` is not one of :data:`LOSSES`.
    """
    if name not in LOSSES:
        raise ValueError(f"Unknown loss {name!r}; choose one of {', '.join(LOSSES)}.")
    ce = SegmentationCrossEntropy(ignore_index=ignore_index, class_weights=class_weights)
    if name == "ce":
        return ce
    if name == "dice":
        return DiceLoss(ignore_index=ignore_index)
    if name == "focal":
        return FocalLoss(ignore_index=ignore_index)
    if name == "lovasz":
        return LovaszSoftmax(ignore_index=ignore_index)
    return CombinedLoss([ce, DiceLoss(ignore_index=ignore_index)], [1.0, 1.0])

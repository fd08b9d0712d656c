"""Dataset-level segmentation metrics from a confusion matrix.

The standard mean IoU of PASCAL VOC / Cityscapes (and of Long et al. 2015, "Fully
Convolutional Networks for Semantic Segmentation", Sec. 5) is computed from one
confusion matrix accumulated over **all pixels of all images**, not as the mean
of per-image IoUs (which weighs a small image like a large one and counts a class
missed on one image as IoU 0 there). Pixels whose label is the ignore index are
skipped; classes absent from both the labels and the predictions are left out of
the mean.

The confusion matrix ``cm`` is ``(num_classes, num_classes)`` with rows = true
class and columns = predicted class; from it, per class ``c``::

    IoU_c = cm[c, c] / (sum_j cm[c, j] + sum_i cm[i, c] - cm[c, c])

* :class:`MeanIoU`: a stateful ``keras.metrics.Metric`` for ``model.compile``;
* :func:`confusion_matrix` and :func:`iou_from_confusion`: the functional form.
"""

import keras
import numpy as np
from keras import ops

from keras_seg import validation
from keras_seg.losses import labels_to_int, resize_labels
from keras_seg.ops import resize as _resize

# The confusion matrix is accumulated exactly as ``high * _BASE + low`` in two int32
# variables: float32 counts stop being exact above 2**24 (one 4096 x 4096 image), and
# int64 / float64 variables are not available on every backend (JAX without x64).
_BASE = 2**24
_FROM_LOGITS = ("auto", True, False)


def _integer_classes(x, who, what):
    """``x`` as a tensor, or a ValueError when its dtype is not an integer (or bool) one.

    The dtype is static, so the check holds inside ``tf.function`` / ``jax.jit`` traces.
    """
    x = ops.convert_to_tensor(x)
    dtype = keras.backend.standardize_dtype(x.dtype)
    if not (dtype.startswith(("int", "uint")) or dtype == "bool"):
        raise ValueError(
            f"{who}: {what} must be integer class indices, got dtype {dtype}: float labels "
            "would be truncated to classes (2.7 -> 2) without a word. Pass int labels (e.g. "
            "masks.astype('int32'); round first if they are whole numbers stored as floats).")
    return x


def _predicted_classes(y_pred, labels, num_classes, from_logits, who):
    """Predicted class map ``(batch, H, W)`` int32 at the label resolution."""
    y_pred = ops.convert_to_tensor(y_pred)
    rank = len(y_pred.shape)
    if from_logits == "auto":
        if rank == 4 and y_pred.shape[-1] == num_classes and num_classes > 1:
            from_logits = True
        elif rank == 3 or (rank == 4 and y_pred.shape[-1] == 1):
            from_logits = False
        else:
            raise ValueError(
                f"{who}: cannot tell logits from a class map: y_pred has shape "
                f"{tuple(y_pred.shape)} for num_classes={num_classes}. Give logits "
                f"(batch, h, w, {num_classes}) or a class map (batch, h, w), or set "
                "from_logits.")
    size = tuple(labels.shape[1:3])
    static = None not in size
    if not static:
        shape = ops.shape(labels)
        size = (shape[1], shape[2])
    if from_logits:
        if rank != 4:
            raise ValueError(f"{who}: logits must be (batch, h, w, num_classes), got shape "
                             f"{tuple(y_pred.shape)}.")
        if not (static and tuple(y_pred.shape[1:3]) == size):
            y_pred = _resize(ops.cast(y_pred, "float32"), size, "bilinear")
        return ops.cast(ops.argmax(y_pred, axis=-1), "int32")
    pred = labels_to_int(y_pred, who)
    if not (static and tuple(pred.shape[1:3]) == size):
        pred = resize_labels(pred, size)
    return pred


def batch_confusion_matrix(y_true, y_pred, num_classes, ignore_index=255, from_logits="auto",
                           sample_weight=None):
    """The int32 confusion matrix of one batch, as a backend tensor (graph-safe).

    Args:
        y_true: int class maps ``(batch, H, W)`` or ``(batch, H, W, 1)``.
        y_pred: logits ``(batch, h, w, num_classes)`` (upsampled bilinearly to
            ``(H, W)`` before the argmax when smaller) or class maps
            ``(batch, h, w)`` (resized by nearest neighbour).
        num_classes: number of classes.
        ignore_index: label value skipped (None: none).
        from_logits: ``"auto"`` (logits if rank 4 with ``num_classes`` channels,
            class maps if rank 3), True or False.
        sample_weight: optional ``(batch, H, W)`` or ``(batch,)`` mask: pixels of
            weight 0 are skipped, every other pixel counts once.

    Returns:
        int32 ``(num_classes, num_classes)``, rows = true class, columns =
        predicted class. Labels or predictions outside ``[0, num_classes)`` are
        skipped.

    Raises:
        ValueError: ``y_true`` has a float dtype.
    """
    who = "confusion_matrix"
    labels = labels_to_int(_integer_classes(y_true, who, "labels (y_true)"), who)
    pred = _predicted_classes(y_pred, labels, num_classes, from_logits, who)
    valid = ops.logical_and(labels >= 0, labels < num_classes)
    valid = ops.logical_and(valid, ops.logical_and(pred >= 0, pred < num_classes))
    if ignore_index is not None:
        valid = ops.logical_and(valid, labels != ignore_index)
    if sample_weight is not None:
        weight = ops.convert_to_tensor(sample_weight)
        if len(weight.shape) == 4 and weight.shape[-1] == 1:
            weight = ops.squeeze(weight, -1)
        if len(weight.shape) == 1:
            weight = ops.reshape(weight, (-1, 1, 1))
        valid = ops.logical_and(valid, weight > 0)
    cells = num_classes * num_classes
    index = ops.where(valid, labels * num_classes + pred, cells)
    index = ops.reshape(index, (-1,))
    counts = ops.segment_sum(ops.ones_like(index), index, num_segments=cells + 1)
    return ops.reshape(ops.cast(counts[:cells], "int32"), (num_classes, num_classes))


def confusion_matrix(y_true, y_pred, num_classes, ignore_index=255, from_logits="auto"):
    """Confusion matrix of a batch as a NumPy int64 array (eager use).

    Args:
        y_true: int class maps ``(batch, H, W)`` or ``(batch, H, W, 1)`` (NumPy or
            tensors).
        y_pred: logits ``(batch, h, w, num_classes)`` or class maps ``(batch, h, w)``;
            smaller logits are upsampled bilinearly to the labels before the argmax.
        num_classes: number of classes.
        ignore_index: label value skipped (255; None: none).
        from_logits: ``"auto"``, True or False (see :class:`MeanIoU`).

    Returns:
        int64 ``(num_classes, num_classes)``: rows = true class, columns = predicted.

    Raises:
        ValueError: ``y_true`` has a float dtype (it would be truncated), or
            ``num_classes`` is not a positive int.
    """
    num_classes = validation.num_classes("confusion_matrix", num_classes)
    cm = batch_confusion_matrix(y_true, y_pred, num_classes, ignore_index, from_logits)
    return ops.convert_to_numpy(cm).astype("int64")


def iou_from_confusion(cm):
    """Per-class IoU, mean IoU, pixel accuracy, mean accuracy and frequency-weighted IoU.

    Definitions as Long et al. 2015 (Sec. 5), with ``n_ij`` = pixels of class ``i``
    predicted as ``j`` and ``t_i = sum_j n_ij``: pixel accuracy ``sum_i n_ii /
    sum_i t_i``; mean accuracy ``mean_i n_ii / t_i`` over classes with ``t_i > 0``;
    ``IoU_i = n_ii / (t_i + sum_j n_ji - n_ii)``; mean IoU over the classes present in
    the labels or the predictions; frequency-weighted IoU ``sum_i t_i IoU_i / sum_i t_i``.

    Args:
        cm: ``(num_classes, num_classes)`` counts, rows = true, columns = predicted.

    Returns:
        A dict of floats (NumPy): ``"per_class_iou"`` (array, NaN for classes absent
        from both labels and predictions), ``"mean_iou"``, ``"pixel_accuracy"``,
        ``"mean_accuracy"``, ``"frequency_weighted_iou"`` (NaN when ``cm`` is empty).
    """
    cm = np.asarray(cm, dtype="float64")
    if cm.ndim != 2 or cm.shape[0] != cm.shape[1]:
        raise ValueError(f"iou_from_confusion: cm must be square (C, C), got shape {cm.shape}.")
    tp = np.diag(cm)
    true = cm.sum(axis=1)
    pred = cm.sum(axis=0)
    union = true + pred - tp
    total = cm.sum()
    with np.errstate(invalid="ignore", divide="ignore"):
        iou = np.where(union > 0, tp / union, np.nan)
        acc = np.where(true > 0, tp / true, np.nan)
        present = union > 0
        return {
            "per_class_iou": iou,
            "mean_iou": float(np.mean(iou[present])) if present.any() else float("nan"),
            "pixel_accuracy": float(tp.sum() / total) if total else float("nan"),
            "mean_accuracy": float(np.nanmean(acc)) if (true > 0).any() else float("nan"),
            "frequency_weighted_iou": (float(np.sum(true[present] * iou[present]) / total)
                                       if total else float("nan")),
        }


@keras.saving.register_keras_serializable(package="keras_seg")
class MeanIoU(keras.metrics.Metric):
    """Dataset-level mean intersection-over-union from an accumulated confusion matrix.

    The PASCAL VOC / Cityscapes protocol (Long et al. 2015, Sec. 5): every
    ``update_state`` adds the batch's pixels to one ``(num_classes, num_classes)``
    confusion matrix, accumulated exactly (in two int32 words, so counts past
    2**24 stay exact on every backend); ``result()`` is the mean IoU over the
    classes present in the labels or the predictions seen so far (0.0 before any
    pixel). Pixels labelled ``ignore_index`` are skipped. As a compile metric it
    logs ``mean_iou`` / ``val_mean_iou`` per epoch.

    Args:
        num_classes: number of classes.
        ignore_index: label value skipped (255); None for none.
        from_logits: ``"auto"`` (default: ``y_pred`` of rank 4 with
            ``num_classes`` channels are logits, rank 3 are class maps), True
            (logits) or False (class maps ``(batch, h, w)`` or ``(batch, h, w, 1)``).
        name: metric name (``"mean_iou"``).
        dtype: dtype of the result (float32).

    ``update_state(y_true, y_pred, sample_weight=None)``: ``y_true`` int
    ``(batch, H, W)`` / ``(batch, H, W, 1)`` (a float dtype is refused with a
    ``ValueError``, also when traced: the dtype is static); ``y_pred`` logits
    ``(batch, h, w, num_classes)``, upsampled bilinearly to ``(H, W)`` before the
    argmax when the sizes differ, or class maps (resized by nearest neighbour);
    ``sample_weight`` a mask (pixels of weight 0 skipped, others counted once).
    Labels outside ``[0, num_classes)`` that are not ``ignore_index`` are skipped.

    NumPy accessors (eager): :meth:`confusion_matrix`, :meth:`per_class_iou`,
    :meth:`pixel_accuracy`, :meth:`frequency_weighted_iou`, :meth:`summary`.
    """

    def __init__(self, num_classes, ignore_index=255, from_logits="auto", name="mean_iou",
                 dtype="float32"):
        super().__init__(name=name, dtype=dtype)
        self.num_classes = validation.num_classes("MeanIoU", num_classes)
        if from_logits not in _FROM_LOGITS:
            raise ValueError(f"MeanIoU: from_logits must be one of {_FROM_LOGITS}, got "
                             f"{from_logits!r}.")
        if ignore_index is not None and not isinstance(ignore_index, (int, np.integer)):
            raise ValueError(f"MeanIoU: ignore_index must be an int or None, got "
                             f"{ignore_index!r}.")
        self.ignore_index = None if ignore_index is None else int(ignore_index)
        self.from_logits = from_logits
        shape = (self.num_classes, self.num_classes)
        self.confusion_low = self.add_variable(shape=shape, initializer="zeros", dtype="int32",
                                               name="confusion_low")
        self.confusion_high = self.add_variable(shape=shape, initializer="zeros",
                                                dtype="int32", name="confusion_high")

    def update_state(self, y_true, y_pred, sample_weight=None):
        counts = batch_confusion_matrix(y_true, y_pred, self.num_classes, self.ignore_index,
                                        self.from_logits, sample_weight)
        low = self.confusion_low.value + counts
        carry = ops.floor_divide(low, _BASE)
        self.confusion_low.assign(low - carry * _BASE)
        self.confusion_high.assign(self.confusion_high.value + carry)

    def _float_confusion(self):
        return (ops.cast(self.confusion_high.value, "float32") * float(_BASE)
                + ops.cast(self.confusion_low.value, "float32"))

    def result(self):
        cm = self._float_confusion()
        tp = ops.diagonal(cm)
        union = ops.sum(cm, axis=0) + ops.sum(cm, axis=1) - tp
        present = ops.cast(union > 0, "float32")
        iou = ops.divide_no_nan(tp, union)
        return ops.cast(ops.divide_no_nan(ops.sum(iou * present), ops.sum(present)),
                        self.dtype)

    def confusion_matrix(self):
        """The accumulated confusion matrix, NumPy int64 ``(C, C)`` (rows = true)."""
        high = ops.convert_to_numpy(self.confusion_high.value).astype("int64")
        low = ops.convert_to_numpy(self.confusion_low.value).astype("int64")
        return high * _BASE + low

    def summary(self):
        """:func:`iou_from_confusion` of the accumulated confusion matrix (a dict)."""
        return iou_from_confusion(self.confusion_matrix())

    def per_class_iou(self):
        """NumPy float64 ``(C,)`` IoU per class, NaN for classes never seen."""
        return self.summary()["per_class_iou"]

    def pixel_accuracy(self):
        """Fraction of the counted pixels predicted correctly (float)."""
        return self.summary()["pixel_accuracy"]

    def frequency_weighted_iou(self):
        """Per-class IoU weighted by the classes' label frequencies (float)."""
        return self.summary()["frequency_weighted_iou"]

    def get_config(self):
        return {"num_classes": self.num_classes, "ignore_index": self.ignore_index,
                "from_logits": self.from_logits, "name": self.name, "dtype": self.dtype}

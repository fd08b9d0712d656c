"""Scoring a trained model on a dataset: :func:`evaluate` and its printable forms.

The scores keep the key names of :func:`keras_seg.metrics.iou_from_confusion`
(``per_class_iou``, ``mean_iou``, ``pixel_accuracy``, ``mean_accuracy``,
``frequency_weighted_iou``), in the :func:`evaluate` result and in ``eval.json``
(:func:`evaluation_to_json`), which add ``confusion``, ``num_classes``, ``class_names``
and ``images``: :data:`EVALUATION_KEYS`.
"""

import math

import numpy as np

#: the keys of an :func:`evaluate` result and of ``eval.json``
EVALUATION_KEYS = ("confusion", "per_class_iou", "mean_iou", "pixel_accuracy",
                   "mean_accuracy", "frequency_weighted_iou", "num_classes", "class_names",
                   "images")


def model_num_classes(model):
    """The number of classes a segmentation model predicts: its output channels ``K``
    (one sigmoid logit, ``K = 1``, is two classes: 0 and 1).

    Args:
        model: a segmentation ``keras.Model`` (auxiliary heads are ignored).

    Raises:
        ValueError: the model is not a segmentation model (see
            :class:`keras_seg.inference.Predictor`).
    """
    from keras_seg import inference

    channels = inference.Predictor(model).num_classes
    return 2 if channels == 1 else channels


def evaluate(model, dataset, *, ignore_index=255, batch_size=1, scales=(1.0,), flip=False,
             limit=None, num_classes=None, class_names=None, model_name=None):
    """Dataset-level segmentation scores of ``model`` on ``dataset``.

    The classes are the model's: ``K`` = its output channels (:func:`model_num_classes`),
    whatever subset of them the evaluated masks hold, so a prediction of a class absent
    from the split still counts as a false positive. Each image is predicted at its own
    size (:class:`keras_seg.inference.Predictor`); the ``(K, K)`` confusion matrix
    accumulates over all pixels of all images, then per-class IoU = TP / (TP + FP + FN),
    averaged over the classes present in the labels or the predictions.

    Args:
        model: a segmentation ``keras.Model`` (deep-supervision heads are ignored).
        dataset: a :class:`~keras_seg.data.SegmentationDataset`; its labels must be
            classes of the model (``0 .. K-1``) or ``ignore_index``.
        ignore_index: label value left out of the scores.
        batch_size: images per forward pass (consecutive images of one size).
        scales: test-time scales of :class:`keras_seg.inference.Predictor`.
        flip: also predict the flipped images (test-time augmentation).
        limit: evaluate only the first ``limit`` images.
        num_classes: the number of classes the caller expects (None: the model's); it
            must equal the model's.
        class_names: ``K`` names of the model's classes (None: the dataset's names, with
            ``"class_<k>"`` for model classes the dataset does not name).
        model_name: how the model is named in error messages (None: ``model.name``).

    Returns:
        A dict (:data:`EVALUATION_KEYS`) with ``confusion`` ((K, K) int64 pixel counts,
        rows = truth, columns = prediction), the scores of
        :func:`keras_seg.metrics.iou_from_confusion` under its key names:
        ``per_class_iou`` ((K,), NaN for classes absent from truth and prediction),
        ``mean_iou``, ``pixel_accuracy``, ``mean_accuracy``, ``frequency_weighted_iou``
        (floats), and ``num_classes`` (K), ``class_names`` (K names) and ``images`` (the
        number of images scored).

    Raises:
        ValueError: ``num_classes`` differs from the model's classes; ``class_names`` is
            not ``K`` distinct names; the dataset has more classes than the model, or a
            mask holds a label that is neither a class of the model nor ``ignore_index``
            (the message names the label, the mask and the model).
    """
    from keras_seg import inference
    from keras_seg.data.folder import LabelRangeError
    from keras_seg.metrics import confusion_matrix, iou_from_confusion
    from keras_seg.trainer.config import check_class_names

    predictor = inference.Predictor(model, batch_size=batch_size, scales=scales, flip=flip)
    channels = predictor.num_classes
    classes = 2 if channels == 1 else channels
    name = repr(model_name if model_name is not None else model.name)
    has = (f"it predicts {classes} classes (labels 0-{classes - 1}, from its {channels} "
           f"output channel{'s' if channels > 1 else ''})")
    if num_classes is not None and num_classes != classes:
        raise ValueError(
            f"num_classes={num_classes!r} (--num-classes) does not match the model {name}: "
            f"{has}. Leave num_classes out (the model's output sets it), or evaluate the "
            "model trained for that many classes.")
    data_classes = dataset.num_classes
    if data_classes is not None and data_classes > classes:
        raise ValueError(
            f"The dataset has {data_classes} classes but the model {name} knows fewer: {has}. "
            "Evaluate it on data labelled with its classes, or evaluate a model trained on "
            "this dataset.")
    if class_names is None:
        known = list(dataset.class_names or [])[:classes]
        class_names = known + [f"class_{c}" for c in range(len(known), classes)]
    class_names = list(check_class_names(class_names, classes, "evaluate"))

    def not_a_class(values, where):
        values = sorted(int(v) for v in values)
        shown = ", ".join(str(v) for v in values[:10]) + (" ..." if len(values) > 10 else "")
        return ValueError(
            f"Label{'s' if len(values) > 1 else ''} {shown} in {where} "
            f"{'are' if len(values) > 1 else 'is'} not a class of the model {name}: {has}, "
            f"and unlabeled pixels are marked with ignore_index={ignore_index}. Evaluate the "
            "model on data labelled with its classes, or set --ignore-index (ignore_index=) "
            "to the value that marks unlabeled pixels in this dataset.")

    def example(i):
        try:
            return dataset[i]
        except LabelRangeError as err:
            outside = err.values[(err.values < 0) | (err.values >= classes)]
            if outside.size:
                raise not_a_class(outside, f"mask {err.mask_path!r}") from None
            raise

    count = len(dataset) if limit is None else min(limit, len(dataset))
    confusion = np.zeros((classes, classes), dtype=np.int64)
    for start in range(0, count, batch_size):
        indices = range(start, min(start + batch_size, count))
        pairs = [example(i) for i in indices]
        for i, (_, mask) in zip(indices, pairs, strict=True):
            mask = np.asarray(mask)
            bad = (mask != ignore_index) & ((mask < 0) | (mask >= classes))
            if bad.any():
                raise not_a_class(np.unique(mask[bad]), dataset.describe(i))
        preds = predictor.predict([p[0] for p in pairs])
        for (_, mask), pred in zip(pairs, preds, strict=True):
            confusion += confusion_matrix(np.asarray(mask)[None], np.asarray(pred)[None],
                                          classes, ignore_index=ignore_index,
                                          from_logits=False)
    scores = iou_from_confusion(confusion)
    return {
        "confusion": confusion,
        "per_class_iou": np.asarray(scores["per_class_iou"], dtype=np.float64),
        "mean_iou": float(scores["mean_iou"]),
        "pixel_accuracy": float(scores["pixel_accuracy"]),
        "mean_accuracy": float(scores["mean_accuracy"]),
        "frequency_weighted_iou": float(scores["frequency_weighted_iou"]),
        "num_classes": classes,
        "class_names": class_names,
        "images": count,
    }


def evaluation_to_json(evaluation):
    """A JSON-serializable copy of an :func:`evaluate` result: what ``eval.json`` holds.

    The same keys (:data:`EVALUATION_KEYS`): arrays become lists (``confusion`` a list of
    K rows of counts) and NaN scores (a class absent from truth and prediction, or no
    labelled pixel at all) become ``null``, so that the file is strict JSON.

    Args:
        evaluation: the dict :func:`evaluate` returned.
    """
    def plain(value):
        if isinstance(value, np.ndarray):
            value = value.tolist()
        if isinstance(value, (list, tuple)):
            return [plain(v) for v in value]
        if isinstance(value, np.generic):
            value = value.item()
        if isinstance(value, float) and math.isnan(value):
            return None
        return value

    return {key: plain(value) for key, value in evaluation.items()}


def format_iou_table(evaluation):
    """The per-class IoU table of an :func:`evaluate` result, as printable text.

    Args:
        evaluation: the dict :func:`evaluate` returned, or the one ``eval.json`` holds
            (:func:`evaluation_to_json`: ``null`` scores are printed as ``n/a``).
    """
    def score(value):
        return "   n/a" if value is None or math.isnan(value) else f"{value:6.4f}"

    names = evaluation["class_names"]
    width = max(10, *(len(n) for n in names))
    lines = [f"{'class':<{width}}  IoU", f"{'-' * width}  ------"]
    for name, iou in zip(names, evaluation["per_class_iou"], strict=True):
        lines.append(f"{name:<{width}}  {score(iou)}")
    lines.append(f"{'-' * width}  ------")
    lines.append(f"{'mean IoU':<{width}}  {score(evaluation['mean_iou'])}")
    lines.append(f"{'pixel acc.':<{width}}  {score(evaluation['pixel_accuracy'])}")
    lines.append(f"{'fw IoU':<{width}}  {score(evaluation['frequency_weighted_iou'])}")
    return "\n".join(lines)

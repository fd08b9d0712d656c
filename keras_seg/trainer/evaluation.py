"""Scoring a trained model on a dataset: :func:`evaluate` and its printable forms."""

import math

import numpy as np

from keras_seg.model_base import inference_model


def evaluate(model, dataset, *, ignore_index=255, batch_size=1, scales=(1.0,), flip=False,
             limit=None):
    """Dataset-level segmentation scores of ``model`` on ``dataset``.

    Each image is predicted at its own size (:func:`keras_seg.inference.predict`); the
    confusion matrix accumulates over all pixels of all images, then per-class IoU =
    TP / (TP + FP + FN), averaged over the classes present in the labels or the
    predictions.

    Args:
        model: a segmentation ``keras.Model`` (deep-supervision heads are ignored).
        dataset: a :class:`~keras_seg.data.SegmentationDataset`.
        ignore_index: label value left out of the scores.
        batch_size: images per forward pass (images of one size only).
        scales, flip: test-time augmentation of :func:`keras_seg.inference.predict`.
        limit: evaluate only the first ``limit`` images.

    Returns:
        A dict with ``confusion`` ((K, K) int64, rows = truth), ``per_class_iou`` ((K,),
        NaN for classes absent from truth and prediction), ``miou``, ``pixel_accuracy``,
        ``mean_accuracy``, ``fw_iou``, ``class_names`` and ``images``.
    """
    from keras_seg import inference
    from keras_seg.metrics import confusion_matrix, iou_from_confusion

    num_classes = dataset.num_classes
    net = inference_model(model)
    count = len(dataset) if limit is None else min(limit, len(dataset))
    confusion = np.zeros((num_classes, num_classes), dtype=np.int64)
    for start in range(0, count, batch_size):
        pairs = [dataset[i] for i in range(start, min(start + batch_size, count))]
        images = [p[0] for p in pairs]
        preds = inference.predict(net, images, scales=scales, flip=flip)
        for (_, mask), pred in zip(pairs, preds, strict=True):
            confusion += confusion_matrix(np.asarray(mask)[None], np.asarray(pred)[None],
                                          num_classes, ignore_index=ignore_index,
                                          from_logits=False)
    scores = iou_from_confusion(confusion)
    return {
        "confusion": confusion,
        "per_class_iou": np.asarray(scores["per_class_iou"], dtype=np.float64),
        "miou": float(scores["mean_iou"]),
        "pixel_accuracy": float(scores["pixel_accuracy"]),
        "mean_accuracy": float(scores["mean_accuracy"]),
        "fw_iou": float(scores["frequency_weighted_iou"]),
        "class_names": list(dataset.class_names),
        "images": count,
    }


def evaluation_to_json(evaluation):
    """A JSON-serializable copy of an :func:`evaluate` result (NaN -> None).

    Args:
        evaluation: the dict :func:`evaluate` returned.
    """
    out = {}
    for key, value in evaluation.items():
        if isinstance(value, np.ndarray):
            value = [None if isinstance(v, float) and math.isnan(v) else v
                     for v in value.tolist()]
        out[key] = value
    return out


def format_iou_table(evaluation):
    """The per-class IoU table of an :func:`evaluate` result, as printable text.

    Args:
        evaluation: the dict :func:`evaluate` returned.
    """
    names = evaluation["class_names"]
    ious = evaluation["per_class_iou"]
    width = max(10, *(len(n) for n in names))
    lines = [f"{'class':<{width}}  IoU", f"{'-' * width}  ------"]
    for name, iou in zip(names, ious, strict=True):
        lines.append(f"{name:<{width}}  " + ("   n/a" if math.isnan(iou) else f"{iou:6.4f}"))
    lines.append(f"{'-' * width}  ------")
    lines.append(f"{'mean IoU':<{width}}  {evaluation['miou']:6.4f}")
    lines.append(f"{'pixel acc.':<{width}}  {evaluation['pixel_accuracy']:6.4f}")
    lines.append(f"{'fw IoU':<{width}}  {evaluation['fw_iou']:6.4f}")
    return "\n".join(lines)

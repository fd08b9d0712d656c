"""keras_seg.metrics against a direct numpy computation of the confusion matrix."""

import keras
import numpy as np
import pytest
import torch
import torch.nn.functional as F

from keras_seg.metrics import MeanIoU, confusion_matrix, iou_from_confusion

C = 6
rng = np.random.default_rng(0)


def numpy_confusion(labels, pred, num_classes=C, ignore_index=255):
    labels, pred = np.asarray(labels).reshape(-1), np.asarray(pred).reshape(-1)
    keep = labels != ignore_index
    cm = np.zeros((num_classes, num_classes), "int64")
    np.add.at(cm, (labels[keep], pred[keep]), 1)
    return cm


def numpy_scores(cm):
    tp = np.diag(cm).astype("float64")
    union = cm.sum(0) + cm.sum(1) - tp
    present = union > 0
    iou = np.full(len(cm), np.nan)
    iou[present] = tp[present] / union[present]
    freq = cm.sum(1) / cm.sum()
    return iou, iou[present].mean(), tp.sum() / cm.sum(), np.nansum(freq * iou)


def make_batch(batch, h, w):
    """Labels in {0, 1, 2, 4} (+ ignore), predictions in {0, 1, 2, 3}: class 5 absent
    from both, class 3 only predicted, class 4 only labelled."""
    labels = rng.choice(np.array([0, 1, 2, 4]), size=(batch, h, w))
    pred = np.where(rng.uniform(size=labels.shape) < 0.6, np.minimum(labels, 3),
                    rng.integers(0, 4, labels.shape))
    labels[rng.uniform(size=labels.shape) < 0.15] = 255
    logits = (5.0 * np.eye(C)[pred] + rng.normal(0, 0.5, (*pred.shape, C))).astype("float32")
    return labels, pred, logits


def test_mean_iou_matches_numpy_over_several_batches():
    metric = MeanIoU(C)
    batches = [make_batch(2, 9, 7) for _ in range(3)]
    total = np.zeros((C, C), "int64")
    for i, (labels, pred, logits) in enumerate(batches):
        if i == 0:
            metric.update_state(labels, logits)  # logits, auto-detected
        elif i == 1:
            metric.update_state(labels[..., None], pred)  # (B, H, W, 1) labels, class map
        else:
            metric.update_state(labels, pred[..., None].astype("float32"))  # (B, H, W, 1)
        total += numpy_confusion(labels, pred)
        np.testing.assert_array_equal(confusion_matrix(labels, logits, C), numpy_confusion(
            labels, pred))
    np.testing.assert_array_equal(metric.confusion_matrix(), total)
    iou, miou, acc, fwiou = numpy_scores(total)
    assert np.isnan(iou[5]) and iou[3] == 0.0 and iou[4] == 0.0  # absent / FP-only / FN-only
    assert float(metric.result()) == pytest.approx(miou, rel=1e-6)
    np.testing.assert_allclose(metric.per_class_iou(), iou, rtol=1e-12)
    assert metric.pixel_accuracy() == pytest.approx(acc, rel=1e-12)
    assert metric.frequency_weighted_iou() == pytest.approx(fwiou, rel=1e-12)
    summary = iou_from_confusion(total)
    assert summary["mean_iou"] == pytest.approx(miou, rel=1e-12)
    assert summary["mean_accuracy"] == pytest.approx(
        np.nanmean(np.diag(total) / np.where(total.sum(1) > 0, total.sum(1), np.nan)))
    metric.reset_state()
    assert float(metric.result()) == 0.0 and metric.confusion_matrix().sum() == 0


def test_dataset_iou_is_not_the_mean_of_per_image_ious():
    # image 1: 4 pixels of class 0, all right (per-image mIoU 1.0, class 1 absent)
    # image 2: 50 pixels of class 0 (25 predicted as 1) and 50 of class 1, all right
    labels1, pred1 = np.zeros((1, 2, 2), "int32"), np.zeros((1, 2, 2), "int32")
    labels2 = np.repeat(np.array([0, 1]), 50).reshape(1, 10, 10)
    pred2 = labels2.copy()
    pred2[0, :25 // 10, :] = 1
    pred2[0, 2, :5] = 1  # 25 pixels of class 0 predicted as class 1
    assert (pred2[labels2 == 0] == 1).sum() == 25
    metric = MeanIoU(2)
    per_image = []
    for labels, pred in ((labels1, pred1), (labels2, pred2)):
        metric.update_state(labels, pred)
        single = MeanIoU(2)
        single.update_state(labels, pred)
        per_image.append(float(single.result()))
    # dataset: cm = [[29, 25], [0, 50]] -> IoU 29/54 and 50/75
    expected = (29 / 54 + 50 / 75) / 2
    assert float(metric.result()) == pytest.approx(expected, rel=1e-6)
    assert np.mean(per_image) == pytest.approx((1.0 + (25 / 50 + 50 / 75) / 2) / 2, rel=1e-6)
    assert np.mean(per_image) - float(metric.result()) > 0.15


def test_smaller_logits_are_upsampled_bilinearly_before_the_argmax():
    logits = rng.normal(size=(2, 4, 5, C)).astype("float32")
    labels = rng.integers(0, C, (2, 8, 10))
    labels[:, 0] = 255
    up = F.interpolate(torch.from_numpy(logits).permute(0, 3, 1, 2), size=(8, 10),
                       mode="bilinear", align_corners=False).argmax(1).numpy()
    metric = MeanIoU(C)
    metric.update_state(labels, logits)
    np.testing.assert_array_equal(metric.confusion_matrix(), numpy_confusion(labels, up))


def test_counts_stay_exact_past_float32_precision():
    assert np.float32(2**24) + np.float32(1) == 2**24  # what a float32 accumulator would do
    metric = MeanIoU(2)
    # start one pixel short of 2**24 counts in a cell (as after 4096 x 4096 pixels)
    metric.confusion_low.assign(np.array([[2**24 - 1, 0], [0, 5]], "int32"))
    labels = np.array([[[0, 0, 1]]])
    for _ in range(3):
        metric.update_state(labels, labels)
    np.testing.assert_array_equal(metric.confusion_matrix(), [[2**24 + 5, 0], [0, 8]])
    low = keras.ops.convert_to_numpy(metric.confusion_low.value)
    assert low.max() < 2**24  # the carry moved into the high word
    assert float(metric.result()) == 1.0


def test_options_and_errors():
    labels, pred, logits = make_batch(2, 6, 6)
    mask = rng.uniform(size=labels.shape) < 0.5
    metric = MeanIoU(C, from_logits=True)
    metric.update_state(labels, logits, sample_weight=mask.astype("float32"))
    np.testing.assert_array_equal(metric.confusion_matrix(),
                                  numpy_confusion(np.where(mask, labels, 255), pred))
    # ignore_index=None: 255 is out of range and skipped; ignore_index=0 skips class 0
    assert confusion_matrix(labels, pred, C, ignore_index=None).sum() == (labels != 255).sum()
    cm0 = confusion_matrix(labels, pred, C, ignore_index=0)
    assert cm0[0].sum() == 0 and cm0.sum() == ((labels != 255) & (labels != 0)).sum()
    config = metric.get_config()
    revived = keras.saving.deserialize_keras_object(keras.saving.serialize_keras_object(metric))
    assert isinstance(revived, MeanIoU) and revived.get_config() == config
    with pytest.raises(ValueError, match="cannot tell logits from a class map"):
        MeanIoU(C).update_state(labels, logits[..., :3])
    with pytest.raises(ValueError, match="from_logits must be one of"):
        MeanIoU(C, from_logits="yes")
    with pytest.raises(ValueError, match="num_classes must be a positive int"):
        MeanIoU(0)


def test_compile_metric_in_fit_and_evaluate():
    inputs = keras.Input((None, None, 3))
    model = keras.Model(inputs, keras.layers.Conv2D(3, 3, padding="same")(inputs))
    x = rng.uniform(size=(6, 12, 10, 3)).astype("float32")
    y = (x[..., 0] * 3).astype("int32").clip(0, 2)
    y[:, :2] = 255
    model.compile(optimizer=keras.optimizers.SGD(0.1),
                  loss=keras.losses.SparseCategoricalCrossentropy(from_logits=True,
                                                                  ignore_class=255),
                  metrics=[MeanIoU(3)])
    history = model.fit(x, y, batch_size=2, epochs=1, verbose=0, validation_data=(x, y))
    assert {"mean_iou", "val_mean_iou"} <= set(history.history)
    logs = model.evaluate(x, y, batch_size=2, verbose=0, return_dict=True)
    pred = keras.ops.convert_to_numpy(model(x)).argmax(-1)
    _, miou, _, _ = numpy_scores(numpy_confusion(y, pred, 3))
    # accumulated over the three batches of the evaluation, not averaged per batch
    assert logs["mean_iou"] == pytest.approx(miou, rel=1e-5)
    assert history.history["val_mean_iou"][0] == pytest.approx(miou, rel=1e-5)

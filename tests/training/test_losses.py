"""keras_seg.losses against reference computations (torch's cross-entropy, numpy)."""

import keras
import numpy as np
import pytest
import torch
import torch.nn.functional as F

from keras_seg import losses
from keras_seg.losses import (
    CombinedLoss,
    DiceLoss,
    FocalLoss,
    JaccardLoss,
    LovaszSoftmax,
    SegmentationCrossEntropy,
    resize_labels,
)

C = 4
rng = np.random.default_rng(0)
LOGITS = (2.0 * rng.normal(size=(2, 9, 7, C))).astype("float32")
LABELS = rng.integers(0, C, (2, 9, 7))
LABELS[rng.uniform(size=LABELS.shape) < 0.2] = 255
CLASS_WEIGHTS = [0.5, 2.0, 1.0, 3.0]


def value(x):
    return float(keras.ops.convert_to_numpy(x))


def torch_ce(logits, labels, **kwargs):
    out = F.cross_entropy(torch.from_numpy(logits).permute(0, 3, 1, 2),
                          torch.from_numpy(np.asarray(labels, "int64")), ignore_index=255,
                          **kwargs)
    return float(out)


def softmax(x):
    e = np.exp(x - x.max(-1, keepdims=True))
    return e / e.sum(-1, keepdims=True)


def test_cross_entropy_matches_torch():
    for class_weights, eps in [(None, 0.0), (CLASS_WEIGHTS, 0.0), (None, 0.1),
                               (CLASS_WEIGHTS, 0.2)]:
        loss = SegmentationCrossEntropy(class_weights=class_weights, label_smoothing=eps)
        weight = None if class_weights is None else torch.tensor(class_weights)
        expected = torch_ce(LOGITS, LABELS, weight=weight, label_smoothing=eps)
        assert value(loss(LABELS, LOGITS)) == pytest.approx(expected, rel=1e-5)
        # (B, H, W, 1) labels and float16 logits (mixed precision) are accepted
        got = loss(LABELS[..., None], LOGITS.astype("float16"))
        assert keras.backend.standardize_dtype(got.dtype) == "float32"
        ref16 = torch_ce(LOGITS.astype("float16").astype("float32"), LABELS, weight=weight,
                         label_smoothing=eps)
        assert value(got) == pytest.approx(ref16, rel=1e-5), (class_weights, eps)


def test_cross_entropy_sample_weight_is_a_weighted_mean_over_valid_pixels():
    sw = rng.uniform(0.0, 10.0, LABELS.shape).astype("float32")
    loss = SegmentationCrossEntropy(class_weights=CLASS_WEIGHTS)
    logp = np.log(softmax(LOGITS.astype("float64")))
    valid = LABELS != 255
    y = np.where(valid, LABELS, 0)
    nll = -np.take_along_axis(logp, y[..., None], -1)[..., 0]
    w = np.asarray(CLASS_WEIGHTS)[y] * sw * valid
    assert value(loss(LABELS, LOGITS, sample_weight=sw)) == pytest.approx(
        (w * nll).sum() / w.sum(), rel=1e-5)
    # scale-free: weights x 7 give the same loss; per-image weights (B,) work too
    assert value(loss(LABELS, LOGITS, sample_weight=7 * sw)) == pytest.approx(
        value(loss(LABELS, LOGITS, sample_weight=sw)), rel=1e-5)
    per_image = np.array([1.0, 3.0], "float32")
    w = np.asarray(CLASS_WEIGHTS)[y] * per_image[:, None, None] * valid
    assert value(loss(LABELS, LOGITS, sample_weight=per_image)) == pytest.approx(
        (w * nll).sum() / w.sum(), rel=1e-5)
    # all pixels ignored: 0, not NaN
    assert value(loss(np.full_like(LABELS, 255), LOGITS)) == 0.0


def test_labels_resized_by_nearest_neighbour_never_invent_classes():
    labels = rng.choice(np.array([0, 3, 255]), size=(2, 20, 16))
    for size in ((7, 5), (31, 27)):
        out = keras.ops.convert_to_numpy(resize_labels(keras.ops.convert_to_tensor(labels),
                                                       size))
        assert out.shape == (2, *size)
        assert set(np.unique(out)) <= {0, 3, 255}
    # block-constant labels (4 x 4 blocks): the loss on stride-4 logits sees each block's
    # label and its weight, whichever pixel of the block nearest-neighbour picks
    small = LABELS[:, :5, :4]
    big = np.repeat(np.repeat(small, 4, axis=1), 4, axis=2)
    sw_small = rng.uniform(0.5, 2.0, small.shape).astype("float32")
    sw_big = np.repeat(np.repeat(sw_small, 4, axis=1), 4, axis=2)
    logits = LOGITS[:, :5, :4]
    loss = SegmentationCrossEntropy(class_weights=CLASS_WEIGHTS)
    assert value(loss(big, logits, sample_weight=sw_big)) == pytest.approx(
        value(loss(small, logits, sample_weight=sw_small)), rel=1e-6)
    assert value(DiceLoss()(big, logits)) == pytest.approx(value(DiceLoss()(small, logits)),
                                                           rel=1e-6)


def test_resize_logits_upsamples_bilinearly_like_torch():
    labels = rng.integers(0, C, (2, 18, 14))
    labels[:, :3] = 255
    small = LOGITS  # (2, 9, 7, C) -> x2
    up = F.interpolate(torch.from_numpy(small).permute(0, 3, 1, 2), size=(18, 14),
                       mode="bilinear", align_corners=False)
    expected = float(F.cross_entropy(up, torch.from_numpy(labels), ignore_index=255))
    got = SegmentationCrossEntropy(resize="logits")(labels, small)
    assert value(got) == pytest.approx(expected, rel=1e-5)


def numpy_overlap(labels, logits, kind, smooth=1.0, class_weights=None, classes="all"):
    p = softmax(logits.astype("float64"))
    valid = (labels != 255)[..., None]
    g = np.eye(C)[np.where(labels == 255, 0, labels)] * valid
    p = p * valid
    inter, pred, true = (p * g).sum((0, 1, 2)), p.sum((0, 1, 2)), g.sum((0, 1, 2))
    if kind == "dice":
        score = (2 * inter + smooth) / (pred + true + smooth)
    else:
        score = (inter + smooth) / (pred + true - inter + smooth)
    w = np.ones(C) if class_weights is None else np.asarray(class_weights, "float64")
    if classes == "present":
        w = w * (true > 0)
    return 1 - (w * score).sum() / w.sum()


def test_dice_and_jaccard_match_numpy():
    labels = LABELS.copy()
    labels[labels == 2] = 0  # class 2 absent from the labels
    perfect = 30.0 * (np.eye(C)[np.where(labels == 255, 0, labels)] - 0.5)
    for cls, kind in ((DiceLoss, "dice"), (JaccardLoss, "jaccard")):
        for kwargs in ({}, {"smooth": 0.0}, {"class_weights": CLASS_WEIGHTS},
                       {"classes": "present"}):
            got = value(cls(**kwargs)(labels, LOGITS))
            expected = numpy_overlap(labels, LOGITS, kind, **kwargs)
            assert got == pytest.approx(expected, rel=1e-5), (kind, kwargs)
        assert value(cls(smooth=0.0, classes="present")(labels, perfect)) < 1e-5


def test_focal_matches_numpy_and_reduces_to_cross_entropy():
    p = softmax(LOGITS.astype("float64"))
    valid = LABELS != 255
    y = np.where(valid, LABELS, 0)
    p_y = np.take_along_axis(p, y[..., None], -1)[..., 0]
    alpha = np.asarray(CLASS_WEIGHTS)[y]
    expected = (valid * alpha * -(1 - p_y) ** 2 * np.log(p_y)).sum() / valid.sum()
    got = FocalLoss(gamma=2.0, alpha=CLASS_WEIGHTS)(LABELS, LOGITS)
    assert value(got) == pytest.approx(expected, rel=1e-5)
    assert value(FocalLoss(gamma=0.0)(LABELS, LOGITS)) == pytest.approx(
        torch_ce(LOGITS, LABELS), rel=1e-5)
    assert value(FocalLoss(alpha=0.25)(LABELS, LOGITS)) == pytest.approx(
        0.25 * value(FocalLoss()(LABELS, LOGITS)), rel=1e-5)


def lovasz_grad(gt_sorted):
    gts = gt_sorted.sum()
    inter = gts - np.cumsum(gt_sorted)
    union = gts + np.cumsum(1 - gt_sorted)
    jaccard = 1.0 - inter / union
    jaccard[1:] = jaccard[1:] - jaccard[:-1]
    return jaccard


def numpy_lovasz_flat(probs, labels, classes):
    """Berman et al.'s Algorithm 1 on the valid pixels (probs (N, C), labels (N,))."""
    if len(labels) == 0:
        return 0.0
    out = []
    for c in range(C):
        fg = (labels == c).astype("float64")
        if classes == "present" and fg.sum() == 0:
            continue
        errors = np.abs(fg - probs[:, c])
        order = np.argsort(-errors, kind="stable")
        out.append(np.dot(errors[order], lovasz_grad(fg[order])))
    return float(np.mean(out)) if out else 0.0


def numpy_lovasz(labels, logits, per_image, classes):
    p = softmax(logits.astype("float64"))
    if per_image:
        vals = []
        for b in range(len(labels)):
            keep = labels[b].reshape(-1) != 255
            vals.append(numpy_lovasz_flat(p[b].reshape(-1, C)[keep],
                                          labels[b].reshape(-1)[keep], classes))
        return float(np.mean(vals))
    keep = labels.reshape(-1) != 255
    return numpy_lovasz_flat(p.reshape(-1, C)[keep], labels.reshape(-1)[keep], classes)


def test_lovasz_softmax_matches_numpy():
    labels = LABELS.copy()
    labels[labels == 1] = 3  # class 1 absent
    labels[1, :6] = 255  # most of the second image ignored
    mask = (labels != 255).astype("float32")
    for per_image in (False, True):
        for classes in ("present", "all"):
            loss = LovaszSoftmax(per_image=per_image, classes=classes)
            expected = numpy_lovasz(labels, LOGITS, per_image, classes)
            assert value(loss(labels, LOGITS)) == pytest.approx(expected, rel=1e-5, abs=1e-6)
            # binary per-pixel weights select pixels exactly like the ignore index
            got = loss(np.where(labels == 255, 0, labels), LOGITS, sample_weight=mask)
            assert value(got) == pytest.approx(expected, rel=1e-5, abs=1e-6)


def test_combined_loss_and_serialization():
    parts = [SegmentationCrossEntropy(class_weights=CLASS_WEIGHTS, label_smoothing=0.1),
             DiceLoss(classes="present"), JaccardLoss(smooth=0.5),
             FocalLoss(gamma=1.5, alpha=CLASS_WEIGHTS), LovaszSoftmax(per_image=True)]
    combined = CombinedLoss(parts, [1.0, 0.5, 0.25, 2.0, 0.3])
    sw = rng.uniform(0.5, 2.0, LABELS.shape).astype("float32")
    expected = sum(w * value(loss(LABELS, LOGITS, sample_weight=sw))
                   for w, loss in zip(combined.weights, parts, strict=True))
    assert value(combined(LABELS, LOGITS, sample_weight=sw)) == pytest.approx(expected,
                                                                             rel=1e-5)
    for loss in [*parts, combined]:
        revived = keras.saving.deserialize_keras_object(keras.saving.serialize_keras_object(loss))
        assert type(revived) is type(loss)
        assert revived.get_config() == loss.get_config()
        assert value(revived(LABELS, LOGITS, sample_weight=sw)) == pytest.approx(
            value(loss(LABELS, LOGITS, sample_weight=sw)), rel=1e-6)


def test_clear_errors():
    bad = LABELS.copy()
    bad[0, 0, 0] = 7
    with pytest.raises(ValueError, match=r"values \[7\] outside \[0, 4\)"):
        SegmentationCrossEntropy()(bad, LOGITS)
    with pytest.raises(ValueError, match="outside"):
        DiceLoss(ignore_index=None)(LABELS, LOGITS)  # 255 is a class value then
    with pytest.raises(ValueError, match="class_weights has 3 entries"):
        SegmentationCrossEntropy(class_weights=[1, 2, 3])(LABELS, LOGITS)
    with pytest.raises(ValueError, match="resize must be one of"):
        SegmentationCrossEntropy(resize="bilinear")
    with pytest.raises(ValueError, match=r"\(batch, H, W\)"):
        SegmentationCrossEntropy()(LABELS[0], LOGITS)
    with pytest.raises(ValueError, match="label_smoothing"):
        SegmentationCrossEntropy(label_smoothing=1.0)
    with pytest.raises(ValueError, match="one weight per loss"):
        CombinedLoss([DiceLoss()], [1.0, 2.0])


def test_short_mixed_float16_fit_with_small_logits_is_finite():
    """Half-resolution float16 logits, full-resolution labels with ignore pixels, three
    losses at once inside a compiled fit step (labels resized in the graph)."""
    keras.config.set_dtype_policy("mixed_float16")
    inputs = keras.Input((None, None, 3))
    x = keras.layers.Conv2D(8, 3, strides=2, padding="same", activation="relu")(inputs)
    logits = keras.layers.Conv2D(C, 1)(x)  # float16 under the policy
    model = keras.Model(inputs, logits)
    x = rng.uniform(size=(4, 16, 16, 3)).astype("float32")
    y = (x[..., 0] * C).astype("int32").clip(0, C - 1)
    y[:, :2] = 255
    loss = CombinedLoss([SegmentationCrossEntropy(label_smoothing=0.1), DiceLoss(),
                         LovaszSoftmax()])
    model.compile(optimizer=keras.optimizers.SGD(0.05, momentum=0.9), loss=loss)
    history = model.fit(x, y, batch_size=2, epochs=3, verbose=0, shuffle=False)
    values = history.history["loss"]
    assert np.isfinite(values).all(), values
    assert values[-1] < values[0], values
    assert keras.backend.standardize_dtype(model(x).dtype) == "float16"


def test_module_exports():
    for name in ("SegmentationCrossEntropy", "DiceLoss", "JaccardLoss", "FocalLoss",
                 "LovaszSoftmax", "CombinedLoss"):
        assert issubclass(getattr(losses, name), keras.losses.Loss)

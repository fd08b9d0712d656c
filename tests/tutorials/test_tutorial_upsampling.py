"""tutorials/upsampling_comparison.py: its --fast mode trains and scores the four methods,
and its border band and option checks do what they claim."""

import os

import numpy as np
import pytest
from support.paths import TUTORIALS, load_script

PATH = os.path.join(TUTORIALS, "upsampling_comparison.py")


@pytest.fixture(scope="module")
def tutorial():
    return load_script(PATH, "upsampling_comparison")


def test_fast_mode_trains_and_scores_every_method(tutorial, capsys):
    results = tutorial.main(["--fast"])
    rows = {r["method"]: r for r in results}
    assert list(rows) == ["nearest", "bilinear", "unpool", "transpose"]
    cfg = tutorial.CONFIGS["fast"]
    assert (cfg["unet_filters"], cfg["unet_depth"], cfg["image_size"]) == (4, 2, 32)
    # UNet(filters=4, depth=2): the up-conv 2 * 2 * c * c/2 + c/2 against the 1x1 conv's
    # c * c/2 + c/2, from c = 16 and c = 8
    base = rows["nearest"]["params"]
    assert rows["bilinear"]["params"] == rows["unpool"]["params"] == base
    assert rows["transpose"]["params"] - base == 3 * (16 * 8 + 8 * 4)
    for r in rows.values():
        assert 0.0 <= r["border_mean_iou"] <= 1.0 and 0.0 <= r["val_mean_iou"] <= 1.0
        assert r["fit_s"] > 0 and np.isfinite(r["final_loss"])

    # the printed comparison: one aligned row per method with its border gap
    printed = capsys.readouterr().out.splitlines()
    header = next(i for i, line in enumerate(printed) if line.split()[:2] == ["method",
                                                                             "family"])
    table = printed[header + 1:header + 5]
    for line, r in zip(table, results, strict=True):
        fields = line.split()
        assert fields[0] == r["method"]
        assert float(fields[-4]) == pytest.approx(r["val_mean_iou"], abs=5e-4)
        assert float(fields[-3]) == pytest.approx(r["border_mean_iou"], abs=5e-4)
        gap = r["val_mean_iou"] - r["border_mean_iou"]
        assert float(fields[-2]) == pytest.approx(gap, abs=1e-3)
        assert fields[-1] == f"{r['params']:,}"
    assert "2 classes (background, object)" in "\n".join(printed)


def test_train_and_evaluate_returns_the_predictions_it_scored(tutorial):
    cfg = tutorial.CONFIGS["fast"]
    data = tutorial.load_data(cfg)
    model, result, predictions = tutorial.train_and_evaluate("bilinear", data, cfg)
    y_val = data[3]
    assert predictions.shape == y_val.shape and predictions.dtype == np.uint8
    # two classes: the val mIoU is the mean of the two classes' IoU of these predictions
    ious = [np.sum((predictions == c) & (y_val == c)) / np.sum((predictions == c) | (y_val == c))
            for c in (0, 1)]
    assert result["val_mean_iou"] == pytest.approx(np.mean(ious), abs=1e-5)
    assert result["params"] == model.count_params() - sum(
        int(np.prod(w.shape)) for w in model.non_trainable_weights)


def test_unknown_methods_are_refused(tutorial):
    assert tutorial.selected_methods(" unpool, nearest ") == ["unpool", "nearest"]
    with pytest.raises(SystemExit, match="bicubic"):
        tutorial.selected_methods("nearest,bicubic")
    with pytest.raises(SystemExit):
        tutorial.selected_methods(",")


def test_border_band(tutorial):
    mask = np.zeros((1, 7, 7), dtype=np.int32)
    mask[0, :, 4:] = 1  # one vertical boundary between columns 3 and 4
    assert np.array_equal(np.nonzero(tutorial.border_band(mask, 1)[0].any(0))[0], [3, 4])
    assert np.array_equal(np.nonzero(tutorial.border_band(mask, 2)[0].any(0))[0], [2, 3, 4, 5])
    band = tutorial.border_band(mask, 2)[0]
    assert band[:, 2:6].all() and not band[:, [0, 1, 6]].any()

"""The pictures of a run: `train` redraws curves.png from log.csv's rows at each committed
epoch and ends with confusion_matrix.png beside eval.json; `evaluate --output` names the
classes in its confusion matrix; eval.json keeps the key names of iou_from_confusion."""

import json
import os

import numpy as np
import pytest
from PIL import Image
from support.run_files import log_rows

from keras_seg import cli, visualize
from keras_seg.metrics import iou_from_confusion
from keras_seg.trainer import TrainConfig, train
from keras_seg.trainer.evaluation import EVALUATION_KEYS

TINY = {"model": "unet", "model_options": {"filters": 4, "depth": 2}, "synthetic_size": 32,
        "synthetic_train": 8, "synthetic_val": 4, "batch_size": 4, "augment": False,
        "lr": 3e-3, "verbose": 0}


def _eval_json(folder):
    with open(os.path.join(folder, "eval.json")) as f:
        return json.load(f)


@pytest.fixture
def drawn(monkeypatch):
    """The curves figures train draws: (number of rows, path), in order."""
    calls = []
    real = visualize.training_curves

    def recording(rows, path):
        calls.append((len(rows), path, [int(r["epoch"]) for r in rows]))
        return real(rows, path)

    monkeypatch.setattr(visualize, "training_curves", recording)
    return calls


def test_train_draws_curves_each_epoch_and_the_confusion_matrix(tmp_path, drawn):
    out = str(tmp_path / "run")
    result = train(TrainConfig(**TINY, epochs=2, output=out))
    curves = os.path.join(out, "curves.png")
    # one figure per committed epoch, from the rows log.csv holds at that point
    assert drawn == [(1, curves, [0]), (2, curves, [0, 1])]
    assert [int(r["epoch"]) for r in log_rows(out)] == [0, 1]
    with Image.open(curves) as im:
        assert im.size == (1000, 440)
    with Image.open(os.path.join(out, "confusion_matrix.png")) as im:
        assert im.size[0] >= 500 and im.size[1] >= 400
    assert not [n for n in os.listdir(out) if ".tmp" in n]
    # eval.json: the keys of evaluate and of iou_from_confusion
    evaluation = _eval_json(out)
    assert sorted(evaluation) == sorted(EVALUATION_KEYS)
    scores = iou_from_confusion(np.asarray(evaluation["confusion"]))
    for key, value in scores.items():
        if key == "per_class_iou":
            expected = [None if np.isnan(v) else pytest.approx(v) for v in value]
            assert evaluation[key] == expected
        else:
            assert evaluation[key] == pytest.approx(value)
    assert result["val_mean_iou"] == pytest.approx(evaluation["mean_iou"])
    assert "val_miou" not in result and "miou" not in result["evaluation"]


def test_a_resume_redraws_the_curves_with_every_epoch(tmp_path, drawn):
    out = str(tmp_path / "run")
    train(TrainConfig(**TINY, epochs=1, output=out))
    drawn.clear()
    train(TrainConfig(**TINY, epochs=2, output=out))
    curves = os.path.join(out, "curves.png")
    # the recovery rewrites log.csv (and the figure) from state.json, then epoch 2
    assert drawn == [(1, curves, [0]), (2, curves, [0, 1])]


def test_a_new_run_removes_the_old_pictures(tmp_path, monkeypatch, capsys):
    out = str(tmp_path / "run")
    train(TrainConfig(**TINY, epochs=1, output=out))

    def broken(*args, **kwargs):
        raise RuntimeError("no fonts")

    # a picture that cannot be drawn is one line and never stops the run
    monkeypatch.setattr(visualize, "training_curves", broken)
    monkeypatch.setattr(visualize, "save_confusion_matrix", broken)
    result = train(TrainConfig(**TINY, epochs=1, output=out, resume=False))
    text = capsys.readouterr().out
    assert f"{os.path.join(out, 'curves.png')} not drawn (RuntimeError: no fonts)" in text
    assert "confusion_matrix.png not drawn" in text
    assert 0.0 <= result["val_mean_iou"] <= 1.0
    # the new run's folder holds no picture of the old run
    assert not os.path.exists(os.path.join(out, "curves.png"))
    assert not os.path.exists(os.path.join(out, "confusion_matrix.png"))


def test_evaluate_output_draws_the_named_classes(tmp_path, monkeypatch, capsys):
    out = str(tmp_path / "run")
    train(TrainConfig(**TINY, epochs=1, output=out))
    figures = []
    real = visualize.confusion_figure

    def recording(*args, **kwargs):
        figures.append(real(*args, **kwargs))
        return figures[-1]

    monkeypatch.setattr(visualize, "confusion_figure", recording)
    # the names of the run's config.json (beside the model) reach the picture
    names = ["bg", "disc", "square", "triangle", "ring", "cross", "star"]
    with open(os.path.join(out, "config.json")) as f:
        config = json.load(f)
    config["class_names"] = names
    with open(os.path.join(out, "config.json"), "w") as f:
        json.dump(config, f)
    report = tmp_path / "eval"
    assert cli.main(["evaluate", os.path.join(out, "best.keras"), "--synthetic-size", "32",
                     "--synthetic-count", "3", "--output", str(report)]) == 0
    capsys.readouterr()
    (figure,) = figures
    ax = figure.axes[0]
    assert [t.get_text() for t in ax.get_xticklabels()] == names
    assert [t.get_text() for t in ax.get_yticklabels()] == names
    assert figure.texts[0].get_text() == "best.keras on synthetic [val], 3 images"
    evaluation = _eval_json(report)
    assert evaluation["class_names"] == names and sorted(evaluation) == sorted(EVALUATION_KEYS)
    assert sorted(os.listdir(report)) == ["confusion_matrix.png", "eval.json"]

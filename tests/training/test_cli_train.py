"""`keras-seg train` / `evaluate`: logs, checkpoints, resume after a kill, evaluation."""

import json
import os
import signal
import subprocess
import sys
import time

import numpy as np
import pytest
from support.run_files import log_rows

from keras_seg import cli
from keras_seg.data import SyntheticShapes, detect_data_format
from keras_seg.trainer import TrainConfig

TRAIN_ARGS = ["train", "--model", "unet", "--model-args", '{"filters": 4, "depth": 2}',
              "--data", "synthetic", "--synthetic-size", "48", "--synthetic-val", "8",
              "--batch-size", "4", "--lr", "3e-3", "--verbose", "2"]


def test_train_resumes_after_being_killed_mid_run(tmp_path):
    out = str(tmp_path / "run")
    argv = [sys.executable, "-m", "keras_seg", *TRAIN_ARGS, "--synthetic-train", "64",
            "--epochs", "3", "--output", out]
    proc = subprocess.Popen(argv, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    state = os.path.join(out, "state.json")
    deadline = time.time() + 400
    while time.time() < deadline and proc.poll() is None:
        if os.path.exists(state):
            with open(state) as f:
                if json.load(f)["epoch"] >= 1:
                    break
        time.sleep(0.02)
    proc.send_signal(signal.SIGKILL)
    first_output = proc.communicate()[0]
    assert proc.returncode == -signal.SIGKILL, f"run ended before the kill:\n{first_output}"
    with open(state) as f:
        done = json.load(f)["epoch"]
    assert 1 <= done < 3

    second = subprocess.run(argv, capture_output=True, text=True, timeout=600)
    assert second.returncode == 0, second.stdout + second.stderr
    assert f"Resuming from {os.path.join(out, 'last.keras')} (epoch {done} of 3" in second.stdout
    rows = log_rows(out)
    assert [int(r["epoch"]) for r in rows] == [0, 1, 2]
    for row in rows:
        assert 0.0 <= float(row["val_mean_iou"]) <= 1.0
    # the poly schedule continued from the restored step (it reaches 0 at the last step)
    assert float(rows[0]["lr"]) > float(rows[1]["lr"]) > float(rows[2]["lr"]) >= 0.0
    for name in ("best.keras", "last.keras", "config.json", "eval.json"):
        assert os.path.exists(os.path.join(out, name)), name
    with open(os.path.join(out, "eval.json")) as f:
        evaluation = json.load(f)
    assert evaluation["mean_iou"] == pytest.approx(max(float(r["val_mean_iou"]) for r in rows),
                                               abs=0.005)
    assert "mean IoU" in second.stdout


def test_evaluate_prints_table_and_writes_confusion_image(tmp_path, capsys):
    out = str(tmp_path / "run")
    assert cli.main([*TRAIN_ARGS, "--synthetic-train", "16", "--epochs", "1",
                     "--output", out]) == 0
    capsys.readouterr()
    report = str(tmp_path / "eval")
    assert cli.main(["evaluate", os.path.join(out, "best.keras"), "--data", "synthetic",
                     "--split", "test", "--synthetic-size", "48", "--synthetic-count", "6",
                     "--output", report]) == 0
    text = capsys.readouterr().out
    assert "mean IoU" in text and "pixel acc." in text
    with open(os.path.join(report, "eval.json")) as f:
        result = json.load(f)
    confusion = np.asarray(result["confusion"])
    test = SyntheticShapes(split="test", num_images=6, image_size=(48, 48), seed=0)
    labelled = sum(int((mask != test.ignore_index).sum()) for _, mask in test)
    assert confusion.shape == (test.num_classes, test.num_classes)
    assert confusion.sum() == labelled
    assert result["mean_iou"] == pytest.approx(np.nanmean(
        [v if v is not None else np.nan for v in result["per_class_iou"]]))
    assert os.path.getsize(os.path.join(report, "confusion_matrix.png")) > 0


def test_config_errors_are_clear():
    with pytest.raises(ValueError, match="Unknown model 'unett'"):
        TrainConfig(model="unett").validate()
    with pytest.raises(ValueError, match="schedule='step' is not one of"):
        TrainConfig(schedule="step").validate()
    with pytest.raises(FileNotFoundError, match="does not exist"):
        detect_data_format("/nonexistent/folder")


def test_synthetic_options_reach_every_split():
    shapes = ["disc", "ring", "cross", "square", "bar"]
    args = cli.build_parser().parse_args(
        ["train", "--synthetic-args", json.dumps({"shapes": shapes, "clutter": 0.5}),
         "--synthetic-size", "32"])
    assert args.synthetic_options == {"shapes": shapes, "clutter": 0.5}
    config = TrainConfig(synthetic_options=args.synthetic_options, synthetic_size=32,
                         synthetic_train=4, synthetic_val=2).validate()
    for split in ("train", "val", "test"):
        ds = config.dataset(split)
        assert ds.class_names == ["background", *shapes] and ds.clutter == 0.5
        assert ds.split == split and ds.image_size == (32, 32)
    evaluate_args = cli.build_parser().parse_args(
        ["evaluate", "m.keras", "--synthetic-args", '{"texture": 0.2}'])
    assert evaluate_args.synthetic_options == {"texture": 0.2}
    with pytest.raises(ValueError, match="synthetic_options may not set"):
        TrainConfig(synthetic_options={"seed": 3}).validate()
    with pytest.raises(SystemExit):
        cli.build_parser().parse_args(["train", "--synthetic-args", "[1, 2]"])

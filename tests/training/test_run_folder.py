"""The run folder tells the truth: a resume continues the schedule, refuses settings that
cannot change, and a kill at any point of an epoch leaves a folder the next run completes.

The kill tests run a real `keras-seg train` subprocess that kills itself with SIGKILL at a
chosen point (the test-only hook KERAS_SEG_TEST_KILL_AT of keras_seg.trainer.fit), then
resume in this process.
"""

import csv
import os
import signal
import subprocess
import sys
import zipfile

import keras
import numpy as np
import pytest
from support.run_files import log_rows, read_json

from keras_seg.trainer import TrainConfig, train
from keras_seg.trainer.fit import TEST_KILL_ENV

TINY = {"model": "unet", "model_options": {"filters": 4, "depth": 2}, "synthetic_size": 32,
        "synthetic_train": 8, "synthetic_val": 4, "batch_size": 4, "augment": False,
        "lr": 3e-3, "verbose": 0}
STEPS = 2  # 8 training images in batches of 4
TINY_FLAGS = ["--model", "unet", "--model-args", '{"filters": 4, "depth": 2}',
              "--synthetic-size", "32", "--synthetic-train", "8", "--synthetic-val", "4",
              "--batch-size", "4", "--no-augment", "--lr", "3e-3", "--verbose", "0"]


def _weights(path):
    return [np.asarray(w) for w in keras.saving.load_model(path).get_weights()]


def _temporary_files(folder):
    return sorted(name for name in os.listdir(folder) if ".tmp" in name)


def _readable(path):
    try:
        with zipfile.ZipFile(path) as archive:
            return archive.testzip() is None
    except (zipfile.BadZipFile, OSError, EOFError):
        return False


def _assert_consistent(folder, epochs):
    """Completed epochs, optimizer step, log rows and best.keras agree."""
    state = read_json(folder, "state.json")
    assert state["epoch"] == epochs
    assert state["iterations"] == epochs * STEPS
    last = keras.saving.load_model(os.path.join(folder, "last.keras"))
    assert int(keras.ops.convert_to_numpy(last.optimizer.iterations)) == epochs * STEPS
    rows = log_rows(folder)
    assert [int(row["epoch"]) for row in rows] == list(range(epochs))
    assert all(float(row["lr"]) > 0 for row in rows)
    scores = [float(row["val_mean_iou"]) for row in rows]
    assert state["best_val_mean_iou"] == pytest.approx(max(scores))
    best = os.path.join(folder, "best.keras")
    assert _readable(best)
    keras.saving.load_model(best)
    # eval.json scores best.keras: the best validation mean IoU of the log
    assert read_json(folder, "eval.json")["mean_iou"] == pytest.approx(max(scores), abs=0.005)
    assert _temporary_files(folder) == []


def test_a_resume_with_more_epochs_extends_the_schedule(tmp_path, capsys):
    out = str(tmp_path / "run")
    train(TrainConfig(**TINY, epochs=2, output=out))
    before = _weights(os.path.join(out, "last.keras"))
    capsys.readouterr()
    result = train(TrainConfig(**{**TINY, "lr": 2e-3}, epochs=4, output=out))
    text = capsys.readouterr().out
    assert result["resumed_from"] == 2
    rows = log_rows(out)
    assert [int(row["epoch"]) for row in rows] == [0, 1, 2, 3]
    # the new epochs run on the schedule of a fresh 8-step run with the new lr: never at 0
    new_lrs = [float(row["lr"]) for row in rows[2:]]
    assert min(new_lrs) > 0
    assert new_lrs == pytest.approx([2e-3 * (1 - 4 / 8) ** 0.9, 2e-3 * (1 - 6 / 8) ** 0.9],
                                    rel=1e-4)
    after = _weights(os.path.join(out, "last.keras"))
    assert any(not np.array_equal(a, b) for a, b in zip(before, after, strict=True))
    assert "(epoch 2 of 4 done, step 4); learning rate: poly from 0.002 over 8 steps" in text
    assert "epochs (--epochs) 2 -> 4" in text and "lr (--lr) 0.003 -> 0.002" in text
    record = read_json(out, "config.json")
    assert record["epochs"] == 4 and record["lr"] == 2e-3
    assert record["resumes"] == [{"epoch": 2, "step": 4, "total_steps": 8,
                                  "changed": {"epochs": [2, 4], "lr": [3e-3, 2e-3]}}]
    _assert_consistent(out, 4)
    with pytest.raises(ValueError, match=f"The run in {out} has already done 4 epochs; "
                       "epochs=3 cannot undo them"):
        train(TrainConfig(**TINY, epochs=3, output=out))


def test_a_resume_refuses_settings_that_cannot_change(tmp_path):
    out = str(tmp_path / "run")
    train(TrainConfig(**TINY, epochs=1, output=out))
    with open(os.path.join(out, "config.json"), "rb") as f:
        stored = f.read()
    with open(os.path.join(out, "state.json"), "rb") as f:
        state = f.read()
    changed = {**TINY, "batch_size": 2, "model_options": {"filters": 8, "depth": 2},
               "loss": "dice", "synthetic_options": {"shapes": ["disc", "square"]},
               "lr": 1e-3}
    with pytest.raises(ValueError) as err:
        train(TrainConfig(**changed, epochs=2, output=out))
    message = str(err.value)
    assert "\n" not in message
    assert message.startswith(f"Cannot resume the run in {out} with changed settings: ")
    for part in ("model_options (--model-args) {'depth': 2, 'filters': 4} -> "
                 "{'depth': 2, 'filters': 8}",
                 "batch_size (--batch-size) 4 -> 2", "loss (--loss) 'ce' -> 'dice'",
                 "synthetic_options (--synthetic-args) {} -> {'shapes': ['disc', 'square']}",
                 "num_classes (--num-classes, or as read from the data) 7 -> 3",
                 "class_names (--class-names, or as read from the data)",
                 "--no-resume", "another --output"):
        assert part in message, part
    assert "lr (--lr)" not in message and "epochs (--epochs)" not in message
    # nothing was written: config.json still holds what the run used
    with open(os.path.join(out, "config.json"), "rb") as f:
        assert f.read() == stored
    with open(os.path.join(out, "state.json"), "rb") as f:
        assert f.read() == state
    # the same values resume
    assert train(TrainConfig(**TINY, epochs=2, output=out))["resumed_from"] == 1


def test_an_unreadable_best_keras_is_reported_and_replaced_on_resume(tmp_path, capsys):
    out = str(tmp_path / "run")
    train(TrainConfig(**TINY, epochs=1, output=out))
    best = os.path.join(out, "best.keras")
    with open(best, "r+b") as f:
        f.truncate(os.path.getsize(best) // 2)
    capsys.readouterr()
    train(TrainConfig(**TINY, epochs=2, output=out))
    lines = [line for line in capsys.readouterr().out.splitlines() if "best.keras" in line]
    assert len(lines) == 1
    assert lines[0].startswith(f"{best} is unreadable")
    assert "replaced by last.keras (epoch 1, validation mean IoU" in lines[0]
    _assert_consistent(out, 2)


def test_leftover_temporary_files_and_extra_log_rows_are_removed_on_resume(tmp_path, capsys):
    out = str(tmp_path / "run")
    train(TrainConfig(**TINY, epochs=1, output=out))
    # a kill after an epoch's row was written but before its checkpoint left this row
    # (the write order of keras-seg 0.x), and kills during writes left temporary files
    rows = log_rows(out)
    with open(os.path.join(out, "log.csv"), "a", newline="") as f:
        csv.DictWriter(f, fieldnames=list(rows[0])).writerow({**rows[0], "epoch": "1",
                                                              "val_mean_iou": "0.123456"})
    leftovers = ["last.tmp.keras", ".best.epoch0002.tmp.keras", "state.json.tmp",
                 "eval.json.tmp"]
    for name in leftovers:
        with open(os.path.join(out, name), "wb") as f:
            f.write(b"PK\x03\x04 half a file")
    capsys.readouterr()
    train(TrainConfig(**TINY, epochs=2, output=out))
    assert f"Removed 4 temporary file(s) an interrupted write left in {out}" in \
        capsys.readouterr().out
    rows = log_rows(out)
    assert [row["epoch"] for row in rows] == ["0", "1"]
    assert rows[1]["val_mean_iou"] != "0.123456"
    _assert_consistent(out, 2)


# point of the kill, epochs the killed run completed (what the resume continues from),
# temporary file the kill leaves half-written
KILLS = [
    ("batch@2", 1, None),
    ("best_write@1", 0, ".best.epoch0001.tmp.keras"),
    ("last_write@2", 1, ".last.epoch0002.tmp.keras"),
    ("state_write@2", 1, "state.json.tmp"),
    ("commit@2", 2, None),
]


@pytest.mark.parametrize("point, completed, partial", KILLS, ids=[k[0] for k in KILLS])
def test_a_run_killed_at_any_point_resumes_consistently(tmp_path, capsys, point, completed,
                                                        partial):
    out = str(tmp_path / "run")
    argv = [sys.executable, "-m", "keras_seg", "train", *TINY_FLAGS, "--epochs", "2",
            "--output", out]
    env = {**os.environ, TEST_KILL_ENV: point}
    killed = subprocess.run(argv, env=env, capture_output=True, text=True, timeout=300)
    assert killed.returncode == -signal.SIGKILL, killed.stdout + killed.stderr
    # what the kill left: never a half-written checkpoint under its final name
    for name in ("best.keras", "last.keras"):
        path = os.path.join(out, name)
        assert not os.path.exists(path) or _readable(path), name
    if partial is not None:
        assert partial in _temporary_files(out)
        if partial.endswith(".keras"):
            assert not _readable(os.path.join(out, partial))
    if completed:
        assert read_json(out, "state.json")["epoch"] == completed
    else:
        assert not os.path.exists(os.path.join(out, "state.json"))

    capsys.readouterr()
    result = train(TrainConfig(**TINY, epochs=2, output=out))
    text = capsys.readouterr().out
    assert result["resumed_from"] == completed
    if partial is not None:
        assert "temporary file(s) an interrupted write left" in text and partial in text
    _assert_consistent(out, 2)

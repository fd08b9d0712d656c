"""Every `keras-seg` sub-command reports bad input the same way: one line on stderr,
``keras-seg <command>: error: <message>``, exit status 2, no traceback (unless --debug)."""

import os
import re
import subprocess
import sys

import keras
import pytest

from keras_seg import cli
from keras_seg.applications import UNet


def _bad(capsys, argv, command, *needles):
    """Run ``keras-seg argv``: exit status 2 and one error line naming ``needles``."""
    try:
        status = cli.main(argv)
    except SystemExit as exit_:  # argparse's errors exit
        status = exit_.code
    captured = capsys.readouterr()
    lines = captured.err.splitlines()
    assert status == 2, captured.err
    assert len(lines) == 1, captured.err
    assert lines[0].startswith(f"keras-seg {command}: error: "), lines[0]
    assert "Traceback" not in captured.err + captured.out
    for needle in needles:
        assert needle in lines[0], lines[0]
    return lines[0]


@pytest.fixture(scope="module")
def files(tmp_path_factory):
    folder = tmp_path_factory.mktemp("models")
    unet = folder / "unet.keras"
    UNet(2, filters=4, depth=2).save(unet)
    inputs = keras.Input((8, 8, 3))
    classifier = folder / "classifier.keras"
    keras.Model(inputs, keras.layers.Dense(2)(keras.layers.Flatten()(inputs))).save(classifier)
    sequential = folder / "sequential.keras"
    keras.Sequential([keras.Input((4,)), keras.layers.Dense(2)]).save(sequential)
    return {"unet": str(unet), "classifier": str(classifier), "sequential": str(sequential)}


def test_models(capsys):
    _bad(capsys, ["models", "--bogus"], "models", "unrecognized arguments: --bogus",
         "see keras-seg models --help")


def test_demo(tmp_path, capsys):
    _bad(capsys, ["demo", "--epochs", "0", "--output", str(tmp_path)], "demo",
         "epochs must be a positive int, got 0")
    assert not (tmp_path / "run").exists()


def test_train_bad_config_is_one_line_not_a_traceback(tmp_path, capsys):
    _bad(capsys, ["train", "--model", "unett", "--output", str(tmp_path / "run")], "train",
         "Unknown model 'unett'")


def test_train_bad_flag_value_is_one_line_without_the_usage(capsys):
    _bad(capsys, ["train", "--epochs", "many"], "train", "argument --epochs",
         "invalid int value: 'many'")


def test_evaluate_missing_model(tmp_path, capsys):
    _bad(capsys, ["evaluate", str(tmp_path / "nope.keras")], "evaluate", "nope.keras",
         "does not exist")


def test_evaluate_refuses_a_model_that_is_not_a_segmentation_model(files, capsys):
    _bad(capsys, ["evaluate", files["classifier"], "--data", "synthetic"], "evaluate",
         "classifier.keras", "is not a segmentation model", "(None, 2)")


def test_predict(tmp_path, capsys):
    _bad(capsys, ["predict", str(tmp_path / "nope.keras"), "a.png", "--output",
                  str(tmp_path / "out")], "predict", "nope.keras", "does not exist")


def test_export_refuses_what_predict_refuses(files, tmp_path, capsys):
    for name, shape in (("classifier", "(None, 2)"), ("sequential", "(None, 4)")):
        _bad(capsys, ["export", files[name], "--output", str(tmp_path / f"{name}.onnx")],
             "export", f"{name}.keras", "is not a segmentation model", shape)
    garbage = tmp_path / "garbage.keras"
    garbage.write_text("not a model")
    _bad(capsys, ["export", str(garbage), "--output", str(tmp_path / "g.onnx")], "export",
         "garbage.keras", "Could not load")
    assert sorted(p.name for p in tmp_path.iterdir()) == ["garbage.keras"]


def test_export_to_a_path_it_cannot_write_fails_before_exporting(files, tmp_path, capsys,
                                                               monkeypatch):
    from keras_seg import export

    def no_export(*args, **kwargs):
        raise AssertionError("the export started before the output path was checked")

    monkeypatch.setattr(export, "_write_artifact", no_export)
    a_file = tmp_path / "notes.txt"
    a_file.write_text("a file, not a folder")
    for output in (a_file / "m.onnx", a_file / "deeper" / "m.onnx"):
        _bad(capsys, ["export", files["unet"], "--output", str(output)], "export",
             str(output), "is a file", "Choose another output path")
    if os.geteuid() != 0:  # root writes into read-only folders
        locked = tmp_path / "locked"
        locked.mkdir(mode=0o500)
        _bad(capsys, ["export", files["unet"], "--output", str(locked / "m.onnx")], "export",
             "not writable")
        assert os.listdir(locked) == []


def test_recipe(capsys):
    _bad(capsys, ["recipe", "no_such_recipe"], "recipe", "No recipe named 'no_such_recipe'")


def test_debug_flag_and_variable_show_the_traceback(tmp_path, monkeypatch, capsys):
    argv = ["train", "--model", "unett", "--output", str(tmp_path / "run")]
    with pytest.raises(ValueError, match="Unknown model 'unett'"):
        cli.main(["--debug", *argv])
    monkeypatch.setenv("KERAS_SEG_DEBUG", "1")
    with pytest.raises(ValueError, match="Unknown model 'unett'"):
        cli.main(argv)
    monkeypatch.setenv("KERAS_SEG_DEBUG", "0")
    assert cli.main(argv) == 2
    assert capsys.readouterr().err.startswith("keras-seg train: error: Unknown model")


def test_bugs_keep_their_traceback(monkeypatch):
    # only user-input errors become one line; anything else is a bug and propagates
    from keras_seg import applications

    def broken():
        raise TypeError("a bug")

    monkeypatch.setattr(applications, "available", broken)
    with pytest.raises(TypeError, match="a bug"):
        cli.main(["models"])


_TF_LOG = re.compile(r"^([IWEF]\d{4} |WARNING: All log messages before absl|To enable the "
                     r"following instructions)")


def test_console_entry_point_reports_one_line(tmp_path):
    proc = subprocess.run(
        [sys.executable, "-m", "keras_seg", "train", "--model", "unett", "--output",
         str(tmp_path / "run")], capture_output=True, text=True, timeout=600)
    assert proc.returncode == 2, proc.stderr
    lines = [line for line in proc.stderr.splitlines() if not _TF_LOG.match(line)]
    assert len(lines) == 1 and lines[0].startswith("keras-seg train: error: Unknown model"), \
        proc.stderr
    debug = subprocess.run(
        [sys.executable, "-m", "keras_seg", "--debug", "train", "--model", "unett"],
        capture_output=True, text=True, timeout=600)
    assert debug.returncode == 1 and "Traceback" in debug.stderr
    assert "ValueError: Unknown model 'unett'" in debug.stderr


def test_tensorflow_log_level_is_set_unless_given_or_debugging(monkeypatch, capsys):
    monkeypatch.delenv("TF_CPP_MIN_LOG_LEVEL", raising=False)
    assert cli.main(["--debug", "models"]) == 0
    assert "TF_CPP_MIN_LOG_LEVEL" not in os.environ
    assert cli.main(["models"]) == 0
    assert os.environ["TF_CPP_MIN_LOG_LEVEL"] == "2"
    monkeypatch.setenv("TF_CPP_MIN_LOG_LEVEL", "0")
    assert cli.main(["models"]) == 0
    assert os.environ["TF_CPP_MIN_LOG_LEVEL"] == "0"

"""`keras-seg train` / `demo` / `recipe`: Keras' progress bar only on a terminal.

Redirected output (a log file, CI) gets one line per epoch (``verbose=2``) unless
``--verbose`` is given; the progress bar's control codes would fill the log.
"""

import sys

import pytest

from keras_seg import cli, trainer


class _Stop(Exception):
    """Raised by the stand-in for trainer.train once it has seen the config."""


@pytest.fixture
def seen(monkeypatch):
    configs = []

    def fake_train(config):
        configs.append(config)
        raise _Stop

    monkeypatch.setattr(trainer, "train", fake_train)
    return configs


def _verbose(argv, seen):
    with pytest.raises(_Stop):
        cli.main(argv)
    return seen.pop().verbose


@pytest.mark.parametrize("command", [
    ["train", "--data", "synthetic"],
    ["demo"],
    ["recipe", "unet", "--data", "synthetic"],
])
def test_line_per_epoch_when_redirected_unless_asked(command, tmp_path, seen, monkeypatch):
    argv = [*command, "--output", str(tmp_path / "run")]
    monkeypatch.setattr(sys.stdout, "isatty", lambda: False)
    assert _verbose(argv, seen) == 2
    assert _verbose([*argv, "--verbose", "1"], seen) == 1
    assert _verbose([*argv, "--verbose", "0"], seen) == 0
    monkeypatch.setattr(sys.stdout, "isatty", lambda: True)
    assert _verbose(argv, seen) == 1  # the progress bar on a terminal (each one's default)

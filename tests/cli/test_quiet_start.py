"""The keras-seg command keeps TensorFlow's start-up lines off stderr (keras_seg._startup)."""

import os
import subprocess
import sys

import keras
import pytest
from support.paths import REPO_ROOT

pytestmark = pytest.mark.skipif(
    keras.backend.backend() != "tensorflow",
    reason="TensorFlow's start-up lines: checked once, in the TensorFlow pass")


def _stderr(*args):
    env = {k: v for k, v in os.environ.items()
           if k not in ("TF_CPP_MIN_LOG_LEVEL", "KERAS_SEG_DEBUG")}
    env["KERAS_BACKEND"] = "tensorflow"
    done = subprocess.run([sys.executable, "-m", "keras_seg", *args, "models"], cwd=REPO_ROOT,
                          env=env, capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr
    assert "deeplabv3plus" in done.stdout
    return done.stderr


def test_command_line_start_is_quiet_unless_debugging():
    loud = _stderr("--debug")
    tf_lines = [line for line in loud.splitlines()
                if "oneDNN" in line or "cuda" in line.lower() or "absl" in line]
    if not tf_lines:
        pytest.skip("this TensorFlow build prints no start-up lines here")
    assert _stderr() == ""

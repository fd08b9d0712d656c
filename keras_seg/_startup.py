"""Quiet start of the ``keras-seg`` command line on the TensorFlow backend.

``import keras_seg`` imports Keras, which imports TensorFlow on that backend, before
:func:`keras_seg.cli.main` runs. TensorFlow 2.21 then writes start-up lines (oneDNN,
CUDA probing, CPU instructions) to the process's stderr: the CPU-instruction lines obey
``TF_CPP_MIN_LOG_LEVEL``, the others are written before its logging starts and obey
nothing. :func:`quiet_cli_start` therefore runs first in ``keras_seg/__init__.py`` and, only
in the command-line process (the ``keras-seg`` script or ``python -m keras_seg``) and
unless ``--debug`` / ``KERAS_SEG_DEBUG`` asks for everything, sets
``TF_CPP_MIN_LOG_LEVEL=2`` (if unset) and imports TensorFlow with the stderr file
descriptor pointed at ``/dev/null``. Python-level errors still surface: an import that
fails raises again when Keras imports TensorFlow, with stderr restored. Library users
(``import keras_seg`` in their own program) are never affected.
"""

import json
import os
import sys

_DEBUG_ENV = "KERAS_SEG_DEBUG"


def _is_cli_process():
    argv = list(getattr(sys, "orig_argv", None) or sys.argv)
    if sys.argv and os.path.basename(sys.argv[0]) in ("keras-seg", "keras-seg.exe"):
        return True
    return "-m" in argv and argv[argv.index("-m") + 1:argv.index("-m") + 2] == ["keras_seg"]


def _debugging():
    env = os.environ.get(_DEBUG_ENV, "").strip().lower() in ("1", "true", "yes", "on")
    return env or "--debug" in sys.argv[1:]


def _keras_backend():
    if os.environ.get("KERAS_BACKEND"):
        return os.environ["KERAS_BACKEND"]
    home = os.environ.get("KERAS_HOME") or os.path.join(os.path.expanduser("~"), ".keras")
    try:
        with open(os.path.join(home, "keras.json")) as f:
            return json.load(f).get("backend", "tensorflow")
    except (OSError, ValueError, AttributeError):
        return "tensorflow"


def quiet_cli_start():
    """Silence TensorFlow's start-up lines in the command-line process (see the module doc).

    Does nothing outside the ``keras-seg`` command, with ``--debug`` /
    ``KERAS_SEG_DEBUG=1``, or on the JAX and PyTorch backends (there
    :func:`keras_seg.cli.main` sets ``TF_CPP_MIN_LOG_LEVEL`` before anything imports
    TensorFlow).
    """
    if not _is_cli_process() or _debugging():
        return
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
    if _keras_backend() != "tensorflow" or "tensorflow" in sys.modules:
        return
    sys.stderr.flush()
    saved = os.dup(2)
    devnull = os.open(os.devnull, os.O_WRONLY)
    try:
        os.dup2(devnull, 2)
        try:
            import tensorflow  # noqa: F401
        except ImportError:
            pass  # Keras imports it again and reports the error with stderr restored
    finally:
        os.dup2(saved, 2)
        os.close(saved)
        os.close(devnull)

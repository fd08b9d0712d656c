"""The ``keras-seg`` command line: ``keras-seg --help``.

Errors. Every sub-command reports bad input the same way, here in :func:`main`: one
line ``keras-seg <command>: error: <message>`` on stderr and exit status 2 (the status
argparse gives bad arguments, whose errors are one line here too). Bad input is an
exception of :func:`user_errors`:

- ``ValueError``: a bad value (flag, configuration, recipe, image, a model that is not a
  segmentation model); keras-seg raises it with the fix in its message;
- ``FileNotFoundError``, ``PermissionError``, ``IsADirectoryError``,
  ``NotADirectoryError``, ``FileExistsError``: a path that is missing, not readable or
  writable, or of the wrong kind;
- keras-seg's own :class:`keras_seg.export.MissingDependencyError` (a package the
  command needs is not installed; the message names the ``pip install``) and
  :class:`keras_seg.export.ParityError` (an exported artifact disagrees with Keras: it
  is not written).

Anything else (``TypeError``, ``KeyError``, ``RuntimeError``, ...) is a bug or an
unexpected failure: it keeps its full traceback. ``keras-seg --debug COMMAND ...`` or
``KERAS_SEG_DEBUG=1`` shows the traceback of bad input too.

TensorFlow's start-up log lines: on the JAX and PyTorch backends :func:`main` sets
``TF_CPP_MIN_LOG_LEVEL=2`` (unless set, or ``--debug``) before anything imports TensorFlow
(TensorBoard logging, the export worker). On the TensorFlow backend ``import keras_seg``
imports TensorFlow before this module runs: :mod:`keras_seg._startup` keeps its start-up
lines off stderr there, in the command-line process only.
"""

import argparse
import importlib
import os
import sys

#: exit status for bad input, as argparse uses for bad arguments
EXIT_BAD_INPUT = 2

#: the environment variable that turns on ``--debug``
DEBUG_ENV = "KERAS_SEG_DEBUG"

# Sub-commands living in keras_seg/commands/<name>.py; each module defines
# ``add_parser(subparsers)`` which registers its parser and sets ``func``.
COMMAND_MODULES = ["demo", "train", "evaluate", "predict", "export", "recipe", "convert"]


def user_errors():
    """The exception types :func:`main` reports as bad input (see the module docstring).

    Returns:
        A tuple of exception classes.
    """
    from keras_seg.export import MissingDependencyError, ParityError

    return (ValueError, FileNotFoundError, PermissionError, IsADirectoryError,
            NotADirectoryError, FileExistsError, MissingDependencyError, ParityError)


def _cmd_models(args):
    from keras_seg import applications, backbones

    print("Architectures (keras_seg.applications):")
    for name in applications.available():
        builder = applications.MODELS[name]
        doc = (builder.__doc__ or "").strip().splitlines()
        print(f"  {name:<16} {builder.__name__:<16} {doc[0] if doc else ''}")
    print("Backbones (keras_seg.backbones.get):")
    for name in backbones.available():
        print(f"  {name}")
    from keras_seg.convert import TORCH_ARCHITECTURES

    print("PyTorch checkpoints (keras-seg convert ARCH CHECKPOINT, keras_seg.convert):")
    for name in sorted(TORCH_ARCHITECTURES):
        print(f"  {name}")
    return 0


class _Parser(argparse.ArgumentParser):
    """An ``ArgumentParser`` whose errors are one line, like every other bad input.

    argparse prints the whole usage (dozens of lines for ``train``) before the error;
    this prints ``PROG: error: MESSAGE (see PROG --help)`` only, exit status 2.
    """

    def error(self, message):
        """Report a bad command line and exit with status 2.

        Args:
            message: argparse's description of what is wrong.
        """
        self.exit(EXIT_BAD_INPUT, f"{self.prog}: error: {message} (see {self.prog} --help)\n")


def build_parser():
    """The ``keras-seg`` argument parser with every sub-command.

    Returns:
        An ``argparse.ArgumentParser``.
    """
    parser = _Parser(
        prog="keras-seg",
        description="Semantic segmentation models for Keras 3 (TensorFlow, JAX, PyTorch). "
        "Set KERAS_BACKEND to choose the backend.",
    )
    from keras_seg import __version__

    parser.add_argument("--version", action="version", version=f"keras-seg {__version__}")
    parser.add_argument("--debug", action="store_true",
                        help=f"show full tracebacks for bad input (also {DEBUG_ENV}=1) and "
                        "TensorFlow's log lines")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")
    parser.subcommands = sub.choices  # name -> parser, for errors in a sub-command's name
    p = sub.add_parser("models", help="list the architectures and backbones")
    p.set_defaults(func=_cmd_models)
    for name in COMMAND_MODULES:
        importlib.import_module(f"keras_seg.commands.{name}").add_parser(sub)
    return parser


def debug_enabled(argv=None):
    """Whether full tracebacks are wanted: ``--debug`` before the command, or
    ``KERAS_SEG_DEBUG`` set to ``1`` / ``true`` / ``yes`` / ``on``.

    Args:
        argv: the command-line arguments (None: ``sys.argv[1:]``).

    Returns:
        A bool.
    """
    argv = sys.argv[1:] if argv is None else argv
    options = []
    for arg in argv:  # top-level options come before the sub-command
        if not arg.startswith("-"):
            break
        options.append(arg)
    env = os.environ.get(DEBUG_ENV, "").strip().lower() in ("1", "true", "yes", "on")
    return env or "--debug" in options


def quiet_tensorflow(debug=False):
    """Set ``TF_CPP_MIN_LOG_LEVEL=2`` unless it is set already or ``debug``.

    Effective for a TensorFlow imported afterwards (TensorFlow reads the variable when
    it is first imported).

    Args:
        debug: leave TensorFlow's logging as it is.
    """
    if not debug:
        os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")


def _one_line(err):
    """The message of ``err`` on one line (its name when it has none)."""
    text = " ".join(line.strip() for line in str(err).splitlines() if line.strip())
    return text or type(err).__name__


def main(argv=None):
    """Run ``keras-seg`` with ``argv``; return the exit status.

    Args:
        argv: the arguments after ``keras-seg`` (None: ``sys.argv[1:]``).

    Returns:
        0 on success; :data:`EXIT_BAD_INPUT` (2) after reporting bad input (an exception
        of :func:`user_errors`) as one line on stderr, unless debugging (``--debug`` /
        ``KERAS_SEG_DEBUG=1``), which lets the exception propagate with its traceback.
        A bad command line exits with status 2 through argparse (``SystemExit``).
    """
    argv = sys.argv[1:] if argv is None else list(argv)
    debug = debug_enabled(argv)
    quiet_tensorflow(debug)
    parser = build_parser()
    args, unknown = parser.parse_known_args(argv)
    if unknown:  # reported by the sub-command's parser: "keras-seg train: error: ..."
        parser.subcommands.get(args.command, parser).error(
            f"unrecognized arguments: {' '.join(unknown)}")
    if not getattr(args, "command", None):
        parser.print_help()
        return 0
    if debug:
        return args.func(args)
    try:
        return args.func(args)
    except user_errors() as err:
        print(f"keras-seg {args.command}: error: {_one_line(err)}", file=sys.stderr)
        return EXIT_BAD_INPUT


if __name__ == "__main__":
    sys.exit(main())

"""The TensorBoard callback says exactly which package is missing."""

import sys

import pytest

from keras_seg.trainer import fit


@pytest.mark.parametrize("missing", [("tensorboard",), ("tensorflow", "tensorboard")])
def test_skipped_tensorboard_names_what_is_missing(missing, tmp_path, monkeypatch, capsys):
    for name in missing:
        monkeypatch.setitem(sys.modules, name, None)  # makes `import name` fail
    assert fit._tensorboard_callback(str(tmp_path)) is None
    out = capsys.readouterr().out
    said = out.split("(")[0]
    assert said.startswith("TensorBoard logs skipped:")
    assert said.split(":")[1].strip() == " and ".join(missing) + (
        " is not installed" if len(missing) == 1 else " are not installed")
    assert f"pip install {' '.join(missing)}" in out

"""The README's Python snippets run as written (with training cut to a few steps)."""

import os
import re

import keras
import numpy as np
import pytest

README = os.path.join(os.path.dirname(os.path.dirname(os.path.dirname(
    os.path.abspath(__file__)))), "README.md")


def _python_snippets():
    """``(first line number, code)`` of every ```python block of the README."""
    with open(README, encoding="utf-8") as f:
        text = f.read()
    return [(text[:m.start()].count("\n") + 2, m.group(1))
            for m in re.finditer(r"^```python\n(.*?)^```$", text, flags=re.M | re.S)]


SNIPPETS = _python_snippets()


def test_readme_has_the_use_snippet():
    assert SNIPPETS, "README.md has no ```python block"
    use = [code for _, code in SNIPPETS if "inference.predict(model, image)" in code]
    assert len(use) == 1
    # `image` is defined before it is used
    code = use[0]
    assert re.search(r"^image\b.*=", code, flags=re.M).start() < code.index(
        "predict(model, image)")


@pytest.mark.parametrize("line, code", SNIPPETS, ids=[f"line{line}" for line, _ in SNIPPETS])
def test_readme_snippet_runs(line, code, tmp_path, monkeypatch):
    if "format=\"onnx\"" in code:
        pytest.importorskip("tf2onnx", reason="the snippet exports to ONNX (keras-seg[export])")
        pytest.importorskip("onnxruntime", reason="the export's parity check needs it")
    fits = []
    real_fit = keras.Model.fit

    def short_fit(self, *args, **kwargs):
        # the snippet's training, cut to 2 steps of 1 epoch: the test checks that the code
        # runs, not what it learns
        kwargs.update(epochs=1, steps_per_epoch=2, verbose=0)
        fits.append(kwargs)
        return real_fit(self, *args, **kwargs)

    monkeypatch.setattr(keras.Model, "fit", short_fit)
    monkeypatch.chdir(tmp_path)
    namespace = {"__name__": "readme_snippet"}
    exec(compile(code, f"README.md, snippet at line {line}", "exec"), namespace)

    if "model.fit(" in code:
        assert fits, "the snippet's model.fit was not called"
    if "image" in namespace and "classes" in namespace:
        image, classes = namespace["image"], namespace["classes"]
        assert classes.shape == np.asarray(image).shape[:2]
        assert classes.dtype == np.int32
    for name in re.findall(r"\"([\w.]+\.(?:png|onnx))\"", code):
        assert (tmp_path / name).is_file() and (tmp_path / name).stat().st_size > 0, name

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
    if "from_torch(" in code and keras.backend.backend() != "tensorflow":
        pytest.skip("the pretrained example runs in the TensorFlow pass: its full-size ONNX "
                    "export goes through TensorFlow from every backend, and the conversion "
                    "itself is tested on every backend in tests/convert")
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
    downloads = _no_downloads(code, tmp_path, monkeypatch)
    namespace = {"__name__": "readme_snippet"}
    exec(compile(code, f"README.md, snippet at line {line}", "exec"), namespace)

    if "model.fit(" in code:
        assert fits, "the snippet's model.fit was not called"
    assert not downloads or all(downloads.values()), f"not fetched: {downloads}"
    if "image" in namespace and "classes" in namespace:
        image, classes = namespace["image"], namespace["classes"]
        assert classes.shape == np.asarray(image).shape[:2]
        assert classes.dtype == np.int32
    for name in re.findall(r"\"([\w.]+\.(?:png|onnx))\"", code):
        assert (tmp_path / name).is_file() and (tmp_path / name).stat().st_size > 0, name


def _no_downloads(code, tmp_path, monkeypatch):
    """Serve the checkpoints a snippet names to ``keras_seg.convert.from_torch`` from
    files made here (random weights of the same architecture), through the same
    ``keras.utils.get_file`` call, so that nothing is downloaded. Returns ``{URL: fetched}``.
    """
    calls = re.findall(r'from_torch\("([^"]+)", "([^"]+)"', code)
    if not calls:
        return {}
    from support.torch_parity import save_state, torch_original

    from keras_seg import convert

    served = {}
    for arch, name in calls:
        entry = convert.get(arch)
        url = entry.checkpoints[name]
        # torchvision's published segmentation checkpoints: 21 classes and the aux head
        segmentation = arch.startswith("torchvision/") and "_" in arch
        options = {"num_classes": 21, "aux": True} if segmentation else {}
        path = save_state(torch_original(arch, **options), tmp_path / url.rsplit("/", 1)[-1])
        served[url] = path
    fetched = {url: False for url in served}

    def get_file(fname, origin, cache_subdir):
        assert origin in served, f"the snippet downloads {origin}"
        fetched[origin] = True
        return served[origin]

    monkeypatch.setattr(keras.utils, "get_file", get_file)
    return fetched


def test_readme_lists_every_convertible_checkpoint():
    from keras_seg import convert

    with open(README, encoding="utf-8") as f:
        text = f.read()
    section = text.split("## Pretrained PyTorch checkpoints", 1)[1].split("\n## ", 1)[0]
    for name in convert.TORCH_ARCHITECTURES:
        assert f"`{name}`" in section, f"{name} is not in the README's table"

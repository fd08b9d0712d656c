"""What the README and the builders' docstrings say about inputs and loading is true."""

import os
import re
import subprocess
import sys

import keras
import numpy as np

import keras_seg
from keras_seg import applications, inference

README = os.path.join(os.path.dirname(__file__), "..", "..", "README.md")
SCALE_SENTENCE = ("Images are float32 in [0, 1] (uint8 divided by 255), as keras-seg's training "
                  "pipeline and :func:`keras_seg.inference.predict` feed them; the model does not "
                  "rescale its input.")


def _flat(text):
    return re.sub(r"\s+", " ", text)


def _readme():
    with open(README) as f:
        return _flat(f.read())


def test_every_builder_documents_the_input_scale():
    missing = [name for name, builder in applications.MODELS.items()
               if SCALE_SENTENCE not in _flat(builder.__doc__ or "")]
    assert not missing, f"builders whose docstring lacks the input-scale sentence: {missing}"


def test_the_documented_scale_is_what_predict_feeds_the_model():
    # uint8 in, divided by 255: the same logits as the float image in [0, 1]
    image = np.random.default_rng(0).integers(0, 256, (19, 23, 3), dtype=np.uint8)
    model = applications.UNet(2, filters=4, depth=2)
    logits = inference.predict(model, image, output="logits")
    expected = keras.ops.convert_to_numpy(model(image[None].astype("float32") / 255.0))[0]
    np.testing.assert_allclose(logits, expected, rtol=1e-5, atol=1e-5)
    readme = _readme()
    assert "**Inputs.** Models take float32 images in **[0, 1]**" in readme
    assert "divide uint8 images by 255" in readme


def test_readme_says_loading_without_custom_objects_needs_the_import(tmp_path):
    readme = _readme()
    claim = readme.index("with no `custom_objects`")
    assert readme[claim:claim + 80].startswith(
        "with no `custom_objects` once `keras_seg` is imported")
    # and that is what happens: a fresh process loads the file only after the import
    path = tmp_path / "unet.keras"
    keras_seg.applications.UNet(2, filters=4, depth=2).save(path)
    load = f"import keras; keras.saving.load_model({str(path)!r})"
    without = subprocess.run([sys.executable, "-c", load], capture_output=True, text=True,
                             timeout=600)
    assert without.returncode != 0 and "SegmentationModel" in without.stderr
    with_import = subprocess.run([sys.executable, "-c", "import keras_seg; " + load],
                                 capture_output=True, text=True, timeout=600)
    assert with_import.returncode == 0, with_import.stderr

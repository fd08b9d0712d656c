"""Every tutorial runs end to end in its fast mode (tiny images and widths, one epoch)."""

import os
import runpy

import numpy as np
import pytest
from support.paths import TUTORIALS


def _main(name):
    return runpy.run_path(os.path.join(TUTORIALS, name), run_name="tutorial")["main"]


def test_train_unet_builtin(tmp_path):
    import keras
    from PIL import Image

    from keras_seg.data import SyntheticShapes
    from keras_seg.trainer import evaluate

    miou = _main("train_unet_builtin.py")(["--fast", "--output", str(tmp_path)])
    # the tutorial's figure is the dataset-level mIoU of the saved model over its whole
    # validation split (8 images of 48x48 with its dataset options in fast mode)
    val = SyntheticShapes("val", num_images=8, image_size=(48, 48),
                          shapes=("disc", "square", "triangle", "ring", "cross"),
                          clutter=0.5, texture=0.4, max_objects=6)
    model = keras.saving.load_model(str(tmp_path / "unet.keras"))
    assert miou == pytest.approx(evaluate(model, val, batch_size=8)["mean_iou"], abs=1e-5)
    # image / truth / prediction / overlay columns (48 px enlarged to 256 px), titles and
    # a legend (tests/visualize/test_pictures.py checks the figure itself)
    with Image.open(tmp_path / "prediction.png") as picture:
        assert picture.size[0] >= 4 * 256 and picture.size[1] > 256 + 50


def test_deeplabv3plus_pspnet(tmp_path):
    mious = _main("deeplabv3plus_pspnet.py")(["--fast", "--output", str(tmp_path)])
    assert all(0.0 <= m <= 1.0 for m in mious)
    assert (tmp_path / "mobilenetv2_backbone.weights.h5").exists()


def test_bring_your_own_data(tmp_path):
    miou = _main("bring_your_own_data.py")(["--fast", "--output", str(tmp_path)])
    assert 0.0 <= miou <= 1.0
    assert len(os.listdir(tmp_path / "my_data" / "masks")) == 16 + 8
    assert (tmp_path / "run" / "best.keras").exists()


@pytest.mark.parametrize("name", sorted(n for n in os.listdir(TUTORIALS) if n.endswith(".py")))
def test_every_tutorial_has_a_fast_mode_and_a_test(name):
    text = open(os.path.join(TUTORIALS, name)).read()
    assert "--fast" in text and "def main(argv=None)" in text
    tested = open(__file__).read() + "".join(
        open(os.path.join(os.path.dirname(__file__), f)).read()
        for f in os.listdir(os.path.dirname(__file__)) if f.startswith("test_tutorial_"))
    assert name in tested, f"tutorials/{name} is not run by any test"
    assert np.isfinite(len(text))

"""``keras-seg predict --pictures``: a titled picture per image with a legend naming the
classes (``--class-names`` a,b,c or @FILE, else the config.json beside the model)."""

import json
import os

import keras
import numpy as np
import pytest
from PIL import Image

from keras_seg import cli, inference, visualize


@pytest.fixture
def run_folder(tmp_path):
    """A 3-class model saved as a run folder would hold it, with a config.json."""
    inputs = keras.Input((None, None, 3))
    x = keras.layers.Conv2D(4, 3, padding="same", activation="relu")(inputs)
    x = keras.layers.Conv2D(3, 3, padding="same", bias_initializer="random_normal")(x)
    folder = tmp_path / "run"
    folder.mkdir()
    keras.Model(inputs, x).save(str(folder / "best.keras"))
    with open(folder / "config.json", "w") as f:
        json.dump({"class_names": ["road", "car", "tree"], "num_classes": 3}, f)
    return folder


@pytest.fixture
def figures(monkeypatch):
    """The prediction figures predict draws, in order."""
    drawn = []
    real = visualize.prediction_figure

    def recording(*args, **kwargs):
        drawn.append(real(*args, **kwargs))
        return drawn[-1]

    monkeypatch.setattr(visualize, "prediction_figure", recording)
    return drawn


def _png(path, height, width, seed):
    rgb = np.random.default_rng(seed).integers(0, 256, (height, width, 3), dtype=np.uint8)
    Image.fromarray(rgb).save(path)
    return str(path), rgb


def _legend(figure):
    return [t.get_text() for t in figure.legends[0].get_texts()]


def test_pictures_name_the_classes_of_the_run(tmp_path, run_folder, figures, capsys):
    image, rgb = _png(tmp_path / "street.png", 30, 40, 0)
    out = tmp_path / "out"
    model = str(run_folder / "best.keras")
    assert cli.main(["predict", model, image, "--output", str(out), "--pictures"]) == 0
    assert sorted(os.listdir(out)) == ["street.png", "street_overlay.png",
                                       "street_picture.png"]
    (figure,) = figures
    assert [ax.get_title() for ax in figure.axes] == ["image", "prediction", "overlay"]
    assert figure.texts[0].get_text() == "street.png"
    mask = inference.predict(keras.saving.load_model(model), rgb)
    names = ["road", "car", "tree"]
    present = [k for k in range(3) if (mask == k).any()]
    assert _legend(figure) == [f"{names[k]} ({k})" for k in present]
    with Image.open(out / "street_picture.png") as im:
        assert im.size == tuple(int(round(v)) for v in figure.get_size_inches() * figure.dpi)
    printed = capsys.readouterr().out
    counts = np.bincount(mask.reshape(-1), minlength=3)
    assert ", ".join(f"{names[k]}: {counts[k]}" for k in present) in printed
    assert str(out / "street_picture.png") in printed


def test_class_names_flag_and_file(tmp_path, run_folder, figures):
    image, _ = _png(tmp_path / "a.png", 12, 12, 1)
    model = str(run_folder / "best.keras")
    assert cli.main(["predict", model, image, "--output", str(tmp_path / "o1"), "--pictures",
                     "--class-names", "sky,grass,water"]) == 0
    names_file = tmp_path / "names.txt"
    names_file.write_text("asphalt\n\nvehicle\n  forest  \n")
    assert cli.main(["predict", model, image, "--output", str(tmp_path / "o2"), "--pictures",
                     "--class-names", f"@{names_file}"]) == 0
    first, second = (_legend(f) for f in figures)
    renamed = {"sky": "asphalt", "grass": "vehicle", "water": "forest"}
    assert first and all(label.split(" (")[0] in renamed for label in first)
    assert second == [renamed[label.split(" (")[0]] + " (" + label.split(" (")[1]
                      for label in first]


def test_without_names_the_classes_are_numbered(tmp_path, run_folder, figures):
    os.remove(run_folder / "config.json")
    image, _ = _png(tmp_path / "a.png", 12, 12, 1)
    assert cli.main(["predict", str(run_folder / "best.keras"), image, "--output",
                     str(tmp_path / "o"), "--pictures"]) == 0
    assert all(label.startswith("class_") for label in _legend(figures[0]))


def test_bad_names_and_clashing_outputs_are_errors(tmp_path, run_folder, capsys):
    image, _ = _png(tmp_path / "a.png", 12, 12, 1)
    model = str(run_folder / "best.keras")
    out = tmp_path / "out"
    assert cli.main(["predict", model, image, "--output", str(out),
                     "--class-names", "one,two"]) == 2
    err = capsys.readouterr().err
    assert "--class-names gives 2 names but the model" in err and "predicts 3 classes" in err
    assert cli.main(["predict", model, image, "--output", str(out),
                     "--class-names", "x,x,y"]) == 2
    assert "repeats" in capsys.readouterr().err
    # a.png's picture and the index mask of a_picture.png would be the same file
    other, _ = _png(tmp_path / "a_picture.png", 12, 12, 2)
    assert cli.main(["predict", model, image, other, "--output", str(out),
                     "--pictures"]) == 2
    assert "would both write a_picture.png" in capsys.readouterr().err
    assert not out.exists()  # nothing written
    # without --pictures they do not clash
    assert cli.main(["predict", model, image, other, "--output", str(out)]) == 0

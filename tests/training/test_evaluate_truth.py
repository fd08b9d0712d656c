"""`keras-seg evaluate` / `trainer.evaluate` score with the model's classes and names.

The model here is exact and needs no training: its logits are its input image (3 channels
= 3 classes), so a pure red / green / blue pixel is predicted as class 0 / 1 / 2 and every
expected score can be counted by hand.
"""

import json
import os

import keras
import numpy as np
import pytest

from keras_seg import cli
from keras_seg.data import FolderDataset, write_image, write_mask
from keras_seg.trainer import TrainConfig, evaluate, format_iou_table, train

COLORS = np.array([[255, 0, 0], [0, 255, 0], [0, 0, 255]], np.uint8)  # class 0, 1, 2

# one 4 x 4 image: the top half is labelled 0, the bottom half 1; class 2 is absent from
# the labels, but 3 pixels are predicted as 2
LABELS = np.array([[0, 0, 0, 0], [0, 0, 0, 0], [1, 1, 1, 1], [1, 1, 1, 1]])
PREDICTED = np.array([[0, 0, 0, 2], [0, 0, 0, 2], [1, 1, 1, 1], [1, 1, 1, 2]])
# confusion over the model's 3 classes: [[6, 0, 2], [0, 7, 1], [0, 0, 0]]
TRUE_MIOU = (6 / 8 + 7 / 8 + 0 / 3) / 3          # 0.5417
TRUE_PIXEL_ACCURACY = 13 / 16                     # 0.8125


def _color_model(path=None):
    """The 3-class model whose logits are its input; saved to ``path`` when given."""
    inputs = keras.Input((None, None, 3))
    model = keras.Model(inputs, keras.layers.Identity()(inputs), name="colors")
    if path is not None:
        model.save(path)
    return model


def _folder_dataset(root, labels=LABELS, predicted=PREDICTED):
    """A folder dataset of one image whose colors make the model predict ``predicted``."""
    for sub in ("images", "masks", "splits"):
        os.makedirs(os.path.join(root, sub), exist_ok=True)
    write_image(os.path.join(root, "images", "a.png"), COLORS[predicted])
    write_mask(os.path.join(root, "masks", "a.png"), np.asarray(labels, np.uint8))
    with open(os.path.join(root, "splits", "val.txt"), "w") as f:
        f.write("a\n")
    return str(root)


def _evaluate_cli(argv):
    """Run `keras-seg evaluate` through its command function (errors raise)."""
    args = cli.build_parser().parse_args(["evaluate", *argv])
    return args.func(args)


def test_absent_class_predictions_count_as_false_positives(tmp_path):
    root = _folder_dataset(tmp_path / "data")
    # the split's masks hold labels 0 and 1 only: a folder dataset infers 2 classes
    with pytest.warns(UserWarning, match="inferred num_classes=2"):
        dataset = FolderDataset(root, split="val")
    result = evaluate(_color_model(), dataset)
    assert result["mean_iou"] == pytest.approx(TRUE_MIOU)
    assert result["pixel_accuracy"] == pytest.approx(TRUE_PIXEL_ACCURACY)
    np.testing.assert_array_equal(result["confusion"], [[6, 0, 2], [0, 7, 1], [0, 0, 0]])
    assert result["num_classes"] == 3
    assert result["class_names"] == ["class_0", "class_1", "class_2"]

    model_path = str(tmp_path / "model.keras")
    _color_model(model_path)
    report = tmp_path / "report"
    assert _evaluate_cli([model_path, "--data", root, "--split", "val",
                          "--output", str(report)]) == 0
    with open(report / "eval.json") as f:
        saved = json.load(f)
    assert saved["confusion"] == [[6, 0, 2], [0, 7, 1], [0, 0, 0]]
    assert saved["mean_iou"] == pytest.approx(TRUE_MIOU)
    assert saved["pixel_accuracy"] == pytest.approx(TRUE_PIXEL_ACCURACY)
    assert (report / "confusion_matrix.png").stat().st_size > 0
    assert not [name for name in os.listdir(report) if ".tmp" in name]


def test_labels_that_are_not_classes_of_the_model_are_a_clear_error(tmp_path):
    labels = LABELS.copy()
    labels[0, 0] = 3
    root = _folder_dataset(tmp_path / "data", labels=labels)
    model_path = str(tmp_path / "model.keras")
    _color_model(model_path)
    message = (r"Label 3 in mask '.*a\.png' is not a class of the model '.*model\.keras': it "
               r"predicts 3 classes \(labels 0-2, from its 3 output channels\).*"
               r"--ignore-index")
    with pytest.raises(ValueError, match=message):
        _evaluate_cli([model_path, "--data", root, "--split", "val"])
    # the Python function, on a dataset read with 4 classes, says the same
    with pytest.raises(ValueError, match="The dataset has 4 classes but the model 'colors'"):
        evaluate(_color_model(), FolderDataset(root, split="val", num_classes=4))
    # a dataset of as many classes as the model, with a mask outside them
    dataset = FolderDataset(root, split="val", num_classes=3, ignore_index=255)
    with pytest.raises(ValueError, match=r"Label 3 in mask .* not a class of the model 'm'"):
        evaluate(_color_model(), dataset, model_name="m")
    # the synthetic dataset has 7 classes: more than this model knows
    with pytest.raises(ValueError, match="The dataset has 7 classes but the model"):
        _evaluate_cli([model_path, "--data", "synthetic", "--synthetic-size", "16",
                       "--synthetic-count", "1"])


def test_num_classes_is_checked_against_the_model(tmp_path):
    root = _folder_dataset(tmp_path / "data")
    model_path = str(tmp_path / "model.keras")
    _color_model(model_path)
    with pytest.raises(ValueError, match=r"--num-classes 4 does not match the model "
                       r"'.*model\.keras', which predicts 3 classes"):
        _evaluate_cli([model_path, "--data", root, "--split", "val", "--num-classes", "4"])
    with pytest.raises(ValueError, match="num_classes=2 .* does not match the model 'colors'"):
        evaluate(_color_model(), FolderDataset(root, split="val", num_classes=2),
                 num_classes=2)
    report = tmp_path / "report"
    assert _evaluate_cli([model_path, "--data", root, "--split", "val", "--num-classes", "3",
                          "--output", str(report)]) == 0
    with open(report / "eval.json") as f:
        assert json.load(f)["mean_iou"] == pytest.approx(TRUE_MIOU)


def test_class_names_from_the_flag_a_file_or_the_run(tmp_path, capsys):
    root = _folder_dataset(tmp_path / "data")
    run = tmp_path / "run"
    run.mkdir()
    model_path = str(run / "best.keras")
    _color_model(model_path)

    def names_of(*extra):
        report = tmp_path / f"report{len(os.listdir(tmp_path))}"
        assert _evaluate_cli([model_path, "--data", root, "--split", "val",
                              "--output", str(report), *extra]) == 0
        with open(report / "eval.json") as f:
            return json.load(f)["class_names"]

    assert names_of() == ["class_0", "class_1", "class_2"]
    assert names_of("--class-names", "sky, road ,car") == ["sky", "road", "car"]
    assert "sky" in capsys.readouterr().out  # the IoU table shows the names
    names_file = tmp_path / "names.txt"
    names_file.write_text("sky\nroad\n\ncar\n")
    assert names_of("--class-names", f"@{names_file}") == ["sky", "road", "car"]
    with pytest.raises(ValueError, match="--class-names gives 2 names but the model .* "
                       "predicts 3 classes"):
        names_of("--class-names", "sky,road")
    # the run's config.json beside the model names the classes when no flag does
    (run / "config.json").write_text(json.dumps({"class_names": ["bg", "lane", "sign"]}))
    assert names_of() == ["bg", "lane", "sign"]
    assert names_of("--class-names", "a,b,c") == ["a", "b", "c"]
    # names of another count are not this model's: not used, and said so
    (run / "config.json").write_text(json.dumps({"class_names": ["bg", "lane"]}))
    capsys.readouterr()
    assert names_of() == ["class_0", "class_1", "class_2"]
    assert "2 names for a model of 3 classes" in capsys.readouterr().out
    for bad in ("a,,b", f"@{tmp_path / 'missing.txt'}"):
        with pytest.raises(SystemExit):
            cli.build_parser().parse_args(["evaluate", model_path, "--class-names", bad])


def test_train_stores_class_names_and_reports_with_them(tmp_path):
    root = tmp_path / "data"
    for sub in ("images", "masks", "splits"):
        (root / sub).mkdir(parents=True)
    for i in range(4):
        mask = np.zeros((16, 16), np.uint8)
        mask[4:12, 4:12] = 1 + i % 2
        write_image(str(root / "images" / f"{i}.png"), COLORS[mask])
        write_mask(str(root / "masks" / f"{i}.png"), mask)
    (root / "splits" / "train.txt").write_text("0\n1\n2\n3\n")
    (root / "splits" / "val.txt").write_text("0\n1\n")
    args = cli.build_parser().parse_args(["train", "--class-names", "bg,cat,dog"])
    assert args.class_names == ("bg", "cat", "dog")
    config = TrainConfig(model="unet", model_options={"filters": 4, "depth": 2},
                         data=str(root), class_names=args.class_names, epochs=1, batch_size=2,
                         augment=False, verbose=0, output=str(tmp_path / "run"))
    result = train(config)
    assert result["class_names"] == ["bg", "cat", "dog"]
    with open(tmp_path / "run" / "config.json") as f:
        assert json.load(f)["class_names"] == ["bg", "cat", "dog"]
    with open(tmp_path / "run" / "eval.json") as f:
        assert json.load(f)["class_names"] == ["bg", "cat", "dog"]
    table = format_iou_table(result["evaluation"])
    assert all(name in table for name in ("bg", "cat", "dog"))
    with pytest.raises(ValueError, match="2 class_names for 3 classes"):
        TrainConfig(data=str(root), num_classes=3, class_names=("a", "b")).validate()
    with pytest.raises(ValueError, match="class_names repeats \\['a'\\]"):
        TrainConfig(data=str(root), class_names=("a", "b", "a")).validate()

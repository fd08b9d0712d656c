"""Bad values are clear errors, not silently changed: TrainConfig (hence the CLI and the
recipes), FolderDataset, load_dataset and the IoU metrics."""

import os

import keras
import numpy as np
import pytest

from keras_seg import cli, losses
from keras_seg.data import FolderDataset, load_dataset, write_image, write_mask
from keras_seg.metrics import MeanIoU, confusion_matrix
from keras_seg.trainer import TrainConfig, config_values


def _validate_flags(*flags):
    """TrainConfig from `keras-seg train` flags, validated."""
    args = cli.build_parser().parse_args(["train", *flags])
    return TrainConfig(**config_values(args)).validate()


@pytest.mark.parametrize("name, flag", [("steps_per_epoch", "--steps-per-epoch"),
                                        ("iterations", "--iterations")])
@pytest.mark.parametrize("value", [0, -3])
def test_step_counts_must_be_positive(name, flag, value):
    message = f"TrainConfig: {name} must be a positive int, or None to leave it unset"
    with pytest.raises(ValueError, match=message + f".*got {value}"):
        TrainConfig(**{name: value}).validate()
    with pytest.raises(ValueError, match=message):
        _validate_flags(flag, str(value))
    with pytest.raises(ValueError, match=message):
        TrainConfig(**{name: 2.5}).validate()
    assert getattr(TrainConfig(**{name: 7}).validate(), name) == 7


@pytest.mark.parametrize("value", [-1e-4, float("nan"), "0.1"])
def test_weight_decay_must_be_a_number_at_least_0(value):
    with pytest.raises(ValueError, match=r"weight_decay must be a number >= 0"):
        TrainConfig(weight_decay=value).validate()


@pytest.mark.parametrize("value", [1.0, 1.5, -0.1, float("nan")])
def test_momentum_must_be_in_0_1(value):
    with pytest.raises(ValueError, match=r"momentum must be a number in \[0, 1\)"):
        TrainConfig(momentum=value).validate()
    with pytest.raises(ValueError, match=r"momentum must be a number in \[0, 1\)"):
        _validate_flags("--momentum", str(value))


def test_momentum_and_weight_decay_of_the_papers_are_accepted():
    config = TrainConfig(momentum=0.99, weight_decay=5e-4).validate()
    assert config.momentum == 0.99 and config.weight_decay == 5e-4
    assert TrainConfig(momentum=0.0, weight_decay=0).validate().momentum == 0.0


def test_num_classes_and_class_names_are_refused_for_datasets_with_fixed_classes():
    with pytest.raises(ValueError, match="num_classes=5 given for the synthetic dataset "
                       "'synthetic'.*'folder' datasets only"):
        TrainConfig(num_classes=5).validate()
    with pytest.raises(ValueError, match="num_classes=21 given for the voc dataset"):
        TrainConfig(data="/data/VOCdevkit", data_format="voc", num_classes=21).validate()
    with pytest.raises(ValueError, match="class_names=.* given for the camvid dataset"):
        TrainConfig(data="/data/camvid", data_format="camvid",
                    class_names=("a", "b")).validate()
    with pytest.raises(ValueError, match="num_classes=5 given for the synthetic dataset"):
        _validate_flags("--num-classes", "5")
    with pytest.raises(ValueError, match="num_classes=5 given for the synthetic dataset"):
        load_dataset("synthetic", "train", num_classes=5)
    with pytest.raises(ValueError, match="class_names=.* given for the synthetic dataset"):
        load_dataset("synthetic", "train", class_names=["a"])


@pytest.mark.parametrize("value", [2.7, 0, -1, True, "3"])
def test_num_classes_must_be_a_positive_int(value, tmp_path):
    with pytest.raises(ValueError, match="num_classes must be a positive int"):
        TrainConfig(data=str(tmp_path), num_classes=value).validate()
    with pytest.raises(ValueError, match="FolderDataset: num_classes must be a positive int, "
                       f"got {value!r}"):
        FolderDataset(str(tmp_path), num_classes=value)


def test_folder_dataset_keeps_an_integral_num_classes(tmp_path):
    for sub in ("images", "masks"):
        os.makedirs(tmp_path / sub)
    write_image(str(tmp_path / "images" / "a.png"), np.zeros((4, 4, 3), np.uint8))
    write_mask(str(tmp_path / "masks" / "a.png"), np.ones((4, 4), np.uint8))
    assert FolderDataset(str(tmp_path), num_classes=np.int64(3)).num_classes == 3


@pytest.mark.parametrize("names, message", [
    ("a,b", "must be a list of names"),
    (("a", ""), "must be non-empty strings"),
    (("a", "b", "a"), r"repeats \['a'\]"),
])
def test_class_names_are_checked(names, message, tmp_path):
    with pytest.raises(ValueError, match=message):
        TrainConfig(data=str(tmp_path), class_names=names).validate()


@pytest.mark.parametrize("dtype", ["float32", "float64", "float16"])
def test_float_labels_are_refused_by_the_metrics(dtype):
    labels = np.array([[[0.0, 1.0], [2.7, 1.0]]], dtype)
    logits = np.zeros((1, 2, 2, 3), "float32")
    # (JAX without x64 holds float64 as float32)
    message = r"labels \(y_true\) must be integer class indices, got dtype float"
    with pytest.raises(ValueError, match=message):
        confusion_matrix(labels, logits, 3)
    with pytest.raises(ValueError, match=message):
        MeanIoU(3).update_state(labels, logits)
    # integer labels of any width (and bool masks) are fine
    for int_dtype in ("int32", "int64", "uint8", "bool"):
        cm = confusion_matrix(np.array([[[0, 1], [1, 1]]], int_dtype), logits, 3)
        assert cm.sum() == 4


def test_float_labels_are_refused_inside_fit_and_int_labels_train():
    inputs = keras.Input((None, None, 3))
    model = keras.Model(inputs, keras.layers.Conv2D(3, 1)(inputs))
    model.compile("sgd", losses.get("ce"), metrics=[MeanIoU(3)])
    x = np.random.default_rng(0).random((2, 4, 4, 3)).astype("float32")
    y = np.array([[[0, 1, 2, 1]] * 4] * 2, "int32")
    history = model.fit(x, y, epochs=1, batch_size=2, verbose=0)  # traced on TF and JAX
    assert 0.0 <= history.history["mean_iou"][0] <= 1.0
    model.compile("sgd", losses.get("ce"), metrics=[MeanIoU(3)])
    with pytest.raises(ValueError, match="must be integer class indices, got dtype float32"):
        model.fit(x, y.astype("float32"), epochs=1, batch_size=2, verbose=0)

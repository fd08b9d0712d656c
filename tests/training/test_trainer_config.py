"""TrainConfig: sections, help and CLI flags from one description; no mutation; one ignore index."""

import copy
import dataclasses
import json
import os

import numpy as np
import pytest

from keras_seg import cli, losses
from keras_seg.data import SyntheticShapes, load_dataset, write_image, write_mask
from keras_seg.trainer import SECTIONS, TrainConfig, config_values, train
from keras_seg.trainer.config import FIELDS, _plain, add_config_arguments

EXPECTED_SECTIONS = {
    "model": ("model", "backbone", "backbone_options", "model_options"),
    "data": ("data", "data_format", "num_classes", "class_names", "train_split", "val_split",
             "synthetic_size", "synthetic_train", "synthetic_val", "synthetic_options",
             "ignore_index"),
    "augmentation": ("augment", "crop_size", "scale_range", "rotation", "elastic"),
    "optimization": ("optimizer", "momentum", "lr", "weight_decay", "schedule", "warmup_steps",
                     "loss",
                     "class_weighting", "boundary_weights", "epochs", "batch_size",
                     "steps_per_epoch", "iterations"),
    "devices": ("distribute", "devices", "sync_batchnorm", "precision", "jit_compile"),
    "run": ("output", "seed", "workers", "resume", "verbose"),
}

TINY = {"model_options": {"filters": 4, "depth": 2}, "synthetic_size": 32,
        "synthetic_train": 8, "synthetic_val": 4, "batch_size": 4, "verbose": 0}


def _train_parser_actions():
    parser = cli.build_parser()
    sub = next(a for a in parser._actions if a.dest == "command")
    return {action.dest: action for action in sub.choices["train"]._actions}


def test_sections_cover_every_field_once():
    assert SECTIONS == EXPECTED_SECTIONS
    names = [name for section in SECTIONS.values() for name in section]
    assert sorted(names) == sorted(f.name for f in dataclasses.fields(TrainConfig))


def test_help_is_written_once_and_reaches_docstring_and_cli():
    actions = _train_parser_actions()
    doc = " ".join(TrainConfig.__doc__.split())
    for name, field in FIELDS.items():
        meta = field.metadata
        assert meta["help"].endswith("."), name
        assert meta["flag"].startswith("--"), name
        # the docstring's Attributes block names the field with its help text
        assert f"{name}: {' '.join(meta['help'].split())}" in doc, name
        # and every field is a `keras-seg train` flag that carries the same text
        action = actions[name]
        assert action.option_strings == [meta["flag"]], name
        assert action.help.startswith(_plain(meta["help"])), name
        assert "``" not in action.help and ":class:" not in action.help, name


def test_old_flags_keep_working():
    args = cli.build_parser().parse_args([
        "train", "--model", "fcn8s", "--backbone", "resnet50",
        "--backbone-args", '{"width_multiplier": 0.25}', "--model-args", '{"filters": 16}',
        "--data", "/data/voc", "--data-format", "voc", "--num-classes", "21",
        "--train-split", "trainaug", "--val-split", "val", "--synthetic-size", "64",
        "--synthetic-train", "32", "--synthetic-val", "8", "--synthetic-args",
        '{"clutter": 0.5}', "--epochs", "3", "--batch-size", "2", "--crop", "48,40",
        "--no-augment", "--optimizer", "sgd", "--lr", "0.01", "--weight-decay", "1e-4",
        "--schedule", "cosine", "--loss", "ce+dice", "--class-weighting", "median",
        "--ignore-index", "0", "--steps-per-epoch", "5", "--output", "runs/x", "--seed", "3",
        "--workers", "2", "--no-resume", "--verbose", "2"])
    config = TrainConfig(**config_values(args))
    assert config == TrainConfig(
        model="fcn8s", backbone="resnet50", backbone_options={"width_multiplier": 0.25},
        model_options={"filters": 16}, data="/data/voc", data_format="voc", num_classes=21,
        train_split="trainaug", val_split="val", synthetic_size=64, synthetic_train=32,
        synthetic_val=8, synthetic_options={"clutter": 0.5}, epochs=3, batch_size=2,
        crop_size=(48, 40), augment=False, optimizer="sgd", lr=0.01, weight_decay=1e-4,
        schedule="cosine", loss="ce+dice", class_weighting="median", ignore_index=0,
        steps_per_epoch=5, output="runs/x", seed=3, workers=2, resume=False, verbose=2)


def test_new_flags_and_defaults():
    parser = cli.build_parser()
    assert config_values(parser.parse_args(["train"])) == {}  # the dataclass defaults rule
    args = parser.parse_args([
        "train", "--momentum", "0.99", "--iterations", "7", "--rotation", "10",
        "--scale-range", "0.5,2", "--elastic", "--boundary-weights", "--optimizer", "rmsprop"])
    assert config_values(args) == {
        "momentum": 0.99, "iterations": 7, "rotation": 10.0, "scale_range": (0.5, 2.0),
        "elastic": True, "boundary_weights": True, "optimizer": "rmsprop"}
    for bad in (["--crop", "0"], ["--scale-range", "1"], ["--optimizer", "adagrad"],
                ["--model-args", "[1]"], ["--verbose", "3"]):
        with pytest.raises(SystemExit):
            parser.parse_args(["train", *bad])


def test_evaluate_generates_the_data_flags():
    args = cli.build_parser().parse_args([
        "evaluate", "m.keras", "--data", "synthetic", "--num-classes", "4",
        "--synthetic-size", "40", "--ignore-index", "7", "--seed", "2", "--output", "rep"])
    assert args.report == "rep" and args.split == "val" and args.synthetic_count == 128
    from keras_seg.commands.evaluate import CONFIG_FIELDS

    assert config_values(args, CONFIG_FIELDS) == {
        "data": "synthetic", "num_classes": 4, "synthetic_size": 40, "ignore_index": 7,
        "seed": 2}


def test_add_config_arguments_refuses_unknown_fields():
    import argparse

    with pytest.raises(ValueError, match="'epoch'.* not TrainConfig fields"):
        add_config_arguments(argparse.ArgumentParser(), ["epoch"])


def test_validate_returns_a_normalized_copy():
    config = TrainConfig(crop_size=64, scale_range=[0.5, 2])
    before = copy.deepcopy(config)
    checked = config.validate()
    assert config == before
    assert checked is not config
    assert checked.crop_size == (64, 64) and checked.scale_range == (0.5, 2.0)
    with pytest.raises(ValueError, match="scale_range must be"):
        TrainConfig(scale_range=(2.0, 1.0)).validate()
    with pytest.raises(ValueError, match="optimizer='adagrad' is not one of"):
        TrainConfig(optimizer="adagrad").validate()


def test_train_leaves_the_callers_config_unchanged(tmp_path):
    config = TrainConfig(**TINY, crop_size=32, iterations=3, epochs=10,
                         output=str(tmp_path / "run"))
    before = copy.deepcopy(config)
    result = train(config)
    assert config == before
    assert result["epochs_done"] == 2  # 8 images / batch 4 = 2 steps; 3 steps -> 2 epochs
    with open(tmp_path / "run" / "config.json") as f:
        record = json.load(f)
    assert record["epochs"] == 2 and record["crop_size"] == [32, 32]


def test_ignore_index_of_another_value_is_refused_for_fixed_datasets():
    config = TrainConfig(**TINY, ignore_index=0)
    with pytest.raises(ValueError, match="marks unlabeled pixels with 255, but "
                       "ignore_index=0 .*Use ignore_index=255"):
        config.dataset("train")
    with pytest.raises(ValueError, match="data_format='coco' is not one of"):
        load_dataset("synthetic", "train", data_format="coco")


def _folder_dataset(root, void, count=4, size=32):
    """A folder dataset of 3 classes whose unlabeled pixels are ``void``."""
    for sub in ("images", "masks", "splits"):
        os.makedirs(os.path.join(root, sub), exist_ok=True)
    source = SyntheticShapes("train", num_images=2 * count, image_size=(size, size),
                             shapes=["disc", "square"])
    names = {"train": [], "val": []}
    for i in range(2 * count):
        image, mask = source[i]
        mask = mask.astype(np.int32)
        mask[:2] = void  # a void band at the top
        write_image(os.path.join(root, "images", f"{i}.png"), image)
        write_mask(os.path.join(root, "masks", f"{i}.png"), mask, ignore_index=void)
        names["train" if i < count else "val"].append(str(i))
    for split, stems in names.items():
        with open(os.path.join(root, "splits", f"{split}.txt"), "w") as f:
            f.write("\n".join(stems))
    return str(root)


def test_a_folder_dataset_trains_with_the_configs_ignore_index(tmp_path):
    root = _folder_dataset(tmp_path / "data", void=7)
    config = TrainConfig(**TINY, data=root, num_classes=3, ignore_index=7, epochs=1,
                         class_weighting="median", boundary_weights=True,
                         output=str(tmp_path / "run"))
    dataset = config.dataset("train")
    assert dataset.ignore_index == 7 and dataset.num_classes == 3
    result = train(config)
    evaluation = result["evaluation"]
    labelled = sum(int((mask != 7).sum()) for _, mask in config.dataset("val"))
    assert evaluation["confusion"].shape == (3, 3)
    assert evaluation["confusion"].sum() == labelled  # the void band is not scored
    with pytest.raises(ValueError, match="outside"):
        # the same masks read with the default ignore index: 7 is not a class
        train(dataclasses.replace(config, ignore_index=255, output=str(tmp_path / "r2")))


def test_losses_get_by_name():
    assert set(losses.LOSSES) == {"ce", "dice", "focal", "lovasz", "ce+dice"}
    ce = losses.get("ce", ignore_index=7, class_weights=[1.0, 2.0])
    assert isinstance(ce, losses.SegmentationCrossEntropy)
    assert ce.ignore_index == 7 and ce.class_weights == [1.0, 2.0]
    combined = losses.get("ce+dice")
    assert isinstance(combined, losses.CombinedLoss)
    assert [type(loss) for loss in combined.losses] == [losses.SegmentationCrossEntropy,
                                                        losses.DiceLoss]
    with pytest.raises(ValueError, match="Unknown loss 'bce'; choose one of ce, dice"):
        losses.get("bce")

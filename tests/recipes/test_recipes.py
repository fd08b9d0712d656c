"""The paper recipes of ``applications/*.toml`` and their runner (``keras_seg.recipes``).

Every recipe loads, validates and gives its full TrainConfig; a few paper values are
checked against REFERENCE.md and the papers; every bad input is refused with a clear
ValueError. Every recipe runs in fast mode on the torch backend (the cheapest); three
(plain U-Net, deep-supervised G-FRNet, dilated DeepLab v1) run on every backend.
"""

import csv
import math
import os
import subprocess
import sys
from pathlib import Path

import keras
import pytest

from keras_seg import applications, cli, recipes
from keras_seg.trainer import SECTIONS, TrainConfig

#: the repository: the folder above this file holding applications/ and pyproject.toml
REPO = next(p for p in Path(__file__).resolve().parents
            if (p / "applications").is_dir() and (p / "pyproject.toml").is_file())
RECIPE_FILES = sorted((REPO / "applications").glob("*.toml"))
PAPERS = {"deeplabv1", "deeplabv2", "deeplabv3", "deeplabv3plus", "dilation", "enet", "fcn",
          "gfrnet", "linknet", "pspnet", "refinenet", "segnet", "unet"}
#: run in fast mode on every backend: a plain model (U-Net), a deep-supervision one
#: (G-FRNet, six losses) and a dilated one (DeepLab v1: atrous VGG-16, fc6 at rate 12;
#: the cheapest dilated recipe on TensorFlow and JAX)
EVERY_BACKEND = ("unet", "gfrnet", "deeplabv1")
BACKEND = keras.backend.backend()

GOOD = """
[recipe]
paper = "Test (2024)"
notes = "a small valid recipe"

[model]
model = "unet"
model_options = { filters = 4, depth = 2 }

[optimization]
lr = 0.01
"""


def _write(tmp_path, text, name="bad.toml"):
    path = tmp_path / name
    path.write_text(text)
    return path


def _fields():
    return {name for names in SECTIONS.values() for name in names}


# ------------------------------------------------------------------ every recipe loads


def test_thirteen_recipes_one_per_paper():
    assert {p.stem for p in RECIPE_FILES} == PAPERS
    assert len(RECIPE_FILES) == 13
    assert not list((REPO / "applications").glob("*.py")), "recipes are TOML now"


@pytest.mark.parametrize("path", RECIPE_FILES, ids=lambda p: p.stem)
def test_recipe_loads_and_builds_its_train_config(path):
    recipe = recipes.load_recipe(path)
    assert recipe.name == path.stem and recipe.paper and recipe.notes
    assert set(recipe.sections) <= set(SECTIONS)
    for section, table in (*recipe.sections.items(), *recipe.fast.items()):
        assert set(table) <= set(SECTIONS[section]), (section, table)
    config = recipes.config_from_recipe(recipe)
    assert isinstance(config, TrainConfig)
    assert config.model in applications.MODELS
    # every value of the file reaches the config (arrays as tuples)
    for table in recipe.sections.values():
        for key, value in table.items():
            assert getattr(config, key) == value, key
    assert config.iterations and config.iterations >= 1000  # the paper's length
    assert isinstance(config.crop_size, tuple) and len(config.crop_size) == 2
    assert config.output == f"runs/{path.stem}"
    fast = recipes.config_from_recipe(recipe, fast=True)
    assert (fast.iterations, fast.synthetic_size, fast.crop_size) == (2, 48, None)
    assert fast.output == f"runs/{path.stem}-fast"
    assert recipe.fast, "a recipe's fast mode shrinks its model ([fast.model])"
    # the paper's settings other than size survive fast mode
    assert (fast.model, fast.optimizer, fast.lr, fast.loss) == (
        config.model, config.optimizer, config.lr, config.loss)


def test_bare_name_resolves_in_current_directory_then_repository(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    assert recipes.find_recipe("pspnet").resolve() == REPO / "applications" / "pspnet.toml"
    assert set(recipes.available_recipes()) == PAPERS
    local = tmp_path / "applications"
    local.mkdir()
    (local / "pspnet.toml").write_text(
        (REPO / "applications" / "pspnet.toml").read_text().replace("lr = 0.01", "lr = 0.02"))
    recipe = recipes.load_recipe("pspnet")
    assert Path(recipe.path).resolve() == (local / "pspnet.toml").resolve()
    assert recipes.config_from_recipe(recipe).lr == 0.02
    # a path is a path, never looked up by name
    assert recipes.config_from_recipe(str(REPO / "applications" / "pspnet.toml")).lr == 0.01


# ------------------------------------------------------------------------ paper values


def test_pspnet_paper_values():
    config = recipes.config_from_recipe("pspnet")
    # REFERENCE.md: poly lr (power 0.9), base lr 0.01, momentum 0.9, wd 1e-4, batch 16
    assert (config.schedule, config.lr, config.momentum, config.weight_decay,
            config.batch_size) == ("poly", 0.01, 0.9, 1e-4, 16)
    assert config.optimizer == "sgd"
    assert config.crop_size == (473, 473)
    assert config.scale_range == (0.5, 2.0) and config.rotation == 10.0
    assert config.iterations == 30000
    assert config.backbone == "resnet101" and config.model_options["aux"] is True
    # the auxiliary head's loss weight is 0.4 (REFERENCE.md) in the model the recipe
    # builds (fast widths: building ResNet-101 at full width takes long)
    fast = recipes.config_from_recipe("pspnet", fast=True)
    assert fast.model_options["aux"] is True, "fast mode keeps the aux head"
    model = applications.build(fast.model, 3, backbone=fast.backbone,
                               backbone_options=fast.backbone_options, **fast.model_options)
    assert model.default_loss_weights == {"logits": 1.0, "aux": 0.4}


def test_deeplab_paper_values():
    v1 = recipes.config_from_recipe("deeplabv1")
    assert (v1.lr, v1.batch_size, v1.momentum, v1.weight_decay) == (1e-3, 20, 0.9, 5e-4)
    v2 = recipes.config_from_recipe("deeplabv2")
    assert (v2.schedule, v2.lr, v2.batch_size, v2.crop_size, v2.scale_range,
            v2.iterations) == ("poly", 2.5e-4, 10, (321, 321), (0.5, 1.5), 20000)
    for name in ("deeplabv3", "deeplabv3plus"):
        c = recipes.config_from_recipe(name)
        assert (c.schedule, c.lr, c.batch_size, c.crop_size, c.scale_range,
                c.iterations) == ("poly", 0.007, 16, (513, 513), (0.5, 2.0), 30000), name
    assert recipes.config_from_recipe("deeplabv3plus").backbone == "xception"


def test_encoder_decoder_paper_values():
    unet = recipes.config_from_recipe("unet")
    # U-Net: momentum 0.99, a batch of one tile, elastic deformation, the weight map
    assert (unet.optimizer, unet.momentum, unet.batch_size) == ("sgd", 0.99, 1)
    assert unet.elastic and unet.boundary_weights
    segnet = recipes.config_from_recipe("segnet")
    assert (segnet.lr, segnet.momentum, segnet.batch_size, segnet.class_weighting) == (
        0.1, 0.9, 12, "median")
    enet = recipes.config_from_recipe("enet")
    assert (enet.optimizer, enet.lr, enet.weight_decay, enet.batch_size,
            enet.class_weighting) == ("adam", 5e-4, 2e-4, 10, "enet")
    linknet = recipes.config_from_recipe("linknet")
    assert (linknet.optimizer, linknet.lr, linknet.class_weighting, linknet.backbone) == (
        "rmsprop", 5e-4, "enet", "resnet18")
    fcn = recipes.config_from_recipe("fcn")
    assert (fcn.model, fcn.lr, fcn.batch_size, fcn.schedule, fcn.augment) == (
        "fcn8s", 1e-4, 20, "constant", False)
    dilation = recipes.config_from_recipe("dilation")
    assert (dilation.lr, dilation.batch_size, dilation.momentum, dilation.iterations) == (
        1e-3, 14, 0.9, 60000)


# ---------------------------------------------------------------------- bad recipes


@pytest.mark.parametrize("text, expected", [
    (GOOD + "\n[optimisation]\nmomentum = 0.9\n",
     ["unknown section [optimisation]", "did you mean 'optimization'", "[model]", "[run]"]),
    (GOOD.replace("[optimization]\nlr = 0.01", "[optimization]\nmomentun = 0.9"),
     ["[optimization] 'momentun' is not a TrainConfig field", "did you mean 'momentum'",
      "the keys of [optimization] are: optimizer, momentum, lr"]),
    (GOOD + "\n[augmentation]\nlr = 0.1\n",
     ["[augmentation] 'lr' belongs in [optimization], not [augmentation]"]),
    (GOOD.replace("lr = 0.01", 'lr = "fast"'),
     ["[optimization] lr = 'fast'", "expected a number, got str"]),
    (GOOD.replace("lr = 0.01", 'optimizer = "adagrad"'),
     ["[optimization] optimizer = 'adagrad'", "'adam', 'sgd', 'rmsprop'"]),
    (GOOD.replace("lr = 0.01", "batch_size = 0"),
     ["[optimization] batch_size = 0", "batch_size must be a positive int"]),
    (GOOD.replace("lr = 0.01", "batch_size = 2.5"),
     ["[optimization] batch_size = 2.5", "expected an integer, got float"]),
    (GOOD + "\n[augmentation]\ncrop_size = 321\n",
     ["[augmentation] crop_size = 321", "an array of numbers"]),
    (GOOD.replace('model = "unet"', 'model = "unet3"'),
     ["[model] model = 'unet3'", "Unknown model", "pspnet"]),
    (GOOD + '\n[fast.optimization]\nschedule = "step"\n',
     ["[fast.optimization] schedule = 'step'", "'poly', 'constant', 'cosine'"]),
    (GOOD + "\n[fast.model]\nlr = 0.1\n",
     ["[fast.model] 'lr' belongs in [fast.optimization]"]),
    (GOOD + "\n[fast.modle]\nmodel_options = { filters = 2 }\n",
     ["unknown section [fast.modle]", "did you mean 'model'"]),
    ("lr = 0.01\n" + GOOD, ["key 'lr' is outside any table", "belongs in [optimization]"]),
    (GOOD.replace('paper = "Test (2024)"\n', ""), ["[recipe] lacks paper"]),
    (GOOD.replace('notes = "a small valid recipe"', 'notes = "x"\nauthor = "me"'),
     ["[recipe] 'author' is not a recipe key", "paper, notes, reference"]),
    (GOOD.replace('model = "unet"\n', ""), ["[model] must name the architecture"]),
    (GOOD.replace("lr = 0.01", "lr = ["), ["not valid TOML"]),
], ids=["unknown-section", "not-a-field", "wrong-section", "bad-type", "bad-choice",
        "bad-int", "float-for-int", "crop-not-array", "unknown-model", "bad-fast-value",
        "fast-wrong-section", "unknown-fast-section", "key-outside-table", "missing-paper",
        "unknown-recipe-key", "no-model", "bad-toml"])
def test_bad_recipe_is_refused_naming_file_section_and_key(tmp_path, text, expected):
    path = _write(tmp_path, text)
    with pytest.raises(ValueError) as info:
        recipes.load_recipe(path)
    message = str(info.value)
    assert message.startswith(f"{path}:"), message
    for part in expected:
        assert part in message, f"{part!r} not in {message!r}"


def test_good_recipe_and_overrides(tmp_path):
    recipe = recipes.load_recipe(_write(tmp_path, GOOD, "good.toml"))
    config = recipes.config_from_recipe(recipe, epochs=3, batch_size=None)
    assert (config.epochs, config.iterations, config.lr) == (3, None, 0.01)
    assert config.output == "runs/good"
    with pytest.raises(ValueError, match=r"Override 'momentun' .*did you mean 'momentum'"):
        recipes.config_from_recipe(recipe, momentun=0.9)
    with pytest.raises(ValueError, match=r"batch_size must be a positive int"):
        recipes.config_from_recipe(recipe, batch_size=-1)


def test_unknown_recipe_lists_the_available_ones(tmp_path):
    with pytest.raises(FileNotFoundError, match=r"No recipe named 'pspnett'.*pspnet, refinenet"):
        recipes.load_recipe("pspnett")
    with pytest.raises(FileNotFoundError, match="does not exist"):
        recipes.load_recipe(str(tmp_path / "nothing.toml"))


def test_cli_refuses_a_bad_recipe_with_exit_status_2(tmp_path, capsys):
    path = _write(tmp_path, GOOD.replace("lr = 0.01", "lr = -1"))
    assert cli.main(["recipe", str(path), "--fast"]) == 2
    err = capsys.readouterr().err
    assert "error:" in err and f"{path}: [optimization] lr = -1.0: " in err and "> 0" in err
    with pytest.raises(SystemExit) as info:
        cli.main(["recipe", "unet", "--iterations", "3", "--epochs", "2"])
    assert info.value.code == 2
    assert "not allowed with argument" in capsys.readouterr().err


# --------------------------------------------------------------------- fast runs


def _check_run(folder, rows_expected=1):
    """The run folder of a fast run: checkpoints, one log row per epoch, finite loss."""
    for name in ("last.keras", "best.keras", "log.csv", "config.json", "eval.json"):
        assert os.path.isfile(os.path.join(folder, name)), name
    with open(os.path.join(folder, "log.csv")) as f:
        rows = list(csv.DictReader(f))
    assert [int(r["epoch"]) for r in rows] == list(range(rows_expected))
    for row in rows:
        assert math.isfinite(float(row["loss"])) and float(row["loss"]) > 0
        assert math.isfinite(float(row["val_loss"]))
        assert 0.0 <= float(row["val_mean_iou"]) <= 1.0
    return rows


@pytest.mark.parametrize("name", sorted(PAPERS))
def test_recipe_runs_in_fast_mode(name, tmp_path, capsys):
    if BACKEND != "torch" and name not in EVERY_BACKEND:
        pytest.skip(f"every recipe runs on torch (the cheapest); on {BACKEND} only "
                    f"{', '.join(EVERY_BACKEND)}")
    out = str(tmp_path / name)
    result = recipes.run(name, ["--fast", "--output", out])
    # FAST: 8 training images in batches of 4 = 2 steps per epoch; 2 iterations = 1 epoch
    steps = math.ceil(recipes.FAST["synthetic_train"] / recipes.FAST["batch_size"])
    epochs = math.ceil(recipes.FAST["iterations"] / steps)
    rows = _check_run(out, epochs)
    assert result["epochs_done"] == epochs
    assert "mean IoU" in capsys.readouterr().out
    row = rows[-1]
    if name == "pspnet":  # the auxiliary loss counts with weight 0.4
        assert float(row["loss"]) == pytest.approx(
            float(row["logits_loss"]) + 0.4 * float(row["aux_loss"]), rel=1e-3)
    if name == "gfrnet":  # deep supervision: every stage's loss, all weighted 1
        stages = [k for k in row if k.endswith("_loss") and not k.startswith("val_")]
        assert len(stages) == 6, stages
        assert float(row["loss"]) == pytest.approx(sum(float(row[k]) for k in stages),
                                                   rel=1e-3)


def _subprocess(argv, cwd):
    env = {**os.environ, "KERAS_BACKEND": BACKEND}
    return subprocess.run([sys.executable, *argv], cwd=cwd, env=env, capture_output=True,
                          text=True, timeout=300)


def test_cli_recipe_subcommand_fast(tmp_path):
    # a bare name from another directory: the recipe of the package's repository
    out = tmp_path / "run"
    proc = _subprocess(["-m", "keras_seg", "recipe", "unet", "--fast", "--output", str(out)],
                       cwd=tmp_path)
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    assert "U-Net (Ronneberger, Fischer & Brox, MICCAI 2015)" in proc.stdout
    assert "mean IoU" in proc.stdout
    _check_run(str(out))


def test_python_m_keras_seg_recipes_fast(tmp_path):
    out = tmp_path / "run"
    # a path (relative to the current directory), never looked up by name
    proc = _subprocess(["-m", "keras_seg.recipes", os.path.join("applications", "unet.toml"),
                        "--fast", "--output", str(out)], cwd=REPO)
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    assert "applications/unet.toml (fast mode)" in proc.stdout
    _check_run(str(out))

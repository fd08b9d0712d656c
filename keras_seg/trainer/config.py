""":class:`TrainConfig`: everything a training run needs, one field per option.

Each field's ``metadata`` is the single description of the option:

- ``"section"``: one of :data:`SECTION_NAMES` (:data:`SECTIONS` groups the fields by it);
- ``"help"``: what the field means; the class docstring's "Attributes" block and the
  ``keras-seg train`` / ``evaluate`` ``--help`` are generated from it;
- ``"flag"``: its command-line flag (``--no-...`` for a boolean that is on by default);
- ``"parse"``: the function turning the flag's text into the value (None for booleans);
- ``"choices"``: the allowed values, checked by :meth:`TrainConfig.validate` and the CLI;
- ``"metavar"`` (optional): how ``--help`` shows the value;
- ``"cli_default"`` (optional): what ``--help`` says the default is when the command
  line computes it (``--output`` defaults to ``runs/MODEL``).

:func:`add_config_arguments` turns fields into ``argparse`` arguments and
:func:`config_values` picks the given field values out of the parsed arguments.
"""

import argparse
import dataclasses
import json
import numbers
import re
import textwrap

from keras_seg.data.loading import DATA_FORMATS
from keras_seg.losses import LOSSES

SCHEDULES = ("poly", "constant", "cosine")
CLASS_WEIGHTING = ("none", "median", "enet")
OPTIMIZERS = ("adam", "sgd", "rmsprop")
DISTRIBUTE = ("none", "data")
PRECISIONS = ("float32", "mixed_float16", "mixed_bfloat16")
JIT_COMPILE = ("auto", True, False)
DEVICE_TYPES = ("cpu", "gpu", "tpu")
SECTION_NAMES = ("model", "data", "augmentation", "optimization", "devices", "run")


# ------------------------------------------------------------- command-line parsers


def parse_json_dict(text):
    """A JSON object given on the command line, as a dict.

    Args:
        text: the flag's text, e.g. ``'{"filters": 16}'``.

    Raises:
        argparse.ArgumentTypeError: ``text`` is not valid JSON or not an object.
    """
    try:
        value = json.loads(text)
    except json.JSONDecodeError as err:
        raise argparse.ArgumentTypeError(f"not valid JSON ({err}): {text!r}") from None
    if not isinstance(value, dict):
        raise argparse.ArgumentTypeError(f"expected a JSON object {{...}}, got {text!r}")
    return value


def parse_size(text):
    """``"H"``, ``"H,W"`` or ``"HxW"`` as a ``(H, W)`` tuple of positive ints.

    Args:
        text: the flag's text.

    Raises:
        argparse.ArgumentTypeError: not one or two positive ints.
    """
    try:
        parts = [int(v) for v in text.replace("x", ",").split(",")]
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected H or H,W, got {text!r}") from None
    if len(parts) == 1:
        parts = parts * 2
    if len(parts) != 2 or min(parts) < 1:
        raise argparse.ArgumentTypeError(f"expected H or H,W (positive ints), got {text!r}")
    return tuple(parts)


def parse_range(text):
    """``"LOW,HIGH"`` as a ``(low, high)`` tuple of floats.

    Args:
        text: the flag's text, e.g. ``"0.5,2"``.

    Raises:
        argparse.ArgumentTypeError: not two numbers.
    """
    try:
        parts = tuple(float(v) for v in text.split(","))
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected LOW,HIGH, got {text!r}") from None
    if len(parts) != 2:
        raise argparse.ArgumentTypeError(f"expected LOW,HIGH, got {text!r}")
    return parts


def parse_class_names(text):
    """``"a,b,c"`` or ``"@names.txt"`` (one name per line) as a tuple of class names.

    Args:
        text: the flag's text: names separated by commas, or ``@`` and the path of a
            text file holding one name per line (blank lines are skipped, spaces around a
            name are removed).

    Raises:
        argparse.ArgumentTypeError: the file cannot be read, or a name is empty.
    """
    if text.startswith("@"):
        path = text[1:]
        try:
            with open(path, encoding="utf-8") as f:
                names = [line.strip() for line in f]
        except OSError as err:
            raise argparse.ArgumentTypeError(
                f"cannot read the class-name file {path!r} ({err.strerror}); give "
                "@FILE with one name per line, or the names as a,b,c") from None
        names = [name for name in names if name]
        if not names:
            raise argparse.ArgumentTypeError(f"the class-name file {path!r} holds no names")
        return tuple(names)
    names = [name.strip() for name in text.split(",")]
    if not all(names):
        raise argparse.ArgumentTypeError(
            f"empty class name in {text!r}; give the names as a,b,c (or @FILE, one per line)")
    return tuple(names)


def device_names(value, who="TrainConfig"):
    """``value`` (``"gpu:0,gpu:1"`` or a list of such names) as a tuple of ``"type:index"``.

    Types are :data:`DEVICE_TYPES`, lower case, as ``keras.distribution.list_devices()``
    names devices; a name appears once, and all are of one type. None stays None.

    Raises:
        ValueError: not such names, a name given twice, or several types.
    """
    if value is None:
        return None
    items = value.split(",") if isinstance(value, str) else value
    if not isinstance(items, (list, tuple)):
        items = None
    names = []
    for item in items or ():
        name = item.strip().lower() if isinstance(item, str) else ""
        kind, _, index = name.partition(":")
        if kind not in DEVICE_TYPES or not index.isdigit():
            items = None
            break
        names.append(f"{kind}:{int(index)}")
    if not items:
        raise ValueError(f"{who}: devices must name devices as TYPE:INDEX separated by commas, "
                         f"TYPE one of {', '.join(DEVICE_TYPES)} (e.g. 'gpu:0,gpu:1'), or be "
                         f"None for every local accelerator; got {value!r}.")
    repeated = sorted({name for name in names if names.count(name) > 1})
    if repeated:
        raise ValueError(f"{who}: devices names {', '.join(repeated)} more than once; give "
                         "each device once.")
    kinds = sorted({name.split(":")[0] for name in names})
    if len(kinds) > 1:
        raise ValueError(f"{who}: devices mixes {' and '.join(kinds)} devices ({value!r}); "
                         "data parallel replicas run on devices of one type.")
    return tuple(names)


def parse_devices(text):
    """``"gpu:0,gpu:1"`` as the same names, checked and normalized (``"GPU:0"`` -> ``"gpu:0"``).

    Raises:
        argparse.ArgumentTypeError: see :func:`device_names`.
    """
    try:
        return ",".join(device_names(text, who="--devices"))
    except ValueError as err:
        raise argparse.ArgumentTypeError(str(err)) from None


def parse_jit_compile(text):
    """``"auto"``, ``"true"`` or ``"false"`` (any case) as ``"auto"``, True or False.

    Raises:
        argparse.ArgumentTypeError: another value.
    """
    value = {"auto": "auto", "true": True, "false": False}.get(text.strip().lower())
    if value is None:
        raise argparse.ArgumentTypeError(f"expected auto, true or false, got {text!r}")
    return value


# ------------------------------------------------------------------------- fields


def _option(default, section, help, flag, parse=str, choices=None, metavar=None,
            cli_default=None):
    """A dataclass field carrying its CLI description (see the module docstring)."""
    metadata = {"section": section, "help": help, "flag": flag,
                "parse": None if isinstance(default, bool) else parse, "choices": choices}
    if metavar is not None:
        metadata["metavar"] = metavar
    if cli_default is not None:
        metadata["cli_default"] = cli_default
    if isinstance(default, dict):
        return dataclasses.field(default_factory=lambda: dict(default), metadata=metadata)
    return dataclasses.field(default=default, metadata=metadata)


@dataclasses.dataclass
class TrainConfig:
    """Everything :func:`keras_seg.trainer.train` needs; each field is a
    ``keras-seg train`` option."""

    # === model ===
    model: str = _option(
        "unet", "model", "Architecture name, a key of ``keras_seg.applications.MODELS`` "
        "(``keras-seg models`` lists them).", "--model")
    backbone: str | None = _option(
        None, "model", "Backbone name for the builders that take one (None: the paper's).",
        "--backbone")
    backbone_options: dict | None = _option(
        None, "model", "Options of the named backbone, e.g. ``{\"width_multiplier\": 0.25}``.",
        "--backbone-args", parse_json_dict, metavar="JSON")
    model_options: dict = _option(
        {}, "model", "Other keyword arguments of the builder, e.g. "
        "``{\"filters\": 16, \"depth\": 3}``.", "--model-args", parse_json_dict, metavar="JSON")
    # === data ===
    data: str = _option(
        "synthetic", "data", "A dataset folder, or ``\"synthetic\"`` for the built-in "
        "dataset.", "--data")
    data_format: str = _option(
        "auto", "data", "Layout of the dataset folder (``\"auto\"``: detected from the "
        "folder).", "--data-format", choices=("auto", *DATA_FORMATS))
    num_classes: int | None = _option(
        None, "data", "Classes of a ``folder`` dataset (None: the number of ``class_names`` "
        "when given, else inferred from the training masks; the validation split uses the "
        "same number). The other datasets have a fixed number of classes and refuse it.",
        "--num-classes", int)
    class_names: tuple | None = _option(
        None, "data", "Names of the classes of a ``folder`` dataset, one per class in label "
        "order: ``a,b,c`` or ``@FILE`` (one name per line) on the command line (None: "
        "``class_0``, ``class_1``, ...). Stored in the run's ``config.json`` and used by the "
        "IoU table and ``eval.json``; the other datasets name their classes themselves and "
        "refuse it.", "--class-names", parse_class_names, metavar="A,B,C|@FILE")
    train_split: str = _option("train", "data", "Name of the training split.",
                               "--train-split")
    val_split: str = _option("val", "data", "Name of the validation split.", "--val-split")
    synthetic_size: int = _option(96, "data", "Image side of the synthetic dataset.",
                                  "--synthetic-size", int)
    synthetic_train: int = _option(512, "data", "Number of synthetic training images.",
                                   "--synthetic-train", int)
    synthetic_val: int = _option(128, "data", "Number of synthetic validation images.",
                                 "--synthetic-val", int)
    synthetic_options: dict = _option(
        {}, "data", "Other :class:`~keras_seg.data.SyntheticShapes` arguments, the same "
        "for every split, e.g. ``{\"shapes\": [\"disc\", \"square\"], \"clutter\": 0.5}``.",
        "--synthetic-args", parse_json_dict, metavar="JSON")
    ignore_index: int = _option(
        255, "data", "Label value of unlabeled pixels, which no loss or metric counts and "
        "augmentation pads masks with. A ``folder`` dataset is read with it; the other "
        "readers and the synthetic data mark unlabeled pixels with 255, and another value "
        "is refused for them.", "--ignore-index", int)
    # === augmentation ===
    augment: bool = _option(True, "augmentation", "Random flip and scale (+ crop) of the "
                            "training pairs.", "--no-augment")
    crop_size: tuple | None = _option(
        None, "augmentation", "``(H, W)`` (or one int) random crop of the training pairs "
        "(None: whole images, which must then share one size; with random scaling, crops "
        "of the first image's size).", "--crop", parse_size, metavar="H[,W]")
    scale_range: tuple = _option(
        (0.75, 1.25), "augmentation", "Random scale range of the augmentation "
        "(``(1, 1)``: no scaling).", "--scale-range", parse_range, metavar="LOW,HIGH")
    rotation: float = _option(0.0, "augmentation", "Largest random rotation in degrees "
                              "(0: none; PSPNet used 10).", "--rotation", float)
    elastic: bool = _option(False, "augmentation", "U-Net's elastic deformation of the "
                            "training pairs.", "--elastic")
    # === optimization ===
    optimizer: str = _option(
        "adam", "optimization", "``\"adam\"`` (AdamW with a weight decay), ``\"sgd\"`` or "
        "``\"rmsprop\"`` (LinkNet).", "--optimizer", choices=OPTIMIZERS)
    momentum: float = _option(0.9, "optimization", "SGD momentum in [0, 1) (0.9 in most "
                              "papers, 0.99 in FCN and U-Net).", "--momentum", float)
    lr: float = _option(1e-3, "optimization", "Initial learning rate.", "--lr", float)
    weight_decay: float = _option(0.0, "optimization", "Decoupled weight decay, >= 0 (0: none).",
                                  "--weight-decay", float)
    schedule: str = _option(
        "poly", "optimization", "Learning-rate schedule: ``\"poly\"`` (lr * (1 - "
        "step/total)^0.9, DeepLab / PSPNet), ``\"cosine\"`` or ``\"constant\"``.",
        "--schedule", choices=SCHEDULES)
    warmup_steps: int = _option(
        0, "optimization", "Steps of linear learning-rate warm-up at the start of the run "
        "(0: none): step k (from 0) gets the schedule's rate times min(1, (k + 1) / "
        "warmup_steps) (``keras_seg.schedules.LinearWarmup``); fewer than the run's steps.",
        "--warmup-steps", int)
    loss: str = _option("ce", "optimization", "Loss, a name of ``keras_seg.losses.LOSSES``.",
                        "--loss", choices=LOSSES)
    class_weighting: str = _option(
        "none", "optimization", "Per-class weights of the cross-entropy, computed from the "
        "training masks: ``\"none\"``, ``\"median\"`` (median frequency, SegNet) or "
        "``\"enet\"`` (1 / ln(1.02 + p), ENet).", "--class-weighting", choices=CLASS_WEIGHTING)
    boundary_weights: bool = _option(
        False, "optimization", "Weight the pixels by U-Net's boundary weight map (w0 = 10, "
        "sigma = 5), as per-pixel sample weights.", "--boundary-weights")
    epochs: int = _option(
        10, "optimization", "Training epochs in all, including the epochs done before a "
        "resume. A resume may raise it (or ``iterations``, ``steps_per_epoch``, ``lr``, "
        "``schedule``): the learning-rate schedule is rebuilt over the new number of steps "
        "in all, so every later step gets the learning rate a fresh run of that length "
        "would have at that step (with ``\"poly\"`` it rises again and reaches 0 at the "
        "new last step).", "--epochs", int)
    batch_size: int = _option(8, "optimization", "Images per step.", "--batch-size", int)
    steps_per_epoch: int | None = _option(
        None, "optimization", "Cap on the steps of an epoch, a positive int (None: one pass "
        "over the training set).", "--steps-per-epoch", int)
    iterations: int | None = _option(
        None, "optimization", "Train for this many steps in all (the papers count "
        "iterations), a positive int; overrides ``epochs`` when set (``epochs`` = "
        "iterations / steps per epoch, rounded up).", "--iterations", int)
    # === devices ===
    distribute: str = _option(
        "none", "devices", "``\"none\"``: train on one device. ``\"data\"``: data parallel, "
        "each step's ``batch_size`` images split evenly over the devices (``devices``, else "
        "every local accelerator, else the CPU devices), over several processes when the "
        "launch environment says so (JAX: ``KERAS_DISTRIBUTION_JOB_ADDRESSES`` / "
        "``_NUM_PROCESSES`` / ``_PROCESS_ID`` or ``JAX_COORDINATOR_ADDRESS`` / "
        "``JAX_NUM_PROCESSES`` / ``JAX_PROCESS_ID``; TensorFlow: ``TF_CONFIG`` naming "
        "several workers). JAX runs ``keras.distribution.DataParallel``, TensorFlow "
        "``tf.distribute.MirroredStrategy`` (``MultiWorkerMirroredStrategy`` across "
        "workers); PyTorch is refused: Keras 3.15 cannot fit it. With several devices the "
        "last partial batch of an epoch is skipped; with one device the run is that of "
        "``\"none\"``.", "--distribute",
        choices=DISTRIBUTE)
    devices: str | None = _option(
        None, "devices", "The devices of ``distribute=\"data\"``, as "
        "``keras.distribution.list_devices()`` names them: ``TYPE:INDEX`` separated by commas, "
        "e.g. ``gpu:0,gpu:1`` (None: every local accelerator, else the CPU devices).",
        "--devices", parse_devices, metavar="TYPE:N,...")
    sync_batchnorm: bool = _option(
        False, "devices", "BatchNormalization statistics over the global batch rather than "
        "each replica's share: on TensorFlow every BatchNormalization layer runs with "
        "``synchronized=True`` while training (checkpoints keep False, so they load on any "
        "backend); JAX ``DataParallel`` computes them over the global batch anyway, and one "
        "device has nothing to synchronize (both said once).", "--sync-batchnorm")
    precision: str = _option(
        "float32", "devices", "Keras dtype policy of the model: ``\"float32\"``, "
        "``\"mixed_float16\"`` (float16 compute, float32 variables, the loss scaled by "
        "Keras' ``LossScaleOptimizer``) or ``\"mixed_bfloat16\"``; the logits stay float32. "
        "Set while the model is built and trained, then the previous global policy is "
        "restored; checkpoints keep it in their layers.", "--precision", choices=PRECISIONS)
    jit_compile: str | bool = _option(
        "auto", "devices", "XLA compilation of the steps, passed to ``model.compile``: "
        "``\"auto\"`` (Keras' default: on for JAX, for TensorFlow when the model supports it "
        "and no ``tf.distribute`` strategy runs, off for PyTorch), True or False "
        "(checkpoints keep what ``\"auto\"`` gives).", "--jit-compile", parse_jit_compile,
        choices=JIT_COMPILE, metavar="auto|true|false")
    # === run ===
    output: str = _option("runs/unet", "run", "Run folder.", "--output",
                          cli_default="runs/MODEL")
    seed: int = _option(0, "run", "Random seed (model initialization, shuffling, "
                        "augmentation, the synthetic dataset).", "--seed", int)
    workers: int = _option(1, "run", "Threads preparing training batches while the model "
                           "trains (Keras ``PyDataset`` workers; 1: batches are made between "
                           "steps).", "--workers", int)
    resume: bool = _option(
        True, "run", "Continue from ``output/last.keras`` when it exists (False: start over, "
        "removing the folder's checkpoints, logs and state). A resume refuses changed "
        "settings other than ``epochs``, ``iterations``, ``steps_per_epoch``, ``lr``, "
        "``schedule``, ``warmup_steps``, ``workers``, ``verbose`` and the ``devices`` section "
        "(``distribute``, ``devices``, ``sync_batchnorm``, ``precision``, ``jit_compile``): "
        "the others cannot change in the middle of a run.",
        "--no-resume")
    verbose: int = _option(1, "run", "Keras ``fit`` verbosity (0 = silent, 1 = progress "
                           "bar, 2 = one line per epoch).", "--verbose", int, choices=(0, 1, 2))

    def validate(self):
        """Check every field; return a validated copy with normalized values.

        The copy has ``crop_size`` as an ``(H, W)`` tuple (an int ``n`` becomes
        ``(n, n)``), ``scale_range`` as a tuple, ``class_names`` as a tuple of
        strings and ``devices`` as ``"type:index,..."`` (lower case); this config is left
        unchanged.

        Returns:
            A new :class:`TrainConfig`.

        Raises:
            ValueError: naming the first bad field and its allowed values.
        """
        from keras_seg import applications, validation

        if self.model not in applications.MODELS:
            raise ValueError(f"Unknown model {self.model!r}; choose one of "
                             f"{', '.join(applications.available())}.")
        for field in dataclasses.fields(self):
            allowed = field.metadata["choices"]
            if allowed is not None and getattr(self, field.name) not in allowed:
                raise ValueError(f"{field.name}={getattr(self, field.name)!r} is not one of "
                                 f"{allowed}.")
        for name in ("epochs", "batch_size", "synthetic_size", "synthetic_train",
                     "synthetic_val", "workers"):
            validation.positive_int("TrainConfig", name, getattr(self, name))
        unset = {"steps_per_epoch": "one pass over the training set per epoch",
                 "iterations": "train for epochs"}
        for name, meaning in unset.items():
            value = getattr(self, name)
            if value is not None:
                try:
                    validation.positive_int("TrainConfig", name, value)
                except ValueError:
                    raise ValueError(f"TrainConfig: {name} must be a positive int, or None "
                                     f"to leave it unset ({meaning}); got {value!r}.") from None
        if isinstance(self.warmup_steps, bool) or not isinstance(self.warmup_steps, int) \
                or self.warmup_steps < 0:
            raise ValueError(f"TrainConfig: warmup_steps must be an int >= 0 (0: no warm-up), "
                             f"got {self.warmup_steps!r}.")
        if not _is_number(self.lr) or not self.lr > 0:
            raise ValueError(f"TrainConfig: lr must be a number > 0, got {self.lr!r}.")
        if not _is_number(self.weight_decay) or not self.weight_decay >= 0:
            raise ValueError(f"TrainConfig: weight_decay must be a number >= 0 (0: no weight "
                             f"decay), got {self.weight_decay!r}.")
        if not _is_number(self.momentum) or not 0 <= self.momentum < 1:
            raise ValueError(f"TrainConfig: momentum must be a number in [0, 1) (0.9 is usual), "
                             f"got {self.momentum!r}.")
        if not (self.jit_compile == "auto" or isinstance(self.jit_compile, bool)):
            raise ValueError(f"TrainConfig: jit_compile must be 'auto', True or False, got "
                             f"{self.jit_compile!r}.")
        if not isinstance(self.sync_batchnorm, bool):
            raise ValueError(f"TrainConfig: sync_batchnorm must be True or False, got "
                             f"{self.sync_batchnorm!r}.")
        devices = device_names(self.devices)
        if devices is not None and self.distribute != "data":
            raise ValueError(f"TrainConfig: devices={self.devices!r} needs distribute='data' "
                             "(--distribute data); with distribute='none' the run uses one "
                             "device.")
        if self.num_classes is not None:
            validation.num_classes("TrainConfig", self.num_classes)
        class_names = check_class_names(self.class_names, self.num_classes)
        fixed = self.fixed_data_format()
        if fixed is not None:
            given = [f"{name}={getattr(self, name)!r}" for name in ("num_classes", "class_names")
                     if getattr(self, name) is not None]
            if given:
                raise ValueError(
                    f"TrainConfig: {' and '.join(given)} given for the {fixed} dataset "
                    f"{self.data!r}, which has its own classes and names: these options are "
                    "for 'folder' datasets only. Leave them out (--num-classes / "
                    "--class-names).")
        reserved = {"split", "num_images", "image_size", "seed"} & set(
            self.synthetic_options or {})
        if reserved:
            raise ValueError(f"synthetic_options may not set {sorted(reserved)}: use "
                             "synthetic_size, synthetic_train / synthetic_val and seed.")
        crop_size = None if self.crop_size is None else _pair(self.crop_size, "crop_size")
        try:
            scale_range = tuple(float(v) for v in self.scale_range)
        except (TypeError, ValueError):
            scale_range = ()
        if len(scale_range) != 2 or not 0 < scale_range[0] <= scale_range[1]:
            raise ValueError(f"scale_range must be (low, high) with 0 < low <= high, got "
                             f"{self.scale_range!r}.")
        return dataclasses.replace(self, crop_size=crop_size, scale_range=scale_range,
                                   class_names=class_names,
                                   devices=None if devices is None else ",".join(devices))

    def fixed_data_format(self):
        """The format of ``data`` when it is known without reading the disk and is not
        ``"folder"`` (``"synthetic"``, ``"voc"``, ...), else None.

        Those datasets have a fixed number of classes and their own class names.
        """
        if self.data_format == "auto":
            return "synthetic" if self.data == "synthetic" else None
        return None if self.data_format == "folder" else self.data_format

    def resolved_data_format(self):
        """The format of ``data``: ``data_format``, or the detected one when it is
        ``"auto"`` (:func:`keras_seg.data.detect_data_format`).

        Raises:
            FileNotFoundError: ``data_format`` is ``"auto"`` and ``data`` is neither a
                folder nor ``"synthetic"``.
        """
        from keras_seg.data import detect_data_format

        return detect_data_format(self.data) if self.data_format == "auto" else self.data_format

    def dataset(self, split, num_classes=None):
        """The :class:`~keras_seg.data.SegmentationDataset` of ``self.data`` for ``split``.

        A thin wrapper of :func:`keras_seg.data.load_dataset`: the synthetic dataset gets
        ``synthetic_size``, ``synthetic_train`` (for the ``"train"`` split) or
        ``synthetic_val`` (any other split) images, ``seed`` and ``synthetic_options``; a
        ``folder`` dataset gets ``num_classes`` and ``class_names``.

        Args:
            split: split name (``train_split``, ``val_split``, ``"test"``, ...).
            num_classes: classes of a ``folder`` dataset (None: ``self.num_classes``, and
                when that is None too, ``len(class_names)`` or inferred from the masks).
                Only for a ``folder`` dataset.

        Raises:
            ValueError: the dataset marks unlabeled pixels with another value than
                ``ignore_index``, or ``num_classes`` / ``class_names`` are given for a
                dataset that is not a ``folder`` one (see
                :func:`keras_seg.data.load_dataset`).
        """
        from keras_seg.data import load_dataset

        count = self.synthetic_train if split == "train" else self.synthetic_val
        synthetic = {"num_images": count, "image_size": (self.synthetic_size,) * 2,
                     "seed": self.seed, **(self.synthetic_options or {})}
        return load_dataset(self.data, split, data_format=self.data_format,
                            num_classes=num_classes or self.num_classes,
                            class_names=self.class_names, ignore_index=self.ignore_index,
                            synthetic=synthetic)


def _is_number(value):
    return isinstance(value, numbers.Real) and not isinstance(value, bool)


def check_class_names(names, num_classes, who="TrainConfig"):
    """``names`` as a tuple of distinct non-empty strings (None stays None).

    Args:
        names: a list or tuple of class names, or None.
        num_classes: the number of classes when known (None: any number of names).
        who: name shown first in the messages.

    Raises:
        ValueError: not a list of distinct non-empty strings, or not ``num_classes`` of
            them.
    """
    if names is None:
        return None
    if isinstance(names, str) or not isinstance(names, (list, tuple)):
        raise ValueError(f"{who}: class_names must be a list of names, e.g. ['road', 'car'] "
                         f"(on the command line a,b,c or @FILE), got {names!r}.")
    names = tuple(names)
    bad = [name for name in names if not isinstance(name, str) or not name.strip()]
    if not names or bad:
        raise ValueError(f"{who}: class_names must be non-empty strings, got {list(names)!r}.")
    names = tuple(name.strip() for name in names)
    repeated = sorted({name for name in names if names.count(name) > 1})
    if repeated:
        raise ValueError(f"{who}: class_names repeats {repeated}; give each class its own "
                         "name.")
    if num_classes is not None and len(names) != num_classes:
        raise ValueError(f"{who}: {len(names)} class_names for {num_classes} classes; give "
                         "one name per class, in label order.")
    return names


def _pair(value, what):
    if isinstance(value, int):
        value = (value, value)
    value = tuple(int(v) for v in value)
    if len(value) != 2 or min(value) < 1:
        raise ValueError(f"{what} must be a positive int or (height, width), got {value!r}.")
    return value


FIELDS = {field.name: field for field in dataclasses.fields(TrainConfig)}

#: the field names of each section, in declaration order
SECTIONS = {section: tuple(name for name, field in FIELDS.items()
                           if field.metadata["section"] == section)
            for section in SECTION_NAMES}

#: the settings a resumed run may change: applied (the learning-rate schedule is rebuilt
#: for the new number of steps in all; the model is built under the new ``devices`` section
#: and takes the variables of ``last.keras``) and recorded in ``config.json``'s ``"resumes"``
RESUME_CHANGEABLE = ("epochs", "iterations", "steps_per_epoch", "lr", "schedule",
                     "warmup_steps", "workers",
                     "verbose", "distribute", "devices", "sync_batchnorm", "precision",
                     "jit_compile")

#: the fields a resume does not compare: ``output`` is the run folder itself, ``resume``
#: the request to continue
RESUME_IGNORED = ("output", "resume")

#: the settings a resume refuses to change (the others, and the number and names of the
#: classes as read from the data): the model and its weights, the data it has seen, the
#: loss and the optimizer's state all depend on them
RESUME_FIXED = tuple(name for name in FIELDS
                     if name not in RESUME_CHANGEABLE and name not in RESUME_IGNORED)


def _attributes_docstring():
    lines = []
    for section in SECTION_NAMES:
        for name in SECTIONS[section]:
            text = f"{name}: {FIELDS[name].metadata['help']}"
            lines.extend(textwrap.wrap(text, 88, initial_indent=" " * 8,
                                       subsequent_indent=" " * 12, break_on_hyphens=False,
                                       break_long_words=False))
    return "\n".join(lines)


TrainConfig.__doc__ += f"""

    ``TrainConfig(model="unet", epochs=5, ...)`` sets any of them. They are listed below
    by section (:data:`SECTIONS`): {", ".join(SECTION_NAMES)}.

    Attributes:
{_attributes_docstring()}
    """


# --------------------------------------------------------------------- command line


def _plain(text):
    """``text`` without its reStructuredText markup, for ``--help``."""

    def role(match):  # :class:`~a.b.C` -> C, :func:`a.b` -> a.b
        target = match.group(1)
        return target[1:].rsplit(".", 1)[-1] if target.startswith("~") else target

    text = re.sub(r":\w+:`([^`]+)`", role, text)
    return text.replace("``", "").replace("%", "%%")


def _default_text(field):
    if "cli_default" in field.metadata:
        return field.metadata["cli_default"]
    if field.default_factory is not dataclasses.MISSING:
        return json.dumps(field.default_factory())
    default = field.default
    if isinstance(default, dict):
        return json.dumps(default)
    if isinstance(default, tuple):
        return ",".join(str(v) for v in default)
    return str(default)


def add_config_arguments(parser, names):
    """Add the command-line flags of the :class:`TrainConfig` fields ``names`` to ``parser``.

    Every flag has ``dest`` = the field name and the default ``argparse.SUPPRESS``: a flag
    not given is absent from the parsed namespace, so the field keeps its dataclass
    default (shown in the help text). A boolean field on by default gets a ``--no-...``
    flag that turns it off; one off by default gets a flag that turns it on.

    Args:
        parser: an ``argparse.ArgumentParser`` (or argument group).
        names: field names, e.g. ``SECTIONS["data"]``.

    Raises:
        ValueError: a name that is not a field of :class:`TrainConfig`.
    """
    unknown = [name for name in names if name not in FIELDS]
    if unknown:
        raise ValueError(f"{unknown} are not TrainConfig fields; valid fields: "
                         f"{sorted(FIELDS)}.")
    for name in names:
        field = FIELDS[name]
        meta = field.metadata
        if isinstance(field.default, bool):
            state = "on by default; this flag turns it off" if field.default else "off by default"
            parser.add_argument(meta["flag"], dest=name, default=argparse.SUPPRESS,
                                action="store_false" if field.default else "store_true",
                                help=_plain(f"{meta['help']} ({state})"))
            continue
        help_text = _plain(f"{meta['help']} (default: {_default_text(field)})")
        kwargs = {"dest": name, "default": argparse.SUPPRESS, "type": meta["parse"],
                  "help": help_text}
        if meta["choices"] is not None:
            kwargs["choices"] = meta["choices"]
        if "metavar" in meta:
            kwargs["metavar"] = meta["metavar"]
        parser.add_argument(meta["flag"], **kwargs)


def config_values(args, names=None):
    """The :class:`TrainConfig` field values given on the command line.

    Args:
        args: an ``argparse.Namespace`` parsed by a parser that has
            :func:`add_config_arguments` flags.
        names: the field names to pick (None: every field).

    Returns:
        ``{field name: value}`` of the flags that were given (the others are absent).
    """
    names = FIELDS if names is None else names
    return {name: value for name, value in vars(args).items() if name in names}

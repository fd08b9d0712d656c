"""The training and evaluation driver behind ``keras-seg train / evaluate / demo``.

The same functions run the paper recipes in ``applications/`` and can be called from
Python::

    from keras_seg.trainer import TrainConfig, train
    result = train(TrainConfig(model="unet", data="synthetic", epochs=5, output="runs/unet"))
    print(result["val_miou"])

What :func:`train` writes to ``config.output``:

- ``config.json``  the configuration it ran with;
- ``log.csv``      one row per epoch: loss, mean IoU, validation loss and mean IoU, lr;
- ``tensorboard/`` the same curves for TensorBoard (when TensorFlow is installed);
- ``last.keras``   the model (with optimizer state) after the last finished epoch, and
  ``state.json`` that epoch's number: running the same command again resumes from it;
- ``best.keras``   the model with the best validation mean IoU;
- ``eval.json``    the final evaluation of ``best.keras`` on the validation split.
"""

import dataclasses
import json
import math
import os
import time

import keras
import numpy as np

from keras_seg import applications
from keras_seg.model_base import inference_model

#: what ``--data-format auto`` recognizes, checked in this order
DATA_FORMATS = ("synthetic", "voc", "cityscapes", "camvid", "folder")
LOSSES = ("ce", "dice", "focal", "lovasz", "ce+dice")
SCHEDULES = ("poly", "constant", "cosine")
CLASS_WEIGHTING = ("none", "median", "enet")


@dataclasses.dataclass
class TrainConfig:
    """Everything :func:`train` needs; each field is a ``keras-seg train`` option.

    Attributes:
        model: architecture name, a key of ``keras_seg.applications.MODELS``.
        backbone: backbone name for builders that take one (None: the paper's).
        backbone_options: dict passed as ``backbone_options`` (e.g. width_multiplier).
        model_options: other builder keyword arguments (e.g. ``{"filters": 16}``).
        data: ``"synthetic"`` (the built-in dataset) or a dataset folder.
        data_format: one of :data:`DATA_FORMATS` or ``"auto"`` (detected from the folder).
        num_classes: classes of a ``folder`` dataset (None: inferred from the training
            masks, and the validation split uses the same number).
        train_split, val_split: split names of the dataset.
        synthetic_size: image side of the synthetic dataset.
        synthetic_train, synthetic_val: number of synthetic train / val images.
        synthetic_options: other :class:`~keras_seg.data.SyntheticShapes` arguments
            (e.g. ``{"shapes": ["disc", "square", "triangle", "ring", "cross"],
            "clutter": 0.5}``), the same for every split.
        epochs: training epochs (total, including epochs done before a resume).
        batch_size: images per step.
        crop_size: ``(H, W)`` random crop for training (None: whole images, which must
            then share one size; with random scaling, crops of the first image's size).
        augment: random flip and scale (+ crop) of training pairs.
        scale_range: random scale range of the augmentation.
        rotation: maximum random rotation in degrees (0: none; PSPNet used 10).
        elastic: U-Net's elastic deformation of training pairs.
        boundary_weights: weight pixels by U-Net's boundary weight map (w0 = 10,
            sigma = 5) as per-pixel sample weights.
        optimizer: ``"adam"``, ``"sgd"`` or ``"rmsprop"`` (LinkNet).
        momentum: SGD momentum (0.9 in most papers, 0.99 in FCN and U-Net).
        lr: initial learning rate.
        weight_decay: decoupled weight decay (0: none).
        schedule: ``"poly"`` (lr * (1 - step/total)^0.9, DeepLab/PSPNet), ``"cosine"``
            or ``"constant"``.
        loss: one of :data:`LOSSES`.
        class_weighting: ``"none"``, ``"median"`` (median frequency, SegNet) or ``"enet"``
            (1 / ln(1.02 + p), ENet), computed from the training masks.
        ignore_index: label value no loss or metric counts.
        steps_per_epoch: cap on steps per epoch (None: one pass over the training set).
        iterations: train for this many steps in all (the papers count iterations);
            overrides ``epochs`` when set.
        output: run folder.
        seed: random seed (model init, shuffling, augmentation).
        workers: threads preparing training batches while the model trains (Keras
            ``PyDataset`` workers; 1: batches are made between steps).
        resume: continue from ``output/last.keras`` when it exists.
        verbose: Keras fit verbosity (1 = progress bar, 2 = one line per epoch).
    """

    model: str = "unet"
    backbone: str | None = None
    backbone_options: dict | None = None
    model_options: dict = dataclasses.field(default_factory=dict)
    data: str = "synthetic"
    data_format: str = "auto"
    num_classes: int | None = None
    train_split: str = "train"
    val_split: str = "val"
    synthetic_size: int = 96
    synthetic_train: int = 512
    synthetic_val: int = 128
    synthetic_options: dict = dataclasses.field(default_factory=dict)
    epochs: int = 10
    batch_size: int = 8
    crop_size: tuple | None = None
    augment: bool = True
    scale_range: tuple = (0.75, 1.25)
    rotation: float = 0.0
    elastic: bool = False
    boundary_weights: bool = False
    optimizer: str = "adam"
    momentum: float = 0.9
    lr: float = 1e-3
    weight_decay: float = 0.0
    schedule: str = "poly"
    loss: str = "ce"
    class_weighting: str = "none"
    ignore_index: int = 255
    steps_per_epoch: int | None = None
    iterations: int | None = None
    output: str = "runs/unet"
    seed: int = 0
    workers: int = 1
    resume: bool = True
    verbose: int = 1

    def validate(self):
        """Raise ``ValueError`` naming the first bad field and its allowed values."""
        if self.model not in applications.MODELS:
            raise ValueError(f"Unknown model {self.model!r}; choose one of "
                             f"{', '.join(applications.available())}.")
        for field, allowed in (("data_format", ("auto", *DATA_FORMATS)), ("loss", LOSSES),
                               ("schedule", SCHEDULES), ("optimizer", ("adam", "sgd", "rmsprop")),
                               ("class_weighting", CLASS_WEIGHTING)):
            if getattr(self, field) not in allowed:
                raise ValueError(f"{field}={getattr(self, field)!r} is not one of {allowed}.")
        for field in ("epochs", "batch_size", "synthetic_size", "synthetic_train",
                      "synthetic_val", "workers"):
            value = getattr(self, field)
            if not isinstance(value, int) or value < 1:
                raise ValueError(f"{field} must be a positive int, got {value!r}.")
        if not self.lr > 0:
            raise ValueError(f"lr must be > 0, got {self.lr!r}.")
        reserved = {"split", "num_images", "image_size", "seed"} & set(
            self.synthetic_options or {})
        if reserved:
            raise ValueError(f"synthetic_options may not set {sorted(reserved)}: use "
                             "synthetic_size, synthetic_train / synthetic_val and seed.")
        if self.crop_size is not None:
            self.crop_size = _pair(self.crop_size, "crop_size")
        return self


def _pair(value, what):
    if isinstance(value, int):
        value = (value, value)
    value = tuple(int(v) for v in value)
    if len(value) != 2 or min(value) < 1:
        raise ValueError(f"{what} must be a positive int or (height, width), got {value!r}.")
    return value


# ---------------------------------------------------------------------------- data


def detect_data_format(path):
    """Guess the layout of a dataset folder: voc, cityscapes, camvid or folder."""
    if path == "synthetic":
        return "synthetic"
    if not os.path.isdir(path):
        raise FileNotFoundError(f"Dataset folder {path!r} does not exist; pass a folder or "
                                "'synthetic' for the built-in dataset.")
    names = set(os.listdir(path))
    voc_roots = [path, os.path.join(path, "VOC2012"), os.path.join(path, "VOCdevkit", "VOC2012")]
    if any(os.path.isdir(os.path.join(r, "SegmentationClass")) for r in voc_roots):
        return "voc"
    if {"leftImg8bit", "gtFine"} <= names:
        return "cityscapes"
    if {"train", "trainannot"} <= names:
        return "camvid"
    return "folder"


def load_dataset(config, split, num_classes=None):
    """The :class:`~keras_seg.data.SegmentationDataset` of ``config.data`` for ``split``.

    ``num_classes`` (or ``config.num_classes``) is passed to a ``folder`` dataset, whose
    class count is otherwise inferred from its masks.
    """
    from keras_seg import data

    fmt = config.data_format
    if fmt == "auto":
        fmt = detect_data_format(config.data)
    if fmt == "synthetic":
        count = config.synthetic_train if split == "train" else config.synthetic_val
        return data.SyntheticShapes(split=split, num_images=count,
                                    image_size=(config.synthetic_size,) * 2, seed=config.seed,
                                    **(config.synthetic_options or {}))
    if fmt == "folder":
        return data.FolderDataset(config.data, split=split,
                                  num_classes=num_classes or config.num_classes)
    readers = {"voc": data.VOCSegmentation, "cityscapes": data.Cityscapes, "camvid": data.CamVid}
    return readers[fmt](config.data, split=split)


def make_class_weights(dataset, scheme):
    """Per-class loss weights of ``scheme`` ("none", "median", "enet") from the masks."""
    if scheme == "none":
        return None
    from keras_seg.data import class_weights as weights

    counts = weights.class_pixel_counts(dataset, dataset.num_classes,
                                        ignore_index=dataset.ignore_index)
    if scheme == "median":
        return [float(w) for w in weights.median_frequency_weights(counts)]
    return [float(w) for w in weights.enet_class_weights(counts)]


# --------------------------------------------------------------------------- model


def build_model(name, num_classes, backbone=None, backbone_options=None, **options):
    """``keras_seg.applications.MODELS[name](num_classes, ...)`` with the optional backbone."""
    if name not in applications.MODELS:
        raise ValueError(f"Unknown model {name!r}; choose one of "
                         f"{', '.join(applications.available())}.")
    kwargs = dict(options)
    if backbone is not None:
        kwargs["backbone"] = backbone
    if backbone_options:
        kwargs["backbone_options"] = backbone_options
    return applications.MODELS[name](num_classes=num_classes, **kwargs)


def make_loss(name, ignore_index, class_weights=None):
    """The ``keras_seg.losses`` object for a :data:`LOSSES` name."""
    from keras_seg import losses

    ce = losses.SegmentationCrossEntropy(ignore_index=ignore_index, class_weights=class_weights)
    if name == "ce":
        return ce
    if name == "dice":
        return losses.DiceLoss(ignore_index=ignore_index)
    if name == "focal":
        return losses.FocalLoss(ignore_index=ignore_index)
    if name == "lovasz":
        return losses.LovaszSoftmax(ignore_index=ignore_index)
    return losses.CombinedLoss([ce, losses.DiceLoss(ignore_index=ignore_index)], [1.0, 1.0])


def make_optimizer(config, total_steps):
    """Optimizer with the configured learning-rate schedule over ``total_steps`` steps."""
    if config.schedule == "poly":
        lr = keras.optimizers.schedules.PolynomialDecay(
            config.lr, decay_steps=max(total_steps, 1), end_learning_rate=0.0, power=0.9)
    elif config.schedule == "cosine":
        lr = keras.optimizers.schedules.CosineDecay(config.lr, decay_steps=max(total_steps, 1))
    else:
        lr = config.lr
    decay = config.weight_decay or None
    if config.optimizer == "sgd":
        return keras.optimizers.SGD(lr, momentum=config.momentum, weight_decay=decay)
    if config.optimizer == "rmsprop":
        return keras.optimizers.RMSprop(lr, weight_decay=decay)
    return keras.optimizers.Adam(lr, weight_decay=decay) if decay is None else \
        keras.optimizers.AdamW(lr, weight_decay=decay)


# ------------------------------------------------------------------------- callbacks


class _LastCheckpoint(keras.callbacks.Callback):
    """Saves ``last.keras`` then ``state.json`` at every epoch end, atomically.

    ``state.json`` is written only after the model file is complete, so a process
    killed at any moment leaves a consistent pair to resume from.
    """

    def __init__(self, folder, best=float("-inf")):
        super().__init__()
        self.folder = folder
        self.best = best

    def on_epoch_end(self, epoch, logs=None):
        path = os.path.join(self.folder, "last.keras")
        tmp = os.path.join(self.folder, "last.tmp.keras")
        self.model.save(tmp)
        os.replace(tmp, path)
        logs = {k: float(v) for k, v in (logs or {}).items()}
        best = max(self.best, logs.get("val_mean_iou", float("-inf")))
        self.best = best
        state = {"epoch": epoch + 1, "best_val_mean_iou": best, "logs": logs}
        _write_json(os.path.join(self.folder, "state.json"), state)


class _LearningRateLogger(keras.callbacks.Callback):
    """Adds the current learning rate to the epoch logs (so it lands in log.csv)."""

    def on_epoch_end(self, epoch, logs=None):
        if logs is not None:
            opt = self.model.optimizer
            lr = opt.learning_rate
            logs["lr"] = float(keras.ops.convert_to_numpy(lr))


def _write_json(path, obj):
    tmp = path + ".tmp"
    with open(tmp, "w") as f:
        json.dump(obj, f, indent=2, sort_keys=True)
    os.replace(tmp, path)


def _tensorboard_callback(folder):
    try:
        import tensorboard  # noqa: F401
        import tensorflow  # noqa: F401
    except ImportError:
        print("TensorBoard logs skipped: TensorFlow and TensorBoard are not installed "
              "(pip install keras-seg[tensorflow]); log.csv has the same curves.")
        return None
    return keras.callbacks.TensorBoard(os.path.join(folder, "tensorboard"), write_graph=False)


# --------------------------------------------------------------------------- train


def train(config):
    """Train ``config.model`` on ``config.data`` and evaluate the best checkpoint.

    Args:
        config: a :class:`TrainConfig`.

    Returns:
        A dict: ``history`` (per-epoch logs of this run), ``epochs_done``,
        ``resumed_from`` (epoch the run resumed from, 0 for a fresh run),
        ``val_miou`` and ``evaluation`` (the :func:`evaluate` result of ``best.keras``
        on the validation split), ``best_path``, ``last_path``, ``seconds``.
    """
    from keras_seg import metrics
    from keras_seg.data import Augment, SegmentationPipeline, unet_weight_map

    config.validate()
    os.makedirs(config.output, exist_ok=True)
    keras.utils.set_random_seed(config.seed)
    train_ds = load_dataset(config, config.train_split)
    num_classes = train_ds.num_classes
    val_ds = load_dataset(config, config.val_split, num_classes=num_classes)
    augment = None
    if config.augment:
        scale = tuple(config.scale_range) if tuple(config.scale_range) != (1.0, 1.0) else None
        augment = Augment(flip=0.5, scale=scale, rotation=config.rotation,
                          elastic=config.elastic, ignore_index=config.ignore_index)
    crop_size = config.crop_size
    if augment is not None and scale is not None and crop_size is None:
        # random scaling changes the size: crop back to the first image's size so that
        # batches keep one shape (TensorFlow fixes a PyDataset's batch shape)
        crop_size = tuple(np.asarray(train_ds[0][0]).shape[:2])
    weight_fn = None
    if config.boundary_weights:
        def weight_fn(mask):
            return unet_weight_map(mask, ignore_index=config.ignore_index)
    train_data = SegmentationPipeline(train_ds, config.batch_size, augment=augment,
                                      crop_size=crop_size, shuffle=True,
                                      seed=config.seed, sample_weight_fn=weight_fn,
                                      workers=config.workers)
    val_data = SegmentationPipeline(val_ds, 1 if config.crop_size else config.batch_size,
                                    shuffle=False)
    steps = len(train_data)
    if config.steps_per_epoch:
        steps = min(steps, config.steps_per_epoch)
    if config.iterations:
        config.epochs = max(1, math.ceil(config.iterations / steps))

    last_path = os.path.join(config.output, "last.keras")
    state_path = os.path.join(config.output, "state.json")
    best_path = os.path.join(config.output, "best.keras")
    initial_epoch, best_so_far = 0, float("-inf")
    if config.resume and os.path.exists(last_path) and os.path.exists(state_path):
        with open(state_path) as f:
            state = json.load(f)
        initial_epoch = int(state["epoch"])
        best_so_far = float(state.get("best_val_mean_iou", float("-inf")))
        model = keras.saving.load_model(last_path)
        print(f"Resuming from {last_path} (epoch {initial_epoch} of {config.epochs} done).")
    else:
        model = build_model(config.model, num_classes, config.backbone,
                            config.backbone_options, **config.model_options)
        class_weights = make_class_weights(train_ds, config.class_weighting)
        model.compile(
            optimizer=make_optimizer(config, steps * config.epochs),
            loss=make_loss(config.loss, config.ignore_index, class_weights),
            metrics=[metrics.MeanIoU(num_classes, ignore_index=config.ignore_index)],
        )
    record = dataclasses.asdict(config)
    record.update(num_classes=num_classes, backend=keras.backend.backend(),
                  keras_version=keras.__version__)
    _write_json(os.path.join(config.output, "config.json"), record)

    callbacks = [
        _LearningRateLogger(),
        keras.callbacks.CSVLogger(os.path.join(config.output, "log.csv"),
                                  append=initial_epoch > 0),
        # after a resume, only an epoch better than the best before the interruption
        # replaces best.keras
        keras.callbacks.ModelCheckpoint(
            best_path, monitor="val_mean_iou", mode="max", save_best_only=True,
            initial_value_threshold=None if initial_epoch == 0 else best_so_far),
        _LastCheckpoint(config.output, best_so_far),
    ]
    tensorboard = _tensorboard_callback(config.output)
    if tensorboard is not None:
        callbacks.append(tensorboard)
    start = time.time()
    history = {}
    if initial_epoch < config.epochs:
        fit = model.fit(train_data, validation_data=val_data, epochs=config.epochs,
                        initial_epoch=initial_epoch, steps_per_epoch=steps,
                        callbacks=callbacks, verbose=config.verbose)
        history = fit.history
    seconds = time.time() - start
    best = keras.saving.load_model(best_path) if os.path.exists(best_path) else model
    evaluation = evaluate(best, val_ds, ignore_index=config.ignore_index)
    _write_json(os.path.join(config.output, "eval.json"), evaluation_to_json(evaluation))
    return {
        "history": history,
        "epochs_done": config.epochs,
        "resumed_from": initial_epoch,
        "val_miou": evaluation["miou"],
        "evaluation": evaluation,
        "best_path": best_path,
        "last_path": last_path,
        "seconds": seconds,
        "model": best,
        "num_classes": num_classes,
        "class_names": list(train_ds.class_names),
    }


# ------------------------------------------------------------------------ evaluate


def evaluate(model, dataset, *, ignore_index=255, batch_size=1, scales=(1.0,), flip=False,
             limit=None):
    """Dataset-level segmentation scores of ``model`` on ``dataset``.

    Each image is predicted at its own size (:func:`keras_seg.inference.predict`); the
    confusion matrix accumulates over all pixels of all images, then per-class IoU =
    TP / (TP + FP + FN), averaged over the classes present in the labels or the
    predictions.

    Args:
        model: a segmentation ``keras.Model`` (deep-supervision heads are ignored).
        dataset: a :class:`~keras_seg.data.SegmentationDataset`.
        ignore_index: label value left out of the scores.
        batch_size: images per forward pass (images of one size only).
        scales, flip: test-time augmentation of :func:`keras_seg.inference.predict`.
        limit: evaluate only the first ``limit`` images.

    Returns:
        A dict with ``confusion`` ((K, K) int64, rows = truth), ``per_class_iou`` ((K,),
        NaN for classes absent from truth and prediction), ``miou``, ``pixel_accuracy``,
        ``mean_accuracy``, ``fw_iou``, ``class_names`` and ``images``.
    """
    from keras_seg import inference
    from keras_seg.metrics import confusion_matrix, iou_from_confusion

    num_classes = dataset.num_classes
    net = inference_model(model)
    count = len(dataset) if limit is None else min(limit, len(dataset))
    confusion = np.zeros((num_classes, num_classes), dtype=np.int64)
    for start in range(0, count, batch_size):
        pairs = [dataset[i] for i in range(start, min(start + batch_size, count))]
        images = [p[0] for p in pairs]
        preds = inference.predict(net, images, scales=scales, flip=flip)
        for (_, mask), pred in zip(pairs, preds, strict=True):
            confusion += confusion_matrix(np.asarray(mask)[None], np.asarray(pred)[None],
                                          num_classes, ignore_index=ignore_index,
                                          from_logits=False)
    scores = iou_from_confusion(confusion)
    return {
        "confusion": confusion,
        "per_class_iou": np.asarray(scores["per_class_iou"], dtype=np.float64),
        "miou": float(scores["mean_iou"]),
        "pixel_accuracy": float(scores["pixel_accuracy"]),
        "mean_accuracy": float(scores["mean_accuracy"]),
        "fw_iou": float(scores["frequency_weighted_iou"]),
        "class_names": list(dataset.class_names),
        "images": count,
    }


def evaluation_to_json(evaluation):
    """A JSON-serializable copy of an :func:`evaluate` result (NaN -> None)."""
    out = {}
    for key, value in evaluation.items():
        if isinstance(value, np.ndarray):
            value = [None if isinstance(v, float) and math.isnan(v) else v
                     for v in value.tolist()]
        out[key] = value
    return out


def format_iou_table(evaluation):
    """The per-class IoU table of an :func:`evaluate` result, as printable text."""
    names = evaluation["class_names"]
    ious = evaluation["per_class_iou"]
    width = max(10, *(len(n) for n in names))
    lines = [f"{'class':<{width}}  IoU", f"{'-' * width}  ------"]
    for name, iou in zip(names, ious, strict=True):
        lines.append(f"{name:<{width}}  " + ("   n/a" if math.isnan(iou) else f"{iou:6.4f}"))
    lines.append(f"{'-' * width}  ------")
    lines.append(f"{'mean IoU':<{width}}  {evaluation['miou']:6.4f}")
    lines.append(f"{'pixel acc.':<{width}}  {evaluation['pixel_accuracy']:6.4f}")
    lines.append(f"{'fw IoU':<{width}}  {evaluation['fw_iou']:6.4f}")
    return "\n".join(lines)

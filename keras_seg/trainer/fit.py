""":func:`train`: fit a model as a :class:`~keras_seg.trainer.TrainConfig` says, with
logs, checkpoints and resume.

What :func:`train` writes to ``config.output``:

- ``config.json``  the configuration it ran with (``epochs`` resolved from ``iterations``);
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

from keras_seg.trainer.evaluation import evaluate, evaluation_to_json

# ------------------------------------------------------------- optimizer, weights


def make_optimizer(config, total_steps):
    """The optimizer of ``config`` with its learning-rate schedule.

    Args:
        config: a :class:`~keras_seg.trainer.TrainConfig`; its ``optimizer``, ``lr``,
            ``schedule``, ``momentum`` (SGD) and ``weight_decay`` are used (Adam with a
            weight decay is AdamW).
        total_steps: steps of the whole run, over which ``"poly"`` and ``"cosine"``
            decay the learning rate to 0.

    Returns:
        A ``keras.optimizers.Optimizer``.
    """
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


def _class_weights(dataset, scheme, ignore_index):
    """Per-class loss weights of ``scheme`` ("none", "median", "enet") from the masks."""
    if scheme == "none":
        return None
    from keras_seg.data import class_weights as weights

    counts = weights.class_pixel_counts(dataset, dataset.num_classes, ignore_index=ignore_index)
    if scheme == "median":
        return [float(w) for w in weights.median_frequency_weights(counts)]
    return [float(w) for w in weights.enet_class_weights(counts)]


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
    missing = []
    for name in ("tensorflow", "tensorboard"):  # Keras' TensorBoard callback needs both
        try:
            __import__(name)
        except ImportError:
            missing.append(name)
    if missing:
        verb = "is" if len(missing) == 1 else "are"
        print(f"TensorBoard logs skipped: {' and '.join(missing)} {verb} not installed "
              f"(pip install {' '.join(missing)}, or keras-seg[tensorflow]); log.csv has the "
              "same curves.")
        return None
    return keras.callbacks.TensorBoard(os.path.join(folder, "tensorboard"), write_graph=False)


# --------------------------------------------------------------------------- train


def train(config):
    """Train ``config.model`` on ``config.data`` and evaluate the best checkpoint.

    ``config`` itself is not changed: the run uses a validated copy
    (:meth:`TrainConfig.validate`) whose ``epochs`` is computed from ``iterations``
    when that is set; ``config.json`` records that copy.

    ``config.ignore_index`` is the one ignore label of the run: the dataset is read with it
    (a dataset that marks unlabeled pixels with another value is refused, see
    :func:`keras_seg.data.load_dataset`), and augmentation, batch padding, class
    weights, boundary weights, the loss, the mean-IoU metric and the final evaluation use it.

    Args:
        config: a :class:`~keras_seg.trainer.TrainConfig`.

    Returns:
        A dict: ``history`` (per-epoch logs of this run), ``epochs_done``,
        ``resumed_from`` (epoch the run resumed from, 0 for a fresh run),
        ``val_miou`` and ``evaluation`` (the :func:`evaluate` result of ``best.keras``
        on the validation split), ``best_path``, ``last_path``, ``seconds``, ``model``
        (the best model), ``num_classes`` and ``class_names``.

    Raises:
        ValueError: a bad field of ``config`` (see :meth:`TrainConfig.validate`) or an
            ``ignore_index`` the dataset cannot be read with.
    """
    from keras_seg import applications, losses, metrics
    from keras_seg.data import Augment, SegmentationPipeline, unet_weight_map

    config = config.validate()
    ignore_index = config.ignore_index
    os.makedirs(config.output, exist_ok=True)
    keras.utils.set_random_seed(config.seed)
    train_ds = config.dataset(config.train_split)
    num_classes = train_ds.num_classes
    val_ds = config.dataset(config.val_split, num_classes=num_classes)
    augment = None
    if config.augment:
        scale = config.scale_range if config.scale_range != (1.0, 1.0) else None
        augment = Augment(flip=0.5, scale=scale, rotation=config.rotation,
                          elastic=config.elastic, ignore_index=ignore_index)
    crop_size = config.crop_size
    if augment is not None and scale is not None and crop_size is None:
        # random scaling changes the size: crop back to the first image's size so that
        # batches keep one shape (TensorFlow fixes a PyDataset's batch shape)
        crop_size = tuple(np.asarray(train_ds[0][0]).shape[:2])
    weight_fn = None
    if config.boundary_weights:
        def weight_fn(mask):
            return unet_weight_map(mask, ignore_index=ignore_index)
    train_data = SegmentationPipeline(train_ds, config.batch_size, augment=augment,
                                      crop_size=crop_size, shuffle=True,
                                      seed=config.seed, sample_weight_fn=weight_fn,
                                      ignore_index=ignore_index, workers=config.workers)
    val_data = SegmentationPipeline(val_ds, 1 if config.crop_size else config.batch_size,
                                    shuffle=False, ignore_index=ignore_index)
    steps = len(train_data)
    if config.steps_per_epoch:
        steps = min(steps, config.steps_per_epoch)
    if config.iterations:
        config = dataclasses.replace(config,
                                     epochs=max(1, math.ceil(config.iterations / steps)))

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
        model = applications.build(config.model, num_classes, backbone=config.backbone,
                                   backbone_options=config.backbone_options,
                                   **config.model_options)
        class_weights = _class_weights(train_ds, config.class_weighting, ignore_index)
        model.compile(
            optimizer=make_optimizer(config, steps * config.epochs),
            loss=losses.get(config.loss, ignore_index=ignore_index,
                            class_weights=class_weights),
            metrics=[metrics.MeanIoU(num_classes, ignore_index=ignore_index)],
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
    evaluation = evaluate(best, val_ds, ignore_index=ignore_index)
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

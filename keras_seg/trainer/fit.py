""":func:`train`: fit a model as a :class:`~keras_seg.trainer.TrainConfig` says, with
logs, checkpoints and resume.

What :func:`train` writes to ``config.output`` (the run folder):

- ``config.json``  the configuration the run uses (``epochs`` resolved from ``iterations``,
  ``num_classes`` and ``class_names`` as read from the data), and ``"resumes"``: one entry
  per resume (the epoch and optimizer step it continued from, the settings it changed);
- ``log.csv``      one row per completed epoch: loss, mean IoU, validation loss and mean
  IoU, and ``lr``, the learning rate at the epoch's first step;
- ``curves.png``   the loss and mean IoU of ``log.csv`` per epoch, training and validation
  (:func:`keras_seg.visualize.training_curves`), redrawn at each epoch end;
- ``tensorboard/`` the same curves for TensorBoard (when TensorFlow is installed);
- ``last.keras``   the model (with optimizer state) after the last completed epoch, and
  ``state.json`` that epoch's number, optimizer step, best score and the log rows:
  running the same command again resumes from it;
- ``best.keras``   the model with the best validation mean IoU;
- ``eval.json``    the final evaluation of ``best.keras`` on the validation split (the keys
  of :func:`keras_seg.trainer.evaluate`), and ``confusion_matrix.png``, its confusion
  matrix (:func:`keras_seg.visualize.confusion_figure`).

Crash safety: every file is written to a temporary file in the run folder and moved into
place with ``os.replace``, so a reader sees the old or the new file, never half of one. An
epoch is completed by one write, ``state.json``, after its checkpoints are written (under
temporary names that ``state.json`` records); then the checkpoints are moved into place and
``log.csv`` is rewritten from the rows ``state.json`` holds. A process killed at any moment
leaves a folder the next run completes (it finishes the moves of a recorded epoch and
rewrites ``log.csv``) or rolls back (an epoch not recorded in ``state.json`` is trained
again), and the next run removes the leftover temporary files.

Test-only: the environment variable ``KERAS_SEG_TEST_KILL_AT=POINT@EPOCH`` (see
:data:`TEST_KILL_ENV`) makes the process kill itself with SIGKILL at a point of the
epoch-end writes, so that the tests can check the recovery; it is never set in normal use.
"""

import contextlib
import csv
import dataclasses
import json
import math
import os
import shutil
import signal
import sys
import time
import zipfile

import keras
import numpy as np

from keras_seg import visualize
from keras_seg.schedules import LinearWarmup
from keras_seg.trainer.config import FIELDS, RESUME_CHANGEABLE, RESUME_IGNORED
from keras_seg.trainer.evaluation import evaluate, evaluation_to_json

#: Test-only fault injection: ``POINT@EPOCH`` (EPOCH counted from 1) kills the process with
#: SIGKILL at POINT of that epoch: ``batch`` (after its first training step),
#: ``best_write`` / ``last_write`` / ``state_write`` (with the temporary file of
#: ``best.keras`` / ``last.keras`` / ``state.json`` cut to half its size, as a kill during
#: the write leaves it), or ``commit`` (``state.json`` written, checkpoints not yet moved
#: into place nor ``log.csv`` rewritten).
TEST_KILL_ENV = "KERAS_SEG_TEST_KILL_AT"
KILL_POINTS = ("batch", "best_write", "last_write", "state_write", "commit")

# ------------------------------------------------------------- optimizer, weights


def make_optimizer(config, total_steps):
    """The optimizer of ``config`` with its learning-rate schedule.

    Args:
        config: a :class:`~keras_seg.trainer.TrainConfig`; its ``optimizer``, ``lr``,
            ``schedule``, ``warmup_steps``, ``momentum`` (SGD) and ``weight_decay`` are used
            (Adam with a weight decay is AdamW).
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
    if config.warmup_steps:
        _check_warmup(config.warmup_steps, total_steps)
        lr = LinearWarmup(lr, config.warmup_steps)
    decay = config.weight_decay or None
    if config.optimizer == "sgd":
        return keras.optimizers.SGD(lr, momentum=config.momentum, weight_decay=decay)
    if config.optimizer == "rmsprop":
        return keras.optimizers.RMSprop(lr, weight_decay=decay)
    return keras.optimizers.Adam(lr, weight_decay=decay) if decay is None else \
        keras.optimizers.AdamW(lr, weight_decay=decay)


def _check_warmup(warmup_steps, total_steps):
    if warmup_steps and warmup_steps >= total_steps:
        raise ValueError(
            f"warmup_steps={warmup_steps} (--warmup-steps) is not fewer than the run's "
            f"{total_steps} steps: the whole run would be warm-up. Give fewer warm-up steps (a "
            "few hundred, or about one epoch, is usual) or 0 for none.")


def _optimizer_state(optimizer):
    """The optimizer's state variables (step count, moments), without a learning-rate one."""
    return [v for v in optimizer.variables if v.name != "learning_rate"]


def _rebuilt_optimizer(old, model, config, total_steps, folder):
    """``make_optimizer(config, total_steps)`` for ``model``, carrying the state of ``old``.

    ``old`` (the optimizer restored from ``last.keras``) gives its step count and moments;
    only the learning-rate schedule is built anew, over ``total_steps``. The loss scale of a
    ``mixed_float16`` run's ``LossScaleOptimizer`` is not carried over: a ``mixed_float16``
    run wraps the new optimizer in a fresh one, whose dynamic scale settles again within a
    few steps.
    """
    if isinstance(old, keras.optimizers.LossScaleOptimizer):
        old = old.inner_optimizer
    new = make_optimizer(config, total_steps)
    new.build(model.trainable_variables)
    old_state, new_state = _optimizer_state(old), _optimizer_state(new)
    if len(old_state) != len(new_state) or any(
            tuple(a.shape) != tuple(b.shape) for a, b in zip(old_state, new_state, strict=False)):
        raise ValueError(
            f"Cannot resume {folder}: the optimizer state in last.keras "
            f"({type(old).__name__}, {len(old_state)} variables) does not fit the optimizer "
            f"{config.optimizer!r} of this configuration ({type(new).__name__}, "
            f"{len(new_state)} variables). Start a new run: --no-resume (overwrites the "
            "folder) or another --output.")
    for target, source in zip(new_state, old_state, strict=True):
        target.assign(keras.ops.convert_to_numpy(source))
    return new


def _copy_variables(saved, model, folder):
    """Give ``model`` the variables of ``saved`` (weights, BatchNormalization statistics,
    random-generator states), the same architecture built anew.

    Raises:
        ValueError: the two models do not hold the same variables.
    """
    targets, sources = model.variables, saved.variables
    shapes = [tuple(v.shape) for v in targets]
    if shapes != [tuple(v.shape) for v in sources]:
        raise ValueError(
            f"Cannot resume {folder}: last.keras holds {len(sources)} variables that do not fit "
            f"the {len(targets)} of the model this configuration builds (another model or "
            "builder version?). Start a new run: --no-resume (overwrites the folder) or "
            "another --output.")
    for target, source in zip(targets, sources, strict=True):
        target.assign(keras.ops.convert_to_numpy(source))


def _class_weights(dataset, scheme, ignore_index):
    """Per-class loss weights of ``scheme`` ("none", "median", "enet") from the masks."""
    if scheme == "none":
        return None
    from keras_seg.data import class_weights as weights

    counts = weights.class_pixel_counts(dataset, dataset.num_classes, ignore_index=ignore_index)
    if scheme == "median":
        return [float(w) for w in weights.median_frequency_weights(counts)]
    return [float(w) for w in weights.enet_class_weights(counts)]


# ------------------------------------------------------------------ files, test hook


def _test_kill(point, epoch, partial=None):
    """Test-only: SIGKILL this process when :data:`TEST_KILL_ENV` names ``point@epoch``.

    Args:
        point: one of :data:`KILL_POINTS`.
        epoch: the epoch being trained, counted from 1.
        partial: a file to cut to half its size first (a write the kill interrupted).
    """
    spec = os.environ.get(TEST_KILL_ENV)
    if not spec:
        return
    name, _, at = spec.partition("@")
    if name != point or (at and int(at) != epoch):
        return
    if partial is not None:
        with open(partial, "r+b") as f:
            f.truncate(os.path.getsize(partial) // 2)
    sys.stdout.flush()
    sys.stderr.flush()
    os.kill(os.getpid(), signal.SIGKILL)


def _write_json(path, obj, kill_point=None, epoch=None):
    """Write ``obj`` as JSON to ``path`` atomically (temporary file + ``os.replace``)."""
    tmp = path + ".tmp"
    with open(tmp, "w") as f:
        json.dump(obj, f, indent=2, sort_keys=True)
    if kill_point is not None:
        _test_kill(kill_point, epoch, partial=tmp)
    os.replace(tmp, path)


def _write_csv(path, rows):
    """Write the epoch rows to ``path`` atomically: ``epoch`` first, then the sorted keys."""
    keys = sorted({key for row in rows for key in row} - {"epoch"})
    tmp = path + ".tmp"
    with open(tmp, "w", newline="") as f:
        writer = csv.DictWriter(f, fieldnames=["epoch", *keys])
        writer.writeheader()
        writer.writerows(rows)
    os.replace(tmp, path)


def _is_temporary(name):
    """Whether ``name`` is a temporary file of the run folder (``*.tmp``, ``*.tmp.keras``)."""
    return name.endswith(".tmp") or name.endswith(".tmp.keras")


def _unreadable(path):
    """Why the ``.keras`` file ``path`` cannot be read (None: it is a complete archive)."""
    if not os.path.exists(path):
        return "is missing"
    try:
        with zipfile.ZipFile(path) as archive:
            bad = archive.testzip()
    except (zipfile.BadZipFile, OSError, EOFError) as err:
        return f"is unreadable ({type(err).__name__}: {err})"
    if bad is not None:
        return f"is corrupt (its member {bad!r} fails its checksum)"
    return None


def _float_row(row):
    out = {}
    for key, value in row.items():
        if key == "epoch":
            out[key] = int(value)
            continue
        try:
            out[key] = float(value)
        except (TypeError, ValueError):
            out[key] = value
    return out


def _draw_picture(path, draw, *args, **kwargs):
    """Call ``draw(*args, **kwargs)``, a :mod:`keras_seg.visualize` function that writes
    the picture ``path``; a failure is one printed line (a picture never stops a run)."""
    try:
        draw(*args, **kwargs)
    except Exception as err:  # any drawing problem: the run's files are already written
        print(f"{path} not drawn ({type(err).__name__}: {err}).")


class _RunFolder:
    """The files of a run folder and the steps that keep them consistent."""

    def __init__(self, folder):
        self.folder = folder
        self.config = os.path.join(folder, "config.json")
        self.state = os.path.join(folder, "state.json")
        self.log = os.path.join(folder, "log.csv")
        self.last = os.path.join(folder, "last.keras")
        self.best = os.path.join(folder, "best.keras")
        self.eval = os.path.join(folder, "eval.json")
        self.curves = os.path.join(folder, "curves.png")
        self.confusion = os.path.join(folder, "confusion_matrix.png")

    def temporary(self, final, epoch):
        """The temporary name of the checkpoint ``final`` written at the end of ``epoch``."""
        stem = os.path.splitext(os.path.basename(final))[0]
        return os.path.join(self.folder, f".{stem}.epoch{epoch:04d}.tmp.keras")

    def finish(self, state):
        """Move the checkpoints ``state`` records into place; rewrite ``log.csv`` from it
        and draw ``curves.png`` from the same rows.

        Idempotent: a checkpoint already moved is skipped, so a run killed half-way through
        is completed by calling this again.
        """
        for final, tmp in state.get("pending", {}).items():
            tmp = os.path.join(self.folder, tmp)
            if os.path.exists(tmp):
                os.replace(tmp, os.path.join(self.folder, final))
        _write_csv(self.log, state["history"])
        if state["history"]:
            # the figure of the rows log.csv was just rewritten from; the epoch is already
            # committed, so a figure that cannot be drawn is reported, never stops the run
            _draw_picture(self.curves, visualize.training_curves, state["history"], self.curves)

    def remove_temporary(self):
        """Remove the temporary files a killed write left behind (and say so)."""
        names = sorted(name for name in os.listdir(self.folder) if _is_temporary(name))
        for name in names:
            os.remove(os.path.join(self.folder, name))
        if names:
            print(f"Removed {len(names)} temporary file(s) an interrupted write left in "
                  f"{self.folder}: {', '.join(names)}.")

    def recover(self):
        """The completed state of the run to resume, or None when there is none.

        Finishes the moves of the last recorded epoch, rewrites ``log.csv`` with one row
        per completed epoch and removes leftover temporary files.

        Raises:
            ValueError: ``state.json`` exists but cannot be read.
        """
        if not os.path.exists(self.state):
            return None
        try:
            with open(self.state) as f:
                state = json.load(f)
            state["epoch"] = int(state["epoch"])
        except (OSError, ValueError, KeyError, TypeError) as err:
            raise ValueError(
                f"Cannot resume {self.folder}: {self.state} is unreadable ({err}). Start a new "
                "run: --no-resume (overwrites the folder) or another --output.") from None
        if "history" not in state:  # a state.json written before the rows were kept in it
            rows = {}
            if os.path.exists(self.log):
                with open(self.log, newline="") as f:
                    for row in csv.DictReader(f):
                        row = _float_row(row)
                        if row["epoch"] < state["epoch"]:
                            rows[row["epoch"]] = row
            state["history"] = [rows[e] for e in sorted(rows)]
        self.finish(state)
        self.remove_temporary()
        return state if os.path.exists(self.last) else None

    def clear(self):
        """Remove the files of an earlier run (``state.json`` first: nothing to resume)."""
        for path in (self.state, self.last, self.best, self.log, self.eval, self.curves,
                     self.confusion):
            if os.path.exists(path):
                os.remove(path)
        self.remove_temporary()
        shutil.rmtree(os.path.join(self.folder, "tensorboard"), ignore_errors=True)

    def read_config(self):
        """The stored ``config.json`` as a dict, or None when there is none."""
        if not os.path.exists(self.config):
            return None
        try:
            with open(self.config) as f:
                return json.load(f)
        except (OSError, ValueError) as err:
            raise ValueError(
                f"Cannot resume {self.folder}: {self.config} is unreadable ({err}), so the "
                "settings of the run are unknown. Start a new run: --no-resume (overwrites "
                "the folder) or another --output.") from None


# ------------------------------------------------------------------------- callbacks


class _EpochCheckpoint(keras.callbacks.Callback):
    """Completes each epoch in the run folder: checkpoints, ``state.json``, ``log.csv``.

    At every epoch end: ``best.keras`` (when the validation mean IoU beats the best so
    far) and ``last.keras`` are saved under temporary names, then ``state.json`` records
    the epoch (the single write that completes it), then the checkpoints are moved into
    place and ``log.csv`` is rewritten with one row per completed epoch. Nothing is ever
    written in place.

    Args:
        run: the :class:`_RunFolder`.
        history: the log rows of the epochs completed before this run.
        best: the best validation mean IoU so far (-inf for none).
        best_epoch: the epoch (counted from 1) of ``best.keras`` (0 for none).
        saving: ``saving(model)``, the context the checkpoints are saved in (see
            :meth:`keras_seg.trainer.devices.Placement.saving`; None: none).
    """

    def __init__(self, run, history, best=float("-inf"), best_epoch=0, saving=None):
        super().__init__()
        self.saving = saving or (lambda model: contextlib.nullcontext())
        self.run = run
        self.history = list(history)
        self.best = best
        self.best_epoch = best_epoch
        self.epoch = 0

    def on_epoch_begin(self, epoch, logs=None):
        self.epoch = epoch + 1

    def on_train_batch_end(self, batch, logs=None):
        if batch == 0:
            _test_kill("batch", self.epoch)

    def on_epoch_end(self, epoch, logs=None):
        number = epoch + 1
        logs = {key: float(value) for key, value in (logs or {}).items()}
        score = logs.get("val_mean_iou", float("nan"))
        pending = {}
        if not math.isnan(score) and score > self.best:
            self.best, self.best_epoch = score, number
            tmp = self.run.temporary(self.run.best, number)
            with self.saving(self.model):
                self.model.save(tmp)
            _test_kill("best_write", number, partial=tmp)
            pending["best.keras"] = os.path.basename(tmp)
        tmp = self.run.temporary(self.run.last, number)
        with self.saving(self.model):
            self.model.save(tmp)
        _test_kill("last_write", number, partial=tmp)
        pending["last.keras"] = os.path.basename(tmp)
        self.history.append({"epoch": epoch, **logs})
        state = {
            "epoch": number,
            "iterations": int(keras.ops.convert_to_numpy(self.model.optimizer.iterations)),
            "best_val_mean_iou": self.best,
            "best_epoch": self.best_epoch,
            "logs": logs,
            "history": self.history,
            "pending": pending,
        }
        _write_json(self.run.state, state, kill_point="state_write", epoch=number)
        _test_kill("commit", number)
        self.run.finish(state)


class _LearningRateLogger(keras.callbacks.Callback):
    """Adds ``lr``, the learning rate of the epoch's first step, to the epoch logs."""

    def on_epoch_begin(self, epoch, logs=None):
        self._lr = float(keras.ops.convert_to_numpy(self.model.optimizer.learning_rate))

    def on_epoch_end(self, epoch, logs=None):
        if logs is not None:
            logs["lr"] = self._lr


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


# ------------------------------------------------------------------ resume settings


def _record(config, num_classes, class_names):
    """The ``config.json`` record of ``config`` (JSON values), with the data's classes."""
    record = dataclasses.asdict(config)
    record.update(num_classes=num_classes, class_names=list(class_names),
                  backend=keras.backend.backend(), keras_version=keras.__version__)
    return json.loads(json.dumps(record, sort_keys=True))


def _changed_settings(stored, record):
    """``{field: (stored value, new value)}`` of the settings that differ.

    Fields an older ``config.json`` does not hold are not compared.
    """
    return {name: (stored[name], record[name]) for name in FIELDS
            if name not in RESUME_IGNORED and name in stored and stored[name] != record[name]}


def _describe_changes(changes):
    """``name (--flag) old -> new, ...`` (the classes: as read from the data)."""
    where = {"num_classes": "--num-classes, or as read from the data",
             "class_names": "--class-names, or as read from the data"}
    return ", ".join(f"{name} ({where.get(name, FIELDS[name].metadata['flag'])}) {old!r} -> "
                     f"{new!r}" for name, (old, new) in changes.items())


def _refuse_changes(folder, fixed):
    """Raise the one error that lists every setting a resume may not change."""
    raise ValueError(
        f"Cannot resume the run in {folder} with changed settings: "
        f"{_describe_changes(fixed)} (its config.json -> this run). These cannot change in "
        "the middle of a run (the model, the data it learned from, the loss and the "
        "optimizer state depend on them); only "
        f"{', '.join(RESUME_CHANGEABLE)} can. Give the run's values again to resume it, or "
        f"start a new run: --no-resume (overwrites {folder}) or another --output.")


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

    Resume (``config.resume`` and a ``last.keras`` + ``state.json`` in ``config.output``):
    training continues from the last completed epoch, with the model and optimizer state
    of ``last.keras``. The settings of :data:`~keras_seg.trainer.RESUME_FIXED` must equal
    those in the run's ``config.json`` (one ``ValueError`` lists every difference); the
    others (:data:`~keras_seg.trainer.RESUME_CHANGEABLE`) are applied: the learning-rate
    schedule is rebuilt over the new number of steps in all (the steps done plus those of
    the remaining epochs), so each later step gets the learning rate a fresh run of that
    length would have at that step; ``config.json`` then holds the new values and lists the
    change under ``"resumes"``. A ``best.keras`` that cannot be read is replaced by
    ``last.keras`` (said in one line). Without a resume, the checkpoints, logs and state of
    an earlier run in the folder are removed first.

    Devices (the ``devices`` section, :mod:`keras_seg.trainer.devices`): the model is built,
    compiled and trained under the dtype policy of ``precision`` and, with
    ``distribute="data"`` over several devices, Keras' data-parallel engine of the backend;
    both are undone before the final evaluation and the return, so a later call in the
    process starts from the previous global state. ``batch_size`` is the global batch, split
    evenly over the replicas (the last partial batch of an epoch is skipped); a resume may
    change any of these settings (the model is built under the new ones and takes the
    variables of ``last.keras``). In a multi-process run, process K > 0 keeps its own run
    folder, ``output/process-K``.

    Args:
        config: a :class:`~keras_seg.trainer.TrainConfig`.

    Returns:
        A dict: ``history`` (per-epoch logs of this run), ``epochs_done``,
        ``resumed_from`` (epoch the run resumed from, 0 for a fresh run),
        ``val_mean_iou`` and ``evaluation`` (the mean IoU and the :func:`evaluate` result
        of ``best.keras`` on the validation split), ``best_path``, ``last_path``,
        ``seconds``, ``model`` (the best model), ``num_classes`` and ``class_names``.

    Raises:
        ValueError: a bad field of ``config`` (see :meth:`TrainConfig.validate`); devices
            that cannot run it (see :class:`~keras_seg.trainer.devices.Placement`) or a
            ``batch_size`` that does not split over them; an ``ignore_index`` the dataset
            cannot be read with; a resume with changed settings that cannot change, with
            ``epochs`` below the epochs already done, or from an unreadable
            ``state.json`` / ``config.json`` / ``last.keras``.
    """
    from keras_seg import applications, losses, metrics
    from keras_seg.data import Augment, FolderDataset, SegmentationPipeline, unet_weight_map
    from keras_seg.trainer import devices

    config = config.validate()
    # first: a multi-process run joins its processes before anything computes
    placement = devices.Placement(config)
    placement.per_replica_batch(config.batch_size)
    ignore_index = config.ignore_index
    folder = placement.run_folder(config.output)
    os.makedirs(folder, exist_ok=True)
    run = _RunFolder(folder)
    keras.utils.set_random_seed(config.seed)
    train_ds = config.dataset(config.train_split)
    num_classes = train_ds.num_classes
    class_names = list(train_ds.class_names)
    # a folder dataset's validation split has the training split's classes (whatever
    # labels it holds); the other datasets have a fixed number
    val_ds = config.dataset(config.val_split, num_classes=num_classes
                            if isinstance(train_ds, FolderDataset) else None)
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
    # several replicas: every step splits a whole global batch evenly
    drop_remainder = placement.replicas > 1
    train_pipeline = SegmentationPipeline(train_ds, config.batch_size, augment=augment,
                                          crop_size=crop_size, shuffle=True,
                                          seed=config.seed, sample_weight_fn=weight_fn,
                                          ignore_index=ignore_index, workers=config.workers,
                                          drop_remainder=drop_remainder)
    val_pipeline = SegmentationPipeline(
        val_ds, placement.validation_batch_size(1 if config.crop_size else config.batch_size),
        shuffle=False, ignore_index=ignore_index)
    train_data, val_data = placement.feed(train_pipeline), placement.feed(val_pipeline)
    steps = len(train_pipeline)
    if config.steps_per_epoch:
        steps = min(steps, config.steps_per_epoch)
    if config.iterations:
        config = dataclasses.replace(config,
                                     epochs=max(1, math.ceil(config.iterations / steps)))
    record = _record(config, num_classes, class_names)
    for line in placement.describe(config.batch_size, len(train_ds), drop_remainder):
        print(line)

    def compile_model(model, optimizer):
        class_weights = _class_weights(train_ds, config.class_weighting, ignore_index)
        placement.compile(
            model, optimizer=optimizer,
            loss=losses.get(config.loss, ignore_index=ignore_index,
                            class_weights=class_weights),
            metrics=[metrics.MeanIoU(num_classes, ignore_index=ignore_index)],
            example=lambda: train_pipeline[0])

    state = run.recover() if config.resume else None
    saved = None
    if state is None:
        total_steps = steps * config.epochs
        _check_warmup(config.warmup_steps, total_steps)  # before the folder is cleared
        run.clear()
        initial_epoch, history, best_so_far, best_epoch = 0, [], float("-inf"), 0
        record["resumes"] = []
    else:
        stored = run.read_config()
        changes = {} if stored is None else _changed_settings(stored, record)
        fixed = {name: change for name, change in changes.items()
                 if name not in RESUME_CHANGEABLE}
        if fixed:
            _refuse_changes(config.output, fixed)
        initial_epoch = state["epoch"]
        history = state["history"]
        if config.epochs < initial_epoch:
            raise ValueError(
                f"The run in {config.output} has already done {initial_epoch} epochs; "
                f"epochs={config.epochs} cannot undo them. Ask for {initial_epoch} epochs or "
                "more to resume it, or start a new run: --no-resume (overwrites the folder) "
                "or another --output.")
        if stored is None:
            print(f"{run.config} is missing: the settings of the run in {config.output} "
                  "cannot be checked; resuming with these.")
        try:
            # read outside the placement: only its variables are taken, by a model built
            # under this run's precision and devices
            saved = keras.saving.load_model(run.last)
        except Exception as err:  # keras raises many types for a bad file
            raise ValueError(
                f"Cannot resume {config.output}: {run.last} cannot be loaded "
                f"({type(err).__name__}: {err}). Start a new run: --no-resume (overwrites the "
                "folder) or another --output.") from err
        done_steps = int(keras.ops.convert_to_numpy(saved.optimizer.iterations))
        total_steps = done_steps + steps * (config.epochs - initial_epoch)
        _check_warmup(config.warmup_steps, total_steps)
        best_so_far = float(state.get("best_val_mean_iou", float("-inf")))
        best_epoch = int(state.get("best_epoch", 0))
        problem = _unreadable(run.best)
        if problem is not None:
            # carry on from the last epoch: it becomes the best so far
            best_so_far = float(state.get("logs", {}).get("val_mean_iou", float("-inf")))
            best_epoch = initial_epoch
            tmp = run.temporary(run.best, initial_epoch)
            shutil.copyfile(run.last, tmp)
            os.replace(tmp, run.best)
            print(f"{run.best} {problem}: replaced by last.keras (epoch {initial_epoch}, "
                  f"validation mean IoU {best_so_far:.4f}), which later epochs must beat.")
        if initial_epoch < config.epochs:
            record["resumes"] = [*(stored or {}).get("resumes", []), {
                "epoch": initial_epoch, "step": done_steps, "total_steps": total_steps,
                "changed": {name: [old, new] for name, (old, new) in changes.items()}}]

    fit_history = {}
    with placement.active():
        # the same model for a fresh run and a resume, built under this run's precision
        # and devices; a resume then takes the variables and optimizer state of last.keras
        model = applications.build(config.model, num_classes, backbone=config.backbone,
                                   backbone_options=config.backbone_options,
                                   **config.model_options)
        if saved is None:
            compile_model(model, make_optimizer(config, total_steps))
        else:
            _copy_variables(saved, model, config.output)
            optimizer = _rebuilt_optimizer(saved.optimizer, model, config, total_steps,
                                           config.output)
            compile_model(model, optimizer)
            lr_now = float(keras.ops.convert_to_numpy(optimizer.learning_rate))
            schedule = (f"constant {config.lr:g}" if config.schedule == "constant" else
                        f"{config.schedule} from {config.lr:g} over {total_steps} steps in all "
                        f"(as a fresh run of that length), {lr_now:.3g} at step {done_steps}")
            print(f"Resuming from {run.last} (epoch {initial_epoch} of {config.epochs} done, "
                  f"step {done_steps}); learning rate: {schedule}.")
            if changes and initial_epoch < config.epochs:
                print(f"Changed since the run's config.json (applied, recorded under "
                      f"\"resumes\" in config.json): {_describe_changes(changes)}.")
        if initial_epoch < config.epochs:
            _write_json(run.config, record)
        callbacks = [
            _LearningRateLogger(),
            _EpochCheckpoint(run, history, best_so_far, best_epoch, saving=placement.saving),
        ]
        tensorboard = _tensorboard_callback(folder)
        if tensorboard is not None:
            callbacks.append(tensorboard)
        start = time.time()
        if initial_epoch < config.epochs:
            # shuffle=False: the pipeline shuffles the examples itself, seeded per epoch;
            # Keras' extra shuffle of the batch order draws from Python's global random,
            # which nothing keeps equal across the processes of a multi-process run (each
            # must feed its share of the same global batch) nor across backends
            fit = model.fit(train_data, validation_data=val_data, epochs=config.epochs,
                            initial_epoch=initial_epoch, steps_per_epoch=steps,
                            callbacks=callbacks, verbose=config.verbose, shuffle=False)
            fit_history = fit.history
        else:
            print(f"The run in {config.output} has done all {config.epochs} epochs; "
                  "evaluating best.keras.")
    seconds = time.time() - start
    # on the default device, outside the placement: best.keras (else last.keras) as saved
    best = keras.saving.load_model(run.best if os.path.exists(run.best) else run.last)
    evaluation = evaluate(best, val_ds, ignore_index=ignore_index, class_names=class_names)
    _write_json(run.eval, evaluation_to_json(evaluation))
    _draw_picture(run.confusion, visualize.save_confusion_matrix, evaluation["confusion"],
                  evaluation["class_names"], run.confusion,
                  title=f"best.keras on the validation split ({evaluation['images']} images)")
    return {
        "history": fit_history,
        "epochs_done": config.epochs,
        "resumed_from": initial_epoch,
        "val_mean_iou": evaluation["mean_iou"],
        "evaluation": evaluation,
        "best_path": run.best,
        "last_path": run.last,
        "seconds": seconds,
        "model": best,
        "num_classes": num_classes,
        "class_names": class_names,
    }

"""Where a training run computes: data parallel over several devices, mixed precision, XLA.

:class:`Placement` turns the ``devices`` section of a
:class:`~keras_seg.trainer.TrainConfig` (``distribute``, ``devices``, ``sync_batchnorm``,
``precision``, ``jit_compile``) into Keras' own engines. This is the one module of the
trainer with backend-specific code; :func:`keras_seg.trainer.train` imports it when it runs,
and TensorFlow / JAX are imported here only by the backend that uses them.

What each backend does with ``distribute="data"`` over several devices:

- JAX: ``keras.distribution.DataParallel`` over the devices (every device of every process
  in a multi-process run), made current with its ``scope()`` while the model and optimizer
  are built and trained, and no longer current when :func:`~keras_seg.trainer.train`
  returns. The variables are replicated and each batch is split along its first axis; the
  step is one global program, so the loss, the gradients and the BatchNormalization
  statistics are those of the global batch. Several processes: when
  ``KERAS_DISTRIBUTION_JOB_ADDRESSES`` (with ``KERAS_DISTRIBUTION_NUM_PROCESSES`` and
  ``KERAS_DISTRIBUTION_PROCESS_ID``) or ``JAX_COORDINATOR_ADDRESS`` (with
  ``JAX_NUM_PROCESSES`` and ``JAX_PROCESS_ID``) is set, ``keras.distribution.initialize``
  joins them before anything else runs; every process prepares the same global batch (the
  same seed) and feeds its share of it (:class:`_ReplicaFeed`).
- TensorFlow: ``tf.distribute.MirroredStrategy`` over the devices; model, optimizer,
  metrics and ``compile`` inside ``strategy.scope()``, and ``fit`` splits each batch of
  the ``PyDataset`` over the replicas itself (a validation batch holds a multiple of the
  replicas: :meth:`Placement.validation_batch_size`). Each replica computes the loss over
  its own share and the gradients are summed, so the loss a replica returns must be
  divided by the number of replicas (Keras' ``Loss.__call__`` does it; the keras-seg
  losses, which reduce themselves, do it in ``keras_seg.ops.per_replica_loss``);
  BatchNormalization statistics are per replica unless
  ``sync_batchnorm``. Several hosts: ``TF_CONFIG`` naming several ``worker`` tasks gives
  ``tf.distribute.MultiWorkerMirroredStrategy``; every worker prepares the same global
  batch and feeds its piece through ``distribute_datasets_from_function``
  (:func:`_worker_dataset`), and two defects of Keras 3.15's TensorFlow ``fit`` under that
  strategy are worked around here (keras-team/keras#20585): its build step, which reduces
  the first batch across the workers (:func:`_build_for_strategy`), and the reduction of
  each step's scalar metrics along an axis 0 they do not have (:func:`_metrics_with_an_axis`).
- PyTorch: refused; data parallel ``fit`` (DDP) reached Keras after 3.15.1.

Precision: ``keras.config.set_dtype_policy`` while the model is built and trained, the
previous global policy restored afterwards; for ``"mixed_float16"`` the optimizer is
compiled wrapped in a ``LossScaleOptimizer`` (dynamic loss scaling), named in the
checkpoints, which therefore load with their optimizer state under any global policy.
``jit_compile`` is passed to ``compile``.
"""

import contextlib
import json
import os

import keras
import numpy as np

#: environment variables of a multi-process JAX run: Keras' names, then JAX's
KERAS_CLUSTER_ENV = ("KERAS_DISTRIBUTION_JOB_ADDRESSES", "KERAS_DISTRIBUTION_NUM_PROCESSES",
                     "KERAS_DISTRIBUTION_PROCESS_ID")
JAX_CLUSTER_ENV = ("JAX_COORDINATOR_ADDRESS", "JAX_NUM_PROCESSES", "JAX_PROCESS_ID")

#: the TensorFlow strategies of this process, by device names (see _setup_tensorflow)
_STRATEGIES = {}

_ENGINES = {"jax": "keras.distribution.DataParallel (JAX)",
            "tensorflow": "tf.distribute.MirroredStrategy (TensorFlow)"}


class Placement:
    """The devices and numeric settings of one training run.

    Built from a validated :class:`~keras_seg.trainer.TrainConfig` before anything else of
    the run (a multi-process JAX run must join its processes before any computation).

    Args:
        config: a validated :class:`~keras_seg.trainer.TrainConfig`.

    Attributes:
        devices: the names of the devices the steps run on (``"cpu:0"``, ...); empty with
            ``distribute="none"`` (Keras' default device).
        replicas: the number of replicas a batch is split over (1: no split).
        processes: processes of the run (more than 1 only for multi-process JAX).
        process_index: this process's index (0 is the chief).
        notes: lines describing the placement, printed by :func:`~keras_seg.trainer.train`.

    Raises:
        ValueError: ``distribute="data"`` on PyTorch, or on TensorFlow with ``TF_CONFIG``
            naming several workers; a device that does not exist; ``devices`` with several
            processes; processes with different numbers of devices.
    """

    def __init__(self, config):
        self.backend = keras.backend.backend()
        self.precision = config.precision
        self.jit_compile = config.jit_compile
        self.sync_batchnorm = config.sync_batchnorm
        self.distribute = config.distribute
        self.devices = ()
        self.processes, self.process_index = 1, 0
        self.distribution = None  # JAX
        self.strategy = None  # TensorFlow
        self.notes = []
        self._synchronized = []
        self._portable_compile = None
        if config.distribute == "data":
            requested = None if config.devices is None else config.devices.split(",")
            if self.backend == "jax":
                self._setup_jax(requested)
            elif self.backend == "tensorflow":
                self._setup_tensorflow(requested)
            else:
                raise ValueError(
                    f"distribute='data' is not available on the {self.backend} backend with "
                    f"Keras {keras.__version__}: Keras' data-parallel fit for PyTorch (DDP "
                    "inside model.fit) came after Keras 3.15.1. Run with KERAS_BACKEND=jax "
                    "or KERAS_BACKEND=tensorflow, or use distribute='none' (--distribute "
                    "none).")
        self.replicas = max(len(self.devices), 1)
        if config.distribute == "data" and self.replicas == 1:
            self.distribution = self.strategy = None
            self.notes.append(f"distribute='data' found one device ({self.devices[0]}): "
                              "nothing to split, so the run trains on it as with "
                              "distribute='none'.")

    # === setup, per backend ===

    def _setup_jax(self, requested):
        cluster = _jax_cluster_environment()
        if cluster is not None:
            if requested is not None:
                raise ValueError(
                    f"devices={','.join(requested)!r} cannot be given to a multi-process run "
                    f"({cluster[0]} is set): device names are those of one process, and the "
                    "run uses every device of every process. Leave --devices out.")
            _initialize_jax(*cluster)
        import jax

        self.processes, self.process_index = jax.process_count(), jax.process_index()
        if requested is None:
            self.devices = tuple(keras.distribution.list_devices())
        else:
            self.devices = tuple(requested)
            for name in requested:
                kind = name.split(":")[0]
                try:
                    available = keras.distribution.list_devices(kind)
                except RuntimeError:  # jax.devices raises for a platform it does not have
                    available = []
                if name not in available:
                    raise ValueError(_missing_device(name, keras.distribution.list_devices()))
        if self.processes > 1 and len(self.devices) % self.processes:
            raise ValueError(
                f"The {self.processes} processes of this run have {len(self.devices)} devices "
                "in all, not the same number each; give every process as many devices.")
        if len(self.devices) > 1:
            # auto_shard_dataset=False: each process feeds its share of the global batch
            # itself (_ReplicaFeed); Keras' sharding wants a tf.data dataset
            self.distribution = keras.distribution.DataParallel(
                devices=list(self.devices), auto_shard_dataset=False)

    def _setup_tensorflow(self, requested):
        cluster = _tf_cluster()
        if cluster is not None:
            self._setup_tensorflow_workers(requested, *cluster)
            return
        import tensorflow as tf

        logical = {_tf_short_name(d.name): d.name for d in tf.config.list_logical_devices()}
        if requested is None:
            kinds = ("GPU",) if tf.config.list_logical_devices("GPU") else ("CPU",)
            self.devices = tuple(name for name, full in logical.items()
                                 if full.split(":")[-2] in kinds)
        else:
            for name in requested:
                if name not in logical:
                    raise ValueError(_missing_device(name, list(logical)))
            self.devices = tuple(requested)
        if len(self.devices) > 1:
            # one strategy per device list and process: a second MirroredStrategy over the
            # same devices restarts the collective instance keys of the first, and its
            # all-reduces then fail ("Shape mismatch in the collective instance")
            if self.devices not in _STRATEGIES:
                _STRATEGIES[self.devices] = tf.distribute.MirroredStrategy(
                    devices=[logical[name] for name in self.devices])
            self.strategy = _STRATEGIES[self.devices]

    def _setup_tensorflow_workers(self, requested, workers, index):
        """Several hosts: ``tf.distribute.MultiWorkerMirroredStrategy`` from ``TF_CONFIG``
        (``workers`` tasks of type ``worker``, this process is task ``index``)."""
        if requested is not None:
            raise ValueError(
                f"devices={','.join(requested)!r} cannot be given to a multi-worker run "
                "(TF_CONFIG is set): the run uses every local accelerator (else the CPU) of "
                "every worker. Leave --devices out.")
        import tensorflow as tf

        if "multi-worker" not in _STRATEGIES:  # one per process (TensorFlow's rule)
            _STRATEGIES["multi-worker"] = tf.distribute.MultiWorkerMirroredStrategy()
        self.strategy = _STRATEGIES["multi-worker"]
        local = [_tf_short_name(name) for name in self.strategy.extended.worker_devices]
        if self.strategy.num_replicas_in_sync != workers * len(local):
            raise ValueError(
                f"The {workers} workers of TF_CONFIG have {self.strategy.num_replicas_in_sync} "
                f"replicas in all, not {len(local)} each as this one: give every worker as "
                "many devices.")
        self.processes, self.process_index = workers, index
        self.devices = tuple(f"worker:{w}/{name}" for w in range(workers) for name in local)

    # === what the run prints ===

    def describe(self, batch_size, train_images, drop_remainder):
        """Lines saying how the steps run (none when every option is the default).

        Args:
            batch_size: the global batch.
            train_images: images of the training split.
            drop_remainder: whether the last partial batch of an epoch is skipped.
        """
        lines = list(self.notes)
        if self.replicas > 1:
            process = (f" of {self.processes} processes (this one: {self.process_index})"
                       if self.processes > 1 else "")
            lines.append(
                f"Data parallel: {self.replicas} replicas on {', '.join(self.devices)}{process}, "
                f"{self._engine()}; global batch {batch_size} = "
                f"{_images(batch_size // self.replicas)} per replica.")
            skipped = train_images % batch_size
            if drop_remainder and skipped:
                lines.append(f"The last {skipped} training images of each epoch's order make "
                             "no full global batch and are skipped.")
            if self.processes > 1:
                lines.append("Every process prepares each global batch and feeds its share "
                             f"({_images(batch_size // self.processes)}).")
        lines.extend(self._batchnorm_notes(batch_size))
        if self.precision != "float32":
            compute = self.precision.split("_")[1]
            scaling = ("the loss scaled by Keras' LossScaleOptimizer"
                       if compute == "float16" else "no loss scaling needed")
            lines.append(f"Precision {self.precision}: {compute} compute, float32 variables "
                         f"and logits, {scaling}.")
        if self.jit_compile != "auto":
            state = "on" if self.jit_compile else "off"
            lines.append(f"jit_compile={self.jit_compile}: XLA {state} for the training and "
                         "validation steps.")
        return lines

    def _engine(self):
        if self.backend == "tensorflow" and self.processes > 1:
            return "tf.distribute.MultiWorkerMirroredStrategy (TensorFlow)"
        return _ENGINES[self.backend]

    def _batchnorm_notes(self, batch_size):
        if self.replicas == 1:
            if self.sync_batchnorm:
                return ["sync_batchnorm: one replica, whose BatchNormalization statistics are "
                        "over the whole batch already; nothing to synchronize."]
            return []
        if self.backend == "jax":
            note = ("BatchNormalization statistics: over the global batch (the JAX step is one "
                    "program over all devices)")
            return [note + (", so sync_batchnorm changes nothing." if self.sync_batchnorm
                            else ".")]
        if self.sync_batchnorm:
            return [f"BatchNormalization statistics: over the global batch (synchronized=True "
                    f"across the {self.replicas} replicas)."]
        return [f"BatchNormalization statistics: per replica "
                f"({_images(batch_size // self.replicas)}); --sync-batchnorm computes them "
                "over the global batch."]

    # === the run's pieces ===

    def per_replica_batch(self, batch_size):
        """``batch_size`` (the global batch) divided among the replicas.

        Raises:
            ValueError: ``batch_size`` does not split evenly.
        """
        if batch_size % self.replicas:
            low = batch_size // self.replicas * self.replicas
            options = " or ".join(str(n) for n in (low, low + self.replicas) if n > 0)
            raise ValueError(
                f"batch_size={batch_size} (--batch-size, the global batch) does not split "
                f"evenly over the {self.replicas} replicas of distribute='data' "
                f"({', '.join(self.devices)}); give a multiple of {self.replicas}, e.g. "
                f"{options}, or fewer devices (--devices).")
        return batch_size // self.replicas

    def run_folder(self, output):
        """The run folder of this process: ``output``, or ``output/process-K`` for process
        K > 0 of a multi-process run (each process keeps a complete folder of its own)."""
        if self.process_index == 0:
            return output
        return os.path.join(output, f"process-{self.process_index}")

    @contextlib.contextmanager
    def active(self):
        """Make the dtype policy and the distribution (JAX) or strategy scope (TensorFlow)
        current; on exit the previous global policy and distribution are back."""
        previous = keras.config.dtype_policy()
        keras.config.set_dtype_policy(self.precision)
        try:
            if self.distribution is not None:
                scope = self.distribution.scope()
            elif self.strategy is not None:
                scope = self.strategy.scope()
            else:
                scope = contextlib.nullcontext()
            with scope:
                yield self
        finally:
            keras.config.set_dtype_policy(previous)

    def validation_batch_size(self, batch_size):
        """The validation batch for a one-device batch of ``batch_size`` images.

        TensorFlow with several replicas: rounded up to a multiple of the replicas, the
        last batches merged when needed (:class:`_ReplicaFeed`: a replica with no image
        of a batch fails in TensorFlow's convolutions, and padding would count in
        ``val_loss``); JAX pads each batch instead, where padding counts nowhere.
        """
        if self.strategy is None:
            return batch_size
        return -(-batch_size // self.replicas) * self.replicas

    def feed(self, pipeline):
        """What ``fit`` reads of ``pipeline`` (a :class:`~keras_seg.data.SegmentationPipeline`):
        the pipeline itself, or with several replicas a :class:`_ReplicaFeed`."""
        if self.replicas == 1:
            return pipeline
        feed = _ReplicaFeed(pipeline, self.replicas, self.processes, self.process_index,
                            workers=pipeline.workers, regroup=self.strategy is not None)
        if self.strategy is not None and self.processes > 1:
            return _worker_dataset(feed, self.strategy)
        return feed

    def compile(self, model, *, optimizer, loss, metrics, example):
        """``model.compile`` for this placement, inside :meth:`active`.

        Passes ``jit_compile`` and, for ``"mixed_float16"``, the optimizer wrapped in a
        ``LossScaleOptimizer``; on TensorFlow with several replicas also applies
        ``sync_batchnorm`` and builds
        the compiled loss and metrics from ``example`` (see :func:`_build_for_strategy`).
        A checkpoint keeps the compile settings of a default one-device run
        (:meth:`saving`).

        Args:
            model: the model, built inside :meth:`active`.
            optimizer, loss, metrics: as for ``model.compile``.
            example: a callable returning one training batch (called on TensorFlow with
                several replicas only).
        """
        if self.precision == "mixed_float16" and not isinstance(
                optimizer, keras.optimizers.LossScaleOptimizer):
            # what compile would do, done here so that the checkpoints name it: they then
            # load with their optimizer state whatever the global policy of the reader
            optimizer = keras.optimizers.LossScaleOptimizer(optimizer)
        self._portable_compile = None
        if self.jit_compile != "auto":
            model.compile(optimizer=optimizer, loss=loss, metrics=metrics)
            self._portable_compile = model.get_compile_config()
        model.compile(optimizer=optimizer, loss=loss, metrics=metrics,
                      jit_compile=self.jit_compile)
        self._synchronized = []
        if self.strategy is not None:
            if self.sync_batchnorm:
                self._synchronized = [layer for layer in model._flatten_layers()
                                      if isinstance(layer, keras.layers.BatchNormalization)]
                for layer in self._synchronized:
                    layer.synchronized = True  # read when the step is traced
            _build_for_strategy(model, self.strategy, example())
            if self.processes > 1:
                _metrics_with_an_axis(model)

    @contextlib.contextmanager
    def saving(self, model):
        """Make ``model`` save as a default one-device run would: BatchNormalization layers
        with ``synchronized=False`` (which every backend loads) and the compile settings
        with what ``jit_compile="auto"`` gives;
        restored on exit."""
        for layer in self._synchronized:
            layer.synchronized = False
        portable = self._portable_compile
        if portable is not None:
            model.get_compile_config = lambda: portable
        try:
            yield
        finally:
            if portable is not None:
                del model.get_compile_config
            for layer in self._synchronized:
                layer.synchronized = True


class _ReplicaFeed(keras.utils.PyDataset):
    """The batches of a pipeline as this process feeds them to several replicas.

    JAX (``regroup=False``): each batch is padded to a multiple of the replicas with
    examples that count nowhere in the metrics: zero images, masks of the pipeline's ignore
    index and zero pixel weights. Only a validation batch needs it, a training batch is a
    multiple already. JAX's ``DataParallel`` splits a batch evenly or not at all; its loss
    is that of the real pixels of the global batch, so ``val_loss`` and ``val_mean_iou``
    are those of the real images. With several processes, process ``k`` returns the
    ``k``-th of ``processes`` equal slices of the padded batch, which every process
    computes the same way.

    TensorFlow (``regroup=True``): no padding. TensorFlow's strategy cuts a batch of ``s``
    images into pieces of ``ceil(s / replicas)``, so a batch such as 1 image on 2 replicas
    leaves a replica with none, which its convolutions fail on; and an image of padding
    would count in ``val_loss`` (Keras weighs each replica's loss by its number of images:
    a padding image adds a zero). So the batches are the pipeline's, except that the last
    ones are merged into one when the last alone would leave a replica empty. Every
    replica then holds real images only and ``val_loss`` is their image-weighted mean.

    Args:
        pipeline: a :class:`~keras_seg.data.SegmentationPipeline`.
        replicas: replicas over all processes.
        processes: processes of the run.
        process_index: this process.
        workers: ``PyDataset`` workers.
        regroup: merge the last batches instead of padding (TensorFlow); with several
            processes (workers) each returns its piece of every batch.

    Raises:
        ValueError: ``regroup`` and a dataset that no grouping can spread over the replicas
            with at least one image on each.
    """

    def __init__(self, pipeline, replicas, processes, process_index, workers=1,
                 regroup=False):
        super().__init__(workers=workers)
        self.pipeline = pipeline
        self.replicas = replicas
        self.processes = processes
        self.process_index = process_index
        self._bounds = None
        if regroup:
            self._bounds = _tensorflow_batches(len(pipeline.dataset), pipeline.batch_size,
                                               len(pipeline), replicas, processes)

    def __len__(self):
        return len(self._bounds) if self._bounds is not None else len(self.pipeline)

    @property
    def num_batches(self):
        return len(self)

    def on_epoch_end(self):
        self.pipeline.on_epoch_end()

    def __getitem__(self, index):
        if self._bounds is not None:
            start, stop = self._bounds[index]
            if self.processes > 1:  # this worker's piece, cut as TensorFlow cuts a batch
                piece = -(-(stop - start) // self.processes)
                start, stop = (start + self.process_index * piece,
                               min(start + (self.process_index + 1) * piece, stop))
            epoch = self.pipeline.epoch
            return self.pipeline.batch_of(self.pipeline.order(epoch)[start:stop], epoch)
        batch = self.pipeline[index]
        size = len(batch[0])
        padded = -(-size // self.replicas) * self.replicas
        if padded != size:
            fill = (0.0, self.pipeline.ignore_index, 0.0)
            batch = tuple(
                np.concatenate([part, np.full((padded - size, *part.shape[1:]), value,
                                              dtype=part.dtype)])
                for part, value in zip(batch, fill, strict=False))
        share = padded // self.processes
        start = self.process_index * share
        return tuple(part[start:start + share] for part in batch)


def _every_replica_gets_one(size, replicas, processes=1):
    """Whether TensorFlow's split of a ``size``-image batch into pieces of
    ``ceil(size / replicas)`` gives each of the ``replicas`` at least one image; with
    several ``processes`` (workers), the batch first cut the same way into one piece per
    worker, each then split among the worker's ``replicas / processes``."""
    if processes > 1:
        piece = -(-size // processes)
        pieces = [min(piece, size - k * piece) for k in range(processes)]
        return all(p > 0 and _every_replica_gets_one(p, replicas // processes)
                   for p in pieces)
    return (replicas - 1) * -(-size // replicas) < size


def _tensorflow_batches(examples, batch_size, batches, replicas, processes=1):
    """``(start, stop)`` positions in the epoch's order of the batches fed to a
    TensorFlow strategy: the pipeline's ``batches`` batches of ``batch_size``, the last
    ones merged until no replica is left without an image."""
    bounds = [(k * batch_size, min((k + 1) * batch_size, examples)) for k in range(batches)]
    while len(bounds) > 1 and not _every_replica_gets_one(
            bounds[-1][1] - bounds[-1][0], replicas, processes):
        merged = (bounds[-2][0], bounds[-1][1])
        bounds[-2:] = [merged]
        # a merged tail is as good as its size: stop as soon as it spreads
    last = bounds[-1][1] - bounds[-1][0]
    if not _every_replica_gets_one(last, replicas, processes):
        need = next(n for n in range(last + 1, last + 2 * replicas * replicas + 1)
                    if _every_replica_gets_one(n, replicas, processes))
        raise ValueError(
            f"{examples} validation images cannot be spread over the {replicas} replicas of "
            "distribute='data' on TensorFlow with at least one image on each (its strategy "
            f"cuts a batch of n images into pieces of ceil(n / {replicas})), and padding "
            f"images would lower val_loss. Use at least {need} validation images, fewer "
            "devices (--devices), or KERAS_BACKEND=jax, which pads without counting it.")
    return bounds


# === backend details ===


def _build_for_strategy(model, strategy, batch):
    """Build the compiled loss, metrics and optimizer of ``model`` from a real batch, and
    turn off the build step of Keras' TensorFlow ``fit`` / ``evaluate``.

    Keras 3.15's TensorFlow trainer under a strategy builds them from the replicas' MEAN of
    the first batch (``_maybe_symbolic_build``, at every ``fit`` and ``evaluate``): the
    int32 masks become float64, which :class:`keras_seg.metrics.MeanIoU` refuses, and a
    batch some replica gets fewer images of (a 1-image validation batch on 2 replicas)
    fails to reduce. Built here, inside the scope, from the batch itself, nothing is left
    for that step to do, and the model's own copy of it does nothing.
    """
    batch = tuple(part[:1] for part in batch)
    with strategy.scope():
        model._symbolic_build(data_batch=batch)
    model._maybe_symbolic_build = _already_built


def _already_built(iterator=None, data_batch=None):
    """What :func:`_build_for_strategy` leaves of Keras' build step: nothing to do."""
    return None


def _jax_cluster_environment():
    """``(variable, address, processes, process id)`` of a multi-process JAX launch, or None.

    Keras' ``KERAS_DISTRIBUTION_*`` variables first, then JAX's ``JAX_COORDINATOR_ADDRESS``
    / ``JAX_NUM_PROCESSES`` / ``JAX_PROCESS_ID``.

    Raises:
        ValueError: an address without the process count and id, or values that are not
            integers.
    """
    for names in (KERAS_CLUSTER_ENV, JAX_CLUSTER_ENV):
        address = os.environ.get(names[0])
        if not address:
            continue
        values = [os.environ.get(name) for name in names[1:]]
        try:
            count, index = (int(v) for v in values)
        except (TypeError, ValueError):
            raise ValueError(
                f"{names[0]}={address!r} starts a multi-process run, which also needs "
                f"{names[1]} (the number of processes) and {names[2]} (this process, from 0) "
                f"as integers; got {names[1]}={values[0]!r}, {names[2]}={values[1]!r}."
            ) from None
        return names[0], address, count, index
    return None


def _initialize_jax(variable, address, count, index):
    """Join the processes of a multi-process JAX run (``keras.distribution.initialize``),
    once per process."""
    import jax

    if jax.distributed.is_initialized():
        return
    try:
        keras.distribution.initialize(address, count, index)
    except RuntimeError as err:
        raise ValueError(
            f"Cannot join the multi-process run of {variable}={address!r} (process {index} of "
            f"{count}): {err} Start each process with the environment set, and train before "
            "anything else runs JAX in it.") from err


def _tf_cluster():
    """``(workers, this task's index)`` of the cluster ``TF_CONFIG`` describes, or ``None``
    when it is unset or names a single task."""
    text = os.environ.get("TF_CONFIG")
    if not text:
        return None
    try:
        config = json.loads(text)
        cluster, task = config.get("cluster", {}), config.get("task", {})
        tasks = sum(len(addresses) for addresses in cluster.values())
    except (ValueError, AttributeError, TypeError):
        raise ValueError(f"TF_CONFIG is not the JSON of a TensorFlow cluster: {text!r}; unset "
                         "it to train on this machine's devices.") from None
    if tasks <= 1:
        return None
    if set(cluster) != {"worker"} or task.get("type") != "worker":
        raise ValueError(
            f"TF_CONFIG names the task types {sorted(cluster)} and this task as "
            f"{task.get('type')!r}: keras-seg's multi-worker runs take a cluster of "
            "'worker' tasks only (worker 0 is the chief), e.g. {\"cluster\": {\"worker\": "
            "[\"host1:port\", \"host2:port\"]}, \"task\": {\"type\": \"worker\", \"index\": 0}}.")
    index = task.get("index")
    if not isinstance(index, int) or not 0 <= index < tasks:
        raise ValueError(f"TF_CONFIG's task index {index!r} is not one of the {tasks} workers "
                         f"(0 .. {tasks - 1}).")
    return tasks, index


def _worker_dataset(feed, strategy):
    """``feed`` (this worker's piece of each global batch) as the ``DistributedDataset``
    that ``fit`` takes as it is: ``strategy.distribute_datasets_from_function``, one
    element per local replica and step (the worker's piece cut among its replicas as
    TensorFlow cuts a batch), nothing sharded or re-batched by TensorFlow, the length
    declared (so that ``fit`` starts it again every epoch); each start advances the epoch.
    (``experimental_distribute_dataset`` would take each worker's piece for a global batch
    and cut it again by the number of replicas in all.)"""
    import tensorflow as tf

    local = len(strategy.extended.worker_devices)
    first = feed[0]
    signature = tuple(
        tf.TensorSpec((None,) * (part.ndim - 1) + ((part.shape[-1],) if part.ndim == 4
                                                   else (None,)), tf.as_dtype(part.dtype))
        for part in first)

    def generate():
        # each pass is an epoch, advanced first as Keras' fit advances a PyDataset once
        # before its first epoch (EpochIterator.reset): the batches of a one-device run
        feed.on_epoch_end()
        for index in range(len(feed)):
            batch = feed[index]
            size = len(batch[0])
            piece = -(-size // local)
            for replica in range(local):
                yield tuple(part[replica * piece:(replica + 1) * piece] for part in batch)

    def dataset_fn(context):
        dataset = tf.data.Dataset.from_generator(generate, output_signature=signature)
        dataset = dataset.apply(tf.data.experimental.assert_cardinality(len(feed) * local))
        options = tf.data.Options()
        options.experimental_distribute.auto_shard_policy = (
            tf.data.experimental.AutoShardPolicy.OFF)
        return dataset.with_options(options).prefetch(2)

    return strategy.distribute_datasets_from_function(dataset_fn)


def _metrics_with_an_axis(model):
    """Make the step's metric values shape ``(1,)`` while ``fit`` traces it.

    Problem worked around (keras-team/keras#20585): Keras 3.15's TensorFlow trainer
    reduces the per-replica results of a step under ``MultiWorkerMirroredStrategy`` with
    ``strategy.reduce("MEAN", value, axis=0)``, which fails on the scalar metric values
    ("Invalid reduction dimension 0 for input with 0 dimensions"). With an axis of length
    1 the reduction is the mean over the replicas it means to be; outside a traced
    function (the epoch logs) the values stay scalars.
    """
    import tensorflow as tf

    results = model.get_metrics_result

    def with_an_axis():
        values = results()
        if not tf.inside_function():
            return values
        return {name: tf.reshape(value, (1,)) for name, value in values.items()}

    model.get_metrics_result = with_an_axis


def _tf_short_name(name):
    """``/job:localhost/replica:0/task:0/device:GPU:1`` -> ``gpu:1``."""
    kind, index = name.split(":")[-2:]
    return f"{kind.lower()}:{index}"


def _images(count):
    return f"{count} image{'s' if count != 1 else ''}"


def _missing_device(name, available):
    return (f"Device {name!r} (--devices) is not on this machine; its devices are "
            f"{', '.join(available) or 'none'} (keras.distribution.list_devices()).")

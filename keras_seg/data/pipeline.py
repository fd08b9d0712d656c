"""Input pipelines: batches of ``(images, masks[, weights])`` for ``model.fit``.

:class:`SegmentationPipeline` is a ``keras.utils.PyDataset``, so it feeds ``fit``,
``evaluate`` and ``predict`` on the TensorFlow, JAX and PyTorch backends alike;
:func:`to_tf_dataset` wraps the same batches in a ``tf.data.Dataset`` when TensorFlow is
installed.

Determinism: the example order of epoch ``e`` is a permutation drawn from
``numpy.random.default_rng([seed, e])``, and example ``i`` of epoch ``e`` is augmented with
``numpy.random.default_rng([seed, e, i])``. Batches therefore depend only on
``(seed, epoch, batch index)``, not on the number of workers or the order Keras requests
them in; each epoch (``on_epoch_end``, which ``fit`` calls) brings a new order and new
augmentations.
"""

import itertools

import keras
import numpy as np

from keras_seg.data.augment import RandomCrop, _as_size, check_pair, pad_to

__all__ = ["IMAGENET_MEAN", "IMAGENET_STD", "SegmentationPipeline", "to_tf_dataset"]

IMAGENET_MEAN = np.array([0.485, 0.456, 0.406], dtype=np.float32)
IMAGENET_STD = np.array([0.229, 0.224, 0.225], dtype=np.float32)


class SegmentationPipeline(keras.utils.PyDataset):
    """Batches of a segmentation dataset for ``model.fit``, shuffled, augmented and checked.

    Each batch is ``(images, masks)``, or ``(images, masks, weights)`` when
    ``sample_weight_fn`` is given:

    * ``images``: ``float32 (B, H, W, 3)``. Scaling (``normalize``): ``"unit"`` (default)
      divides by 255 into ``[0, 1]``; ``"imagenet"`` then subtracts the ImageNet mean
      ``(0.485, 0.456, 0.406)`` and divides by its std ``(0.229, 0.224, 0.225)`` (what
      torchvision-style pretrained backbones expect); ``None`` keeps ``[0, 255]``; a
      callable receives the ``float32`` batch in ``[0, 255]`` and returns the model input
      (e.g. ``keras.applications.resnet.preprocess_input`` for Caffe-style weights).
    * ``masks``: ``int32 (B, H, W)`` class indices or ``ignore_index``.
    * ``weights``: ``float32 (B, H, W)``, ``sample_weight_fn(mask)`` of each example (for
      instance :func:`~keras_seg.data.unet_weight_map`), 0 on padding.

    Per example, in order: read ``dataset[i]``; ``augment(image, mask, rng)``; a random
    ``crop_size`` crop (padding smaller images: image with ``image_fill``, mask with the
    ignore index); a label check (every value in ``[0, num_classes)`` or the ignore index,
    else ``ValueError`` naming the file); ``sample_weight_fn``.

    Sizes: without ``crop_size``, examples of different sizes in one batch are padded at
    the bottom and right to the largest height and width (image with ``image_fill``, mask
    with the ignore index, weights with 0), so losses and metrics skip the padding. On the
    TensorFlow backend, ``fit`` fixes a ``PyDataset``'s batch shape from its first batches;
    for mixed sizes there, pass ``crop_size`` or use :func:`to_tf_dataset` (which declares
    unknown sizes).

    Args:
        dataset: a :class:`~keras_seg.data.SegmentationDataset` (anything with ``len`` and
            ``ds[i] -> (uint8 image (H, W, 3), int mask (H, W))``).
        batch_size: examples per batch.
        augment: ``None`` or a callable ``(image, mask, rng) -> (image, mask)`` such as
            :class:`~keras_seg.data.Augment`.
        crop_size: ``None``, an int or ``(height, width)``: random crop of every example.
        shuffle: reshuffle the examples every epoch (from ``seed``).
        seed: seed of the shuffling and the augmentation.
        num_classes: classes for the label check; default ``dataset.num_classes``.
        sample_weight_fn: ``None`` or ``fn(mask int32 (H, W)) -> weights (H, W)``.
        drop_remainder: drop the last, smaller batch.
        normalize: ``"unit"``, ``"imagenet"``, ``None`` or a callable (see above).
        image_fill: image padding value: a number, an RGB triple or ``"mean"``.
        ignore_index: mask padding value and the label the check lets through; default
            ``dataset.ignore_index`` (255).
        workers, use_multiprocessing, max_queue_size: passed to ``keras.utils.PyDataset``
            (parallel loading in ``fit``; the batches are the same).

    Attributes:
        epoch: the epoch whose batches ``pipeline[i]`` returns; ``on_epoch_end`` increments
            it, :meth:`set_epoch` sets it. ``model.fit`` calls ``on_epoch_end`` after every
            epoch, and once before the first when it peeks at a batch to build the model,
            so fit's epoch ``e`` may read the pipeline's epoch ``e + 1``: still the same
            batches on every run of the same script.
    """

    def __init__(self, dataset, batch_size, *, augment=None, crop_size=None, shuffle=True,
                 seed=0, num_classes=None, sample_weight_fn=None, drop_remainder=False,
                 normalize="unit", image_fill=0, ignore_index=None, workers=1,
                 use_multiprocessing=False, max_queue_size=10):
        super().__init__(workers=workers, use_multiprocessing=use_multiprocessing,
                         max_queue_size=max_queue_size)
        if int(batch_size) < 1:
            raise ValueError(f"SegmentationPipeline: batch_size must be >= 1, got {batch_size}.")
        n = len(dataset)
        if n == 0:
            raise ValueError("SegmentationPipeline: the dataset is empty.")
        self.dataset = dataset
        self.batch_size = int(batch_size)
        self.drop_remainder = bool(drop_remainder)
        self._num_batches = n // self.batch_size if drop_remainder else -(-n // self.batch_size)
        if self._num_batches == 0:
            raise ValueError(
                f"SegmentationPipeline: {n} examples make no full batch of {batch_size} with "
                "drop_remainder=True; lower batch_size or set drop_remainder=False."
            )
        if augment is not None and not callable(augment):
            raise TypeError("SegmentationPipeline: augment must be callable (image, mask, rng).")
        if sample_weight_fn is not None and not callable(sample_weight_fn):
            raise TypeError("SegmentationPipeline: sample_weight_fn must be callable (mask).")
        self.augment = augment
        self.crop_size = None if crop_size is None else _as_size(crop_size, "crop_size")
        self.shuffle = bool(shuffle)
        self.seed = int(seed)
        self.num_classes = int(num_classes if num_classes is not None
                               else getattr(dataset, "num_classes", None) or 0)
        if self.num_classes < 1:
            raise ValueError(
                "SegmentationPipeline: pass num_classes= (the dataset does not define it)."
            )
        if ignore_index is None:
            ignore_index = getattr(dataset, "ignore_index", 255)
        self.ignore_index = int(ignore_index)
        self.sample_weight_fn = sample_weight_fn
        if not (normalize is None or callable(normalize) or normalize in ("unit", "imagenet")):
            raise ValueError(
                f"SegmentationPipeline: normalize must be 'unit', 'imagenet', None or a "
                f"callable, got {normalize!r}."
            )
        self.normalize = normalize
        self.image_fill = image_fill
        self._crop = (None if self.crop_size is None
                      else RandomCrop(self.crop_size, image_fill, self.ignore_index))
        self.epoch = 0

    # === Keras PyDataset interface ===

    def __len__(self):
        return self._num_batches

    @property
    def num_batches(self):
        return self._num_batches

    def __getitem__(self, index):
        return self.get_batch(index, self.epoch)

    def on_epoch_end(self):
        """Advance to the next epoch: new order (if ``shuffle``) and new augmentations."""
        self.epoch += 1

    def set_epoch(self, epoch):
        """Make ``pipeline[i]`` return the batches of epoch ``epoch``."""
        self.epoch = int(epoch)

    # === Batches ===

    def order(self, epoch):
        """The dataset indices in the order of epoch ``epoch``: ``int64 (len(dataset),)``."""
        n = len(self.dataset)
        if not self.shuffle:
            return np.arange(n)
        return np.random.default_rng([self.seed, int(epoch)]).permutation(n)

    def example(self, index, epoch=0):
        """Example ``index`` of the dataset as epoch ``epoch`` sees it.

        Returns:
            ``(image uint8 (H, W, 3), mask int32 (H, W), weights float32 (H, W) or None)``
            after augmentation, cropping and the label check.
        """
        image, mask = self.dataset[int(index)]
        where = self._describe(index)
        image, mask = check_pair(image, mask, where)
        if self.augment is not None or self._crop is not None:
            rng = np.random.default_rng([self.seed, int(epoch), int(index)])
            if self.augment is not None:
                image, mask = check_pair(*self.augment(image, mask, rng),
                                         f"augment output of {where}")
            if self._crop is not None:
                image, mask = self._crop(image, mask, rng)
        mask = mask.astype(np.int32, copy=False)
        bad = ((mask < 0) | (mask >= self.num_classes)) & (mask != self.ignore_index)
        if bad.any():
            raise ValueError(
                f"SegmentationPipeline: {where} has labels "
                f"{np.unique(mask[bad])[:10].tolist()} outside [0, {self.num_classes}) that "
                f"are not ignore_index={self.ignore_index} ({int(bad.sum())} pixels). Fix the "
                "masks or the dataset's num_classes / ignore_index."
            )
        weights = None
        if self.sample_weight_fn is not None:
            weights = np.asarray(self.sample_weight_fn(mask), dtype=np.float32)
            if weights.shape != mask.shape:
                raise ValueError(
                    f"SegmentationPipeline: sample_weight_fn returned shape {weights.shape} "
                    f"for a mask of shape {mask.shape} ({where})."
                )
        return image, mask, weights

    def get_batch(self, index, epoch):
        """Batch ``index`` of epoch ``epoch`` (what ``pipeline[index]`` returns then)."""
        if not 0 <= index < self._num_batches:
            raise IndexError(f"batch index {index} out of range [0, {self._num_batches})")
        ids = self.order(epoch)[index * self.batch_size:(index + 1) * self.batch_size]
        return self.batch_of(ids, epoch)

    def batch_of(self, ids, epoch):
        """The batch of the dataset examples ``ids`` as epoch ``epoch`` sees them.

        Examples of different sizes are padded to the largest (images with
        ``image_fill``, masks with ``ignore_index``, weights with 0).

        Args:
            ids: dataset indices, at least one.
            epoch: the epoch (augmentations and crops are drawn per epoch and example).

        Returns:
            ``(images float32 (B, H, W, 3), masks int32 (B, H, W))`` and the weights
            ``float32 (B, H, W)`` when ``sample_weight_fn`` is set.
        """
        examples = [self.example(i, epoch) for i in ids]
        height = max(m.shape[0] for _, m, _ in examples)
        width = max(m.shape[1] for _, m, _ in examples)
        b = len(examples)
        images = np.empty((b, height, width, 3), dtype=np.uint8)
        masks = np.empty((b, height, width), dtype=np.int32)
        weights = np.zeros((b, height, width), dtype=np.float32)
        for k, (image, mask, w) in enumerate(examples):
            image, mask = pad_to(image, mask, (height, width), self.image_fill,
                                 self.ignore_index)
            images[k] = image
            masks[k] = mask
            if w is not None:
                weights[k, : w.shape[0], : w.shape[1]] = w
        images = self._normalize(images)
        if self.sample_weight_fn is not None:
            return images, masks, weights
        return images, masks

    def _normalize(self, images):
        x = images.astype(np.float32)
        if self.normalize is None:
            return x
        if callable(self.normalize):
            return np.asarray(self.normalize(x), dtype=np.float32)
        x /= 255.0
        if self.normalize == "imagenet":
            x = (x - IMAGENET_MEAN) / IMAGENET_STD
        return x

    def _describe(self, index):
        describe = getattr(self.dataset, "describe", None)
        return describe(int(index)) if describe is not None else f"example {int(index)}"


def to_tf_dataset(dataset, batch_size=None, prefetch=True, **pipeline_kwargs):
    """The batches of a :class:`SegmentationPipeline` as a ``tf.data.Dataset``.

    Requires TensorFlow (imported here, not by the package). Each pass over the returned
    dataset yields the batches of the next epoch of the pipeline: the first pass those of
    ``pipeline.epoch`` at the time of the call, the next pass those of the following epoch,
    and so on, exactly as ``pipeline.get_batch(i, epoch)`` returns them. Spatial sizes are
    declared unknown unless ``crop_size`` fixes them, so mixed image sizes work.

    Args:
        dataset: a :class:`SegmentationPipeline`, or a dataset to build one from with
            ``batch_size`` and ``pipeline_kwargs``.
        batch_size: batch size when ``dataset`` is not a pipeline.
        prefetch: add ``.prefetch(tf.data.AUTOTUNE)``.
        **pipeline_kwargs: arguments of :class:`SegmentationPipeline`.

    Returns:
        ``tf.data.Dataset`` of ``(images, masks)`` or ``(images, masks, weights)`` with the
        dtypes and shapes of the pipeline's batches.
    """
    try:
        import tensorflow as tf
    except ImportError as e:  # pragma: no cover - depends on the environment
        raise ImportError(
            "to_tf_dataset needs TensorFlow (pip install tensorflow); on other backends feed "
            "the SegmentationPipeline to model.fit directly."
        ) from e
    if isinstance(dataset, SegmentationPipeline):
        if batch_size is not None or pipeline_kwargs:
            raise ValueError("to_tf_dataset: pass either a pipeline or a dataset with "
                             "batch_size and pipeline arguments, not both.")
        pipeline = dataset
    else:
        if batch_size is None:
            raise ValueError("to_tf_dataset: batch_size is required to build a pipeline.")
        pipeline = SegmentationPipeline(dataset, batch_size, **pipeline_kwargs)

    h, w = pipeline.crop_size if pipeline.crop_size is not None else (None, None)
    signature = [tf.TensorSpec((None, h, w, 3), tf.float32),
                 tf.TensorSpec((None, h, w), tf.int32)]
    if pipeline.sample_weight_fn is not None:
        signature.append(tf.TensorSpec((None, h, w), tf.float32))
    epochs = itertools.count(pipeline.epoch)

    def generate():
        epoch = next(epochs)
        for i in range(len(pipeline)):
            yield pipeline.get_batch(i, epoch)

    ds = tf.data.Dataset.from_generator(generate, output_signature=tuple(signature))
    ds = ds.apply(tf.data.experimental.assert_cardinality(len(pipeline)))
    if prefetch:
        ds = ds.prefetch(tf.data.AUTOTUNE)
    return ds

"""Mask-safe augmentation and the SegmentationPipeline (batches, determinism, fit)."""

import keras
import numpy as np
import pytest

from keras_seg.data import (
    Augment,
    ColorJitter,
    Compose,
    ElasticDeformation,
    RandomCrop,
    RandomHorizontalFlip,
    RandomRotation,
    RandomScale,
    SegmentationDataset,
    SegmentationPipeline,
    to_tf_dataset,
    unet_weight_map,
)
from keras_seg.data.pipeline import IMAGENET_MEAN, IMAGENET_STD


def _pair(h=24, w=20, values=(0, 3, 7), dtype=np.int32, seed=0):
    rng = np.random.default_rng(seed)
    image = rng.integers(0, 256, (h, w, 3), dtype=np.uint8)
    mask = rng.choice(values, size=(h, w)).astype(dtype)
    return image, mask


def _blocks(h=32, w=32):
    """Mask of four constant quadrants and an image whose red channel encodes the class."""
    mask = np.zeros((h, w), np.int32)
    mask[: h // 2, w // 2:] = 1
    mask[h // 2:, : w // 2] = 2
    mask[h // 2:, w // 2:] = 3
    image = np.zeros((h, w, 3), np.uint8)
    image[..., 0] = mask * 60 + 20
    return image, mask


ALL_TRANSFORMS = [
    RandomHorizontalFlip(1.0),
    RandomScale((0.5, 2.0)),
    RandomCrop((30, 9)),
    RandomRotation(30),
    ElasticDeformation(grid=3, sigma=4.0),
    ColorJitter(0.3, 0.3, 0.3, hue=0.1),
    Augment(flip=0.5, scale=(0.5, 1.5), crop_size=16, rotation=20, elastic={"sigma": 3.0},
            color_jitter=0.2, image_fill="mean"),
    Augment.unet(),
    Augment.pspnet(crop_size=(20, 20)),
]


def test_masks_never_gain_values():
    # one test over every transform (a test per transform costs a Keras session reset each)
    for transform in ALL_TRANSFORMS:
        pads = isinstance(transform, RandomCrop | RandomRotation | Augment)
        for dtype in (np.uint8, np.int32):
            for seed in range(4):
                image, mask = _pair(dtype=dtype, seed=seed)
                out_image, out_mask = transform(image, mask, np.random.default_rng(seed))
                assert out_image.dtype == np.uint8 and out_image.ndim == 3, transform
                assert out_mask.dtype == dtype, transform
                assert out_mask.shape == out_image.shape[:2], transform
                allowed = set(np.unique(mask)) | ({255} if pads else set())
                assert set(np.unique(out_mask)) <= allowed, transform
                # deterministic under a seed
                again = transform(image, mask, np.random.default_rng(seed))
                np.testing.assert_array_equal(again[0], out_image, err_msg=repr(transform))
                np.testing.assert_array_equal(again[1], out_mask, err_msg=repr(transform))


def test_flip_scale_crop_exact():
    image, mask = _pair()
    rng = np.random.default_rng(0)
    out_image, out_mask = RandomHorizontalFlip(1.0)(image, mask, rng)
    np.testing.assert_array_equal(out_image, image[:, ::-1])
    np.testing.assert_array_equal(out_mask, mask[:, ::-1])
    assert RandomHorizontalFlip(0.0)(image, mask, rng)[1] is mask
    _, out_mask = RandomScale((2.0, 2.0))(image, mask, rng)  # nearest: each label -> 2x2 block
    np.testing.assert_array_equal(out_mask, np.repeat(np.repeat(mask, 2, 0), 2, 1))
    out_image, out_mask = RandomScale((0.5, 0.5))(image, mask, rng)
    assert out_image.shape == (12, 10, 3) and out_mask.shape == (12, 10)
    # crop larger than the image in height: padding is the fill color / the ignore index
    out_image, out_mask = RandomCrop((30, 8), image_fill=(1, 2, 3))(image, mask, rng)
    assert out_image.shape == (30, 8, 3)
    assert (out_mask[24:] == 255).all() and (out_image[24:] == (1, 2, 3)).all()
    left = next(c for c in range(13) if np.array_equal(out_mask[:24], mask[:, c:c + 8]))
    np.testing.assert_array_equal(out_image[:24], image[:, left:left + 8])
    out_image, _ = RandomCrop(40, image_fill="mean")(image, mask, rng)
    np.testing.assert_array_equal(out_image[-1, -1], np.round(image.reshape(-1, 3).mean(0)))


def test_rotation_and_elastic_keep_image_and_mask_aligned():
    image, mask = _blocks()
    for transform in (RandomRotation(25, ignore_index=255), ElasticDeformation(sigma=3.0)):
        out_image, out_mask = transform(image, mask, np.random.default_rng(1))
        assert not np.array_equal(out_mask, mask)  # it did move
        valid = out_mask != 255
        # the red channel still encodes the class except within a pixel of class borders
        agree = np.abs(out_image[..., 0].astype(int) - (out_mask * 60 + 20)) < 5
        assert agree[valid].mean() > 0.85
        if isinstance(transform, RandomRotation):
            assert out_mask[0, 0] == 255 and (out_image[0, 0] == 0).all()  # corner padding
    # zero angle / zero displacement are the identity
    out = ElasticDeformation(sigma=0.0)(image, mask, np.random.default_rng(0))
    np.testing.assert_array_equal(out[0], image)
    np.testing.assert_array_equal(out[1], mask)
    out = RandomRotation(0.0)(image, mask, np.random.default_rng(0))
    np.testing.assert_array_equal(out[1], mask)


def test_elastic_displacement_is_the_coarse_grid():
    t = ElasticDeformation(grid=3, sigma=10.0)
    coarse = np.random.default_rng(5).normal(0.0, 10.0, size=(2, 3, 3))
    disp = t.displacement((21, 31), np.random.default_rng(5))
    assert disp.shape == (2, 21, 31)
    for i, r in enumerate((0, 10, 20)):  # control points sit on these rows / columns
        for j, c in enumerate((0, 15, 30)):
            np.testing.assert_allclose(disp[:, r, c], coarse[:, i, j], atol=1e-6)
    many = np.concatenate([t.displacement((5, 5), np.random.default_rng(s))[:, ::2, ::2]
                           .ravel() for s in range(200)])
    assert 9.0 < many.std() < 11.0  # sigma = 10 px


def test_color_jitter_changes_image_only():
    image, mask = _pair()
    out_image, out_mask = ColorJitter(brightness=0.5, contrast=0, saturation=0)(
        image, mask, np.random.default_rng(3))
    assert out_mask is mask
    factor = np.random.default_rng(3).uniform(0.5, 1.5)
    np.testing.assert_allclose(out_image, np.clip(np.round(image * factor), 0, 255), atol=1)
    gray = np.repeat(image[..., :1], 3, axis=-1)
    out_gray, _ = ColorJitter(0, 0, saturation=0.9, hue=0.3)(gray, mask, 0)
    np.testing.assert_array_equal(out_gray, gray)  # gray has no saturation or hue to change


def test_compose_and_errors():
    image, mask = _pair()
    chain = Compose([RandomHorizontalFlip(1.0), RandomHorizontalFlip(1.0)])
    np.testing.assert_array_equal(chain(image, mask, 0)[1], mask)
    a = Augment(crop_size=8)(image, mask, np.random.default_rng(0))
    b = Augment(crop_size=8)(image, mask, np.random.default_rng(1))
    assert a[0].shape == (8, 8, 3) and not np.array_equal(a[0], b[0])
    with pytest.raises(ValueError, match="mask size"):
        chain(image, mask[:5], 0)
    with pytest.raises(ValueError, match="uint8"):
        chain(image.astype(np.float32), mask, 0)
    with pytest.raises(ValueError, match="integer"):
        chain(image, mask.astype(np.float32), 0)
    with pytest.raises(TypeError, match="not callable"):
        Compose([3])


# === pipeline ===


class ArrayDataset(SegmentationDataset):
    """In-memory dataset: example i is all ``i % num_classes`` with a size from ``sizes``."""

    def __init__(self, n=7, num_classes=3, sizes=((8, 8),), bad_index=None):
        self.n, self.num_classes = n, num_classes
        self.class_names = [str(c) for c in range(num_classes)]
        self.sizes, self.bad_index = sizes, bad_index

    def __len__(self):
        return self.n

    def __getitem__(self, i):
        h, w = self.sizes[i % len(self.sizes)]
        image = np.full((h, w, 3), i * 10, np.uint8)
        mask = np.full((h, w), i % self.num_classes, np.uint8)
        if i == self.bad_index:
            mask[0, 0] = 9
        return image, mask

    def describe(self, i):
        return f"file_{i}.png"


def _ids(batch):
    return (batch[0][:, 0, 0, 0] * 255 / 10).round().astype(int).tolist()


def test_pipeline_batches_and_scaling():
    ds = ArrayDataset()
    p = SegmentationPipeline(ds, 3, shuffle=False)
    assert len(p) == 3 and p.num_batches == 3
    images, masks = p[0]
    assert images.dtype == np.float32 and images.shape == (3, 8, 8, 3)
    assert masks.dtype == np.int32 and masks.shape == (3, 8, 8)
    np.testing.assert_allclose(images[1], ds[1][0] / 255.0)
    np.testing.assert_array_equal(masks[2], ds[2][1])
    assert p[2][0].shape[0] == 1  # last, smaller batch
    assert len(SegmentationPipeline(ds, 3, drop_remainder=True)) == 2
    imagenet = SegmentationPipeline(ds, 3, shuffle=False, normalize="imagenet")[0][0]
    np.testing.assert_allclose(imagenet, (images - IMAGENET_MEAN) / IMAGENET_STD, rtol=1e-5)
    raw = SegmentationPipeline(ds, 3, shuffle=False, normalize=None)[0][0]
    np.testing.assert_allclose(raw, images * 255.0, rtol=1e-6)
    p2 = SegmentationPipeline(ds, 2, workers=2, use_multiprocessing=False)
    assert p2.workers == 2 and p2.use_multiprocessing is False


def test_pipeline_shuffle_is_deterministic_per_epoch():
    ds = ArrayDataset(n=9)
    a, b = SegmentationPipeline(ds, 4, seed=3), SegmentationPipeline(ds, 4, seed=3)
    epochs = []
    for _ in range(3):
        ids = sum((_ids(a[i]) for i in range(len(a))), [])
        assert sorted(ids) == list(range(9))  # a permutation: each example once per epoch
        assert ids == sum((_ids(b[i]) for i in range(len(b))), [])
        epochs.append(ids)
        a.on_epoch_end()
        b.on_epoch_end()
    assert epochs[0] != epochs[1] != epochs[2]
    a.set_epoch(1)
    assert _ids(a[0]) == epochs[1][:4]
    assert _ids(SegmentationPipeline(ds, 4, seed=4)[0]) != epochs[0][:4]


def test_pipeline_pads_mixed_sizes_and_crops():
    ds = ArrayDataset(n=4, sizes=((6, 9), (8, 5)))
    images, masks = SegmentationPipeline(ds, 2, shuffle=False, image_fill=0)[0]
    assert images.shape == (2, 8, 9, 3)
    assert (masks[0, 6:] == 255).all() and (masks[1, :, 5:] == 255).all()
    assert (masks[0, :6] == 0).all() and (images[0, 6:] == 0).all()
    p = SegmentationPipeline(ds, 2, crop_size=(7, 7), augment=Augment(scale=(0.8, 1.2)))
    for e in range(2):
        p.set_epoch(e)
        for i in range(len(p)):
            images, masks = p[i]
            assert images.shape == (2, 7, 7, 3) and masks.shape == (2, 7, 7)


def test_pipeline_sample_weights_and_label_check():
    ds = ArrayDataset(n=4, num_classes=2, sizes=((6, 6), (8, 8)))
    p = SegmentationPipeline(ds, 2, shuffle=False,
                             sample_weight_fn=lambda m: np.full(m.shape, 2.0, np.float32))
    images, masks, weights = p[0]
    assert weights.dtype == np.float32 and weights.shape == masks.shape == (2, 8, 8)
    assert (weights[0, :6, :6] == 2).all() and (weights[0, 6:] == 0).all()
    unet = SegmentationPipeline(ds, 2, sample_weight_fn=unet_weight_map)[1]
    assert len(unet) == 3
    bad = SegmentationPipeline(ArrayDataset(n=4, bad_index=2), 2, shuffle=False)
    bad[0]
    with pytest.raises(ValueError, match=r"file_2\.png has labels \[9\] outside \[0, 3\)"):
        bad[1]
    with pytest.raises(ValueError, match="empty"):
        SegmentationPipeline(ArrayDataset(n=0), 2)


class StripesDataset(SegmentationDataset):
    """Class = whether the red channel is bright: a 1x1 conv learns it in a few steps."""

    num_classes = 2
    class_names = ["dark", "bright"]

    def __len__(self):
        return 8

    def __getitem__(self, i):
        rng = np.random.default_rng(i)
        mask = rng.integers(0, 2, (12, 12)).astype(np.uint8)
        image = rng.integers(0, 60, (12, 12, 3)).astype(np.uint8)
        image[..., 0] += (mask * 190).astype(np.uint8)
        mask[0, :] = 255  # an ignored row
        return image, mask


def test_pipeline_trains_with_fit():
    train = SegmentationPipeline(StripesDataset(), 4, augment=Augment(scale=None),
                                 sample_weight_fn=lambda m: (m != 255).astype(np.float32))
    inputs = keras.Input((None, None, 3))
    model = keras.Model(inputs, keras.layers.Conv2D(2, 1)(inputs))
    model.compile(keras.optimizers.Adam(0.3),
                  keras.losses.SparseCategoricalCrossentropy(from_logits=True, ignore_class=255))
    history = model.fit(train, epochs=4, verbose=0)
    losses = history.history["loss"]
    assert np.isfinite(losses).all() and losses[-1] < 0.5 * losses[0]
    # fit's on_epoch_end advanced the shuffling / augmentation (Keras may call it once more
    # before the first epoch, after peeking at a batch to build the model)
    assert train.epoch in (4, 5)
    images, masks, _ = train[0]
    pred = np.argmax(keras.ops.convert_to_numpy(model(images)), axis=-1)
    valid = masks != 255
    assert (pred[valid] == masks[valid]).mean() > 0.95


def test_to_tf_dataset_matches_pipeline():
    if keras.backend.backend() != "tensorflow":
        pytest.skip("tf.data adapter is tested under the TensorFlow backend")
    ds = ArrayDataset(n=5, sizes=((6, 9), (8, 5)))
    p = SegmentationPipeline(ds, 2, seed=1, augment=Augment(scale=(0.5, 1.5)),
                             sample_weight_fn=lambda m: (m == 1).astype(np.float32))
    tfds = to_tf_dataset(p)
    assert tfds.cardinality().numpy() == 3
    for epoch in range(2):  # each pass is the next epoch
        for i, batch in enumerate(tfds):
            expected = p.get_batch(i, epoch)
            assert len(batch) == 3
            for got, want in zip(batch, expected, strict=True):
                assert got.dtype.as_numpy_dtype == want.dtype
                np.testing.assert_array_equal(got.numpy(), want)
    built = to_tf_dataset(ds, batch_size=2, shuffle=False, crop_size=4)
    assert built.element_spec[0].shape.as_list() == [None, 4, 4, 3]
    with pytest.raises(ValueError, match="batch_size"):
        to_tf_dataset(ds)

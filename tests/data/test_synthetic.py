"""The built-in synthetic dataset: determinism, format, class coverage, geometry, and that
color alone does not tell the classes apart. numpy only: no model is built here."""

import numpy as np
import pytest

from keras_seg.data import SegmentationDataset, SyntheticShapes, default_palette
from keras_seg.data import synthetic as syn

SIZE = (48, 48)


@pytest.fixture(scope="module")
def train64():
    """64 training images, 48x48: images, masks and the dataset."""
    ds = SyntheticShapes("train", num_images=64, image_size=SIZE)
    return (*ds.arrays(), ds)


def test_protocol_and_formats():
    ds = SyntheticShapes("val", num_images=5, image_size=(40, 56), seed=3)
    assert isinstance(ds, SegmentationDataset)
    assert len(ds) == 5 and len(SyntheticShapes("train")) == 512
    assert len(SyntheticShapes("test")) == 128
    assert ds.num_classes == 7 and ds.ignore_index == 255
    assert ds.class_names == ["background", "disc", "square", "triangle", "ring", "cross",
                              "star"]
    np.testing.assert_array_equal(ds.palette, default_palette(7))
    image, mask = ds[4]
    assert image.shape == (40, 56, 3) and image.dtype == np.uint8
    assert mask.shape == (40, 56) and mask.dtype == np.uint8
    np.testing.assert_array_equal(ds[-1][0], image)
    assert len(list(ds)) == 5
    assert "val" in ds.describe(2) and "2" in ds.describe(2)
    images, masks = ds.arrays(1, 3)
    assert images.shape == (2, 40, 56, 3) and masks.shape == (2, 40, 56)
    np.testing.assert_array_equal(masks[1], ds[2][1])


def test_deterministic_random_access_and_disjoint_splits():
    a = SyntheticShapes("train", num_images=10, image_size=SIZE, seed=7)
    b = SyntheticShapes("train", num_images=1000, image_size=SIZE, seed=7)
    # any index, in any order, from any instance (of any length) gives the same arrays
    for i in (9, 0, 5):
        for x, y in zip(a[i], b[i], strict=True):
            np.testing.assert_array_equal(x, y)
    images = [a[i][0] for i in range(10)]
    assert all(not np.array_equal(images[0], im) for im in images[1:])
    others = [SyntheticShapes("val", num_images=10, image_size=SIZE, seed=7),
              SyntheticShapes("test", num_images=10, image_size=SIZE, seed=7),
              SyntheticShapes("train", num_images=10, image_size=SIZE, seed=8)]
    for other in others:
        for i in range(10):
            assert not any(np.array_equal(other[i][0], im) for im in images)


def test_masks_hold_valid_labels_and_every_class_occurs(train64):
    images, masks, ds = train64
    assert set(np.unique(masks)) <= set(range(7))
    counts = np.bincount(masks.ravel(), minlength=7)
    assert (counts > 0).all(), counts
    # every class is a real share of the pixels; background the largest but not all
    share = counts / counts.sum()
    assert 0.5 < share[0] < 0.9, share
    assert (share[1:] > 0.01).all(), share
    # and the objects are painted where the mask says: pixels change across the images
    assert images.std() > 40


def test_mask_matches_the_objects_and_occlusion(train64):
    _, masks, ds = train64
    occluded = 0
    for i in range(16):
        objects = ds.objects(i)
        assert ds.min_objects <= len(objects) <= ds.max_objects
        for obj in objects:
            assert 1 <= obj["class_id"] < 7
            assert ds.class_names[obj["class_id"]] == obj["class_name"]
            assert 0 <= obj["visible_pixels"] <= obj["pixels"]
            occluded += obj["visible_pixels"] < obj["pixels"]
        # the visible pixels of the objects are exactly the foreground of the mask
        assert sum(o["visible_pixels"] for o in objects) == int((masks[i] > 0).sum())
        for c in range(1, 7):
            visible = sum(o["visible_pixels"] for o in objects if o["class_id"] == c)
            assert visible == int((masks[i] == c).sum())
    assert occluded > 5  # later objects cover earlier ones


def test_object_sizes_span_the_range():
    ds = SyntheticShapes("train", num_images=200, image_size=(64, 64), min_objects=1,
                         max_objects=1)
    low, high = 64 / 16, 64 / 2
    sizes, extents = [], []
    for i in range(200):
        (obj,) = ds.objects(i)
        assert low <= obj["size"] <= high
        sizes.append(obj["size"])
        mask = ds[i][1]
        ys, xs = np.nonzero(mask)
        if ys.min() > 0 and xs.min() > 0 and ys.max() < 63 and xs.max() < 63:  # uncut
            extent = max(ys.max() - ys.min(), xs.max() - xs.min()) + 1
            extents.append((extent, obj["size"]))
    assert min(sizes) < low + 3 and max(sizes) > high - 3
    extents = np.array(extents)
    # the painted extent follows the drawn size d: between an upright square's side
    # (0.71 d) and the cross's arm corners (1.08 d), plus a pixel of rasterisation
    assert (extents[:, 0] >= 0.7 * extents[:, 1] - 2).all()
    assert (extents[:, 0] <= 1.08 * extents[:, 1] + 2).all()
    assert extents[:, 0].min() <= 8 and extents[:, 0].max() >= 28


AREAS = {  # analytic areas of the shapes: radius r of the bounding circle, parameter p
    "disc": lambda r, p: np.pi * r**2,
    "square": lambda r, p: 2 * r**2,
    "triangle": lambda r, p: 3 * np.sqrt(3) / 4 * r**2,
    "ring": lambda r, p: np.pi * (r**2 - syn._ring_inner_radius(r, p) ** 2),
    "cross": lambda r, p: 8 * syn._cross_half_arm(r, p) * r - 4 * syn._cross_half_arm(r, p) ** 2,
    "star": lambda r, p: 5 * r * syn._star_inner_radius(r, p) * np.sin(np.pi / 5),
    "bar": lambda r, p: 4 * r * syn._bar_half_width(r, p),
}


def test_shape_areas_match_geometry():
    """Rasterised at high resolution and any rotation, each shape has its analytic area
    and stays inside the box the generator paints (0.55 d + 1 around the center)."""
    assert set(AREAS) == set(syn.SHAPES)
    radius = 150.0
    grid = np.arange(-170, 170, dtype=np.float32) + 0.5  # pixel centers, as generated
    dy, dx = grid[:, None], grid[None, :]
    for name, area in AREAS.items():
        for angle, param in ((0.0, 0.0), (0.7, 0.5), (2.0, 0.99)):
            u = np.cos(angle) * dx + np.sin(angle) * dy
            v = np.cos(angle) * dy - np.sin(angle) * dx
            inside = syn._SHAPE_FUNCTIONS[name](u, v, radius, param)
            np.testing.assert_allclose(inside.sum(), area(radius, param), rtol=0.005,
                                       err_msg=name)
            assert np.abs(dy + 0 * dx)[inside].max() <= 1.1 * radius
            assert np.abs(dx + 0 * dy)[inside].max() <= 1.1 * radius


def test_shapes_option_picks_the_classes():
    shapes = ("ring", "bar", "disc", "cross", "square")
    ds = SyntheticShapes("train", num_images=40, image_size=SIZE, shapes=shapes)
    assert ds.num_classes == 6 and ds.class_names == ["background", *shapes]
    assert len(ds.palette) == 6
    seen = set()
    for i in range(len(ds)):
        image, mask = ds[i]
        assert mask.max() < 6
        for obj in ds.objects(i):
            assert obj["class_name"] == ds.class_names[obj["class_id"]]
            seen.add(obj["class_name"])
    assert seen == set(shapes)
    default = SyntheticShapes("train", num_images=1, image_size=SIZE)
    assert default.class_names == ["background", *syn.DEFAULT_SHAPES]
    for bad in ("disc", (), ("disc", "disc"), ("disc", "hexagon")):
        with pytest.raises(ValueError, match="shapes must be"):
            SyntheticShapes(shapes=bad)


def test_object_sizes_lean_to_the_large_end():
    """Sizes are low + (high - low) * sqrt(u): the fraction below the midpoint is 1/4."""
    ds = SyntheticShapes("train", num_images=300, image_size=(64, 64), min_objects=1,
                         max_objects=2)
    low, high = 4.0, 32.0
    sizes = np.array([obj["size"] for i in range(len(ds)) for obj in ds.objects(i)])
    below = np.mean(sizes < (low + high) / 2)
    assert 0.18 < below < 0.32, below


def _balanced_accuracy(train_pixels, train_labels, test_pixels, test_labels, classes):
    """Nearest class-mean color and a color-histogram (8 bins per channel) classifier."""
    means = np.stack([train_pixels[train_labels == c].mean(0) for c in classes])
    d = ((test_pixels[:, None, :] - means[None]) ** 2).sum(-1)
    nearest = np.asarray(classes)[d.argmin(1)]

    def bins(p):
        q = (p // 32).astype(np.int64)
        return q[:, 0] * 64 + q[:, 1] * 8 + q[:, 2]

    hist = np.stack([np.bincount(bins(train_pixels[train_labels == c]), minlength=512) + 1.0
                     for c in classes])
    hist /= hist.sum(1, keepdims=True)
    by_hist = np.asarray(classes)[hist[:, bins(test_pixels)].argmax(0)]
    return [np.mean([np.mean(pred[test_labels == c] == c) for c in classes])
            for pred in (nearest, by_hist)]


def test_color_carries_no_class_information():
    """Per-pixel color classifiers are at chance (1/6) on the foreground pixels.

    Small images, many of them: what counts is the number of objects (pixels of one
    object share its material)."""
    images, masks = SyntheticShapes("train", num_images=256, image_size=(32, 32)).arrays()
    test_images, test_masks = SyntheticShapes("val", num_images=128,
                                              image_size=(32, 32)).arrays()
    classes = list(range(1, 7))
    fg, test_fg = masks > 0, test_masks > 0
    x, y = images[fg].astype(np.float64), masks[fg]
    tx, ty = test_images[test_fg].astype(np.float64), test_masks[test_fg]
    for accuracy in _balanced_accuracy(x, y, tx, ty, classes):
        assert accuracy < 1 / 6 + 0.04, accuracy
    # the same classifiers do see color when it depends on the class: tint each class
    tint = np.linspace(-90, 90, 7)[:, None] * np.array([1.0, -0.5, 0.3])
    for accuracy in _balanced_accuracy(np.clip(x + tint[y], 0, 255), y,
                                       np.clip(tx + tint[ty], 0, 255), ty, classes):
        assert accuracy > 1 / 6 + 0.06, accuracy


def test_ignore_border_band():
    plain = SyntheticShapes("train", num_images=4, image_size=SIZE)
    banded = SyntheticShapes("train", num_images=4, image_size=SIZE, ignore_border=1)
    for i in range(4):
        image, mask = plain[i]
        image_b, mask_b = banded[i]
        np.testing.assert_array_equal(image, image_b)  # the band changes the labels only
        band = mask_b == 255
        assert 255 not in mask and band.any()
        np.testing.assert_array_equal(mask_b[~band], mask[~band])
        # the band is exactly the pixels with a differently labelled 8-neighbour
        padded = np.pad(mask, 1, mode="edge")
        differs = np.zeros_like(band)
        for dy in (-1, 0, 1):
            for dx in (-1, 0, 1):
                differs |= padded[1 + dy:1 + dy + SIZE[0], 1 + dx:1 + dx + SIZE[1]] != mask
        np.testing.assert_array_equal(band, differs)


def test_bad_arguments_raise_clear_errors():
    for kwargs, message in [
        ({"split": "training"}, "split must be one of"),
        ({"num_images": 0}, "num_images"),
        ({"image_size": (8, 64)}, "at least 16x16"),
        ({"image_size": 64}, "image_size must be"),
        ({"min_objects": 3, "max_objects": 2}, "min_objects"),
        ({"object_size": (0.5, 0.2)}, "object_size"),
        ({"object_size": (0.0, 0.5)}, "object_size"),
        ({"ignore_border": -1}, "ignore_border"),
        ({"seed": -1}, "seed"),
    ]:
        with pytest.raises(ValueError, match=message):
            SyntheticShapes(**kwargs)


def test_bad_indices():
    ds = SyntheticShapes("test", num_images=3, image_size=SIZE)
    with pytest.raises(IndexError, match="out of range"):
        ds[3]
    with pytest.raises(IndexError, match="out of range"):
        ds[-4]
    with pytest.raises(TypeError, match="ints"):
        ds[1.0]
    with pytest.raises(ValueError, match="start < stop"):
        ds.arrays(2, 2)

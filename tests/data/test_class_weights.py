"""Class weights (median frequency, ENet) and the U-Net weight map vs direct computations."""

import numpy as np
import pytest

from keras_seg.data import (
    SegmentationDataset,
    class_pixel_counts,
    enet_class_weights,
    median_frequency_weights,
    unet_weight_map,
)


class _Masks(SegmentationDataset):
    num_classes = 3

    def __init__(self, masks):
        self.masks = masks

    def __len__(self):
        return len(self.masks)

    def __getitem__(self, i):
        m = self.masks[i]
        return np.zeros(m.shape + (3,), np.uint8), m


def test_class_counts_median_frequency_and_enet():
    m1 = np.array([[0, 0], [0, 1]])
    m2 = np.array([[0, 0], [2, 2]])
    m3 = np.array([[255, 0], [255, 255]])  # one labelled pixel
    counts = class_pixel_counts(_Masks([m1, m2, m3]), 3)
    np.testing.assert_array_equal(counts.pixels, [6, 1, 2])
    # labelled pixels of the images containing each class: 0 in all three, 1 in m1, 2 in m2
    np.testing.assert_array_equal(counts.image_pixels, [4 + 4 + 1, 4, 4])
    assert counts.num_images == 3
    np.testing.assert_array_equal(class_pixel_counts(np.stack([m1, m2]), 3).pixels, [5, 1, 2])

    freq = np.array([6 / 9, 1 / 4, 2 / 4])
    np.testing.assert_allclose(median_frequency_weights(counts), np.median(freq) / freq,
                               rtol=1e-6)
    np.testing.assert_allclose(median_frequency_weights(counts), [0.75, 2.0, 1.0], rtol=1e-6)
    p = np.array([6, 1, 2]) / 9
    np.testing.assert_allclose(enet_class_weights(counts), 1 / np.log(1.02 + p), rtol=1e-6)
    with pytest.warns(UserWarning, match=r"classes \[0\] have no pixels"):
        w = enet_class_weights([0, 5, 5], c=1.5)
    np.testing.assert_allclose(w, [0, 1 / np.log(2.0), 1 / np.log(2.0)], rtol=1e-6)

    with pytest.warns(UserWarning, match=r"classes \[2\] have no pixels"):
        w = median_frequency_weights(class_pixel_counts([m1], 3))
    np.testing.assert_allclose(w, [(1 / 2 * (3 / 4 + 1 / 4)) / (3 / 4), 2.0, 0.0], rtol=1e-6)
    with pytest.raises(ValueError, match=r"mask 0 has labels \[7\]"):
        class_pixel_counts([np.array([[7]])], 3)
    with pytest.raises(ValueError, match="c must be > 1"):
        enet_class_weights([1, 1], c=1.0)


def _brute_force_weight_map(mask, objects, w0, sigma, wc, border_mask):
    """Distances to every object pixel by broadcasting; d1, d2 the two smallest per object."""
    h, w = mask.shape
    yy, xx = np.mgrid[:h, :w]
    per_object = []
    for obj in objects:
        oy, ox = np.nonzero(obj)
        d = np.sqrt((yy[..., None] - oy) ** 2 + (xx[..., None] - ox) ** 2).min(axis=-1)
        per_object.append(d)
    d = np.sort(np.stack(per_object), axis=0)
    border = w0 * np.exp(-((d[0] + d[1]) ** 2) / (2 * sigma**2))
    return wc + np.where(border_mask, border, 0.0)


def test_unet_weight_map_two_touching_squares():
    mask = np.zeros((40, 60), np.int32)
    mask[10:22, 10:22] = 1
    mask[10:22, 23:35] = 1  # a one-pixel background gap at column 22
    w = unet_weight_map(mask, w0=10.0, sigma=5.0, class_weights=None)
    assert w.dtype == np.float32 and w.shape == mask.shape
    gap = w[10:22, 22]
    np.testing.assert_allclose(gap, 1 + 10 * np.exp(-4 / 50), rtol=1e-5)  # d1 = d2 = 1
    assert gap.min() > 9.0
    assert abs(w[39, 59] - 1.0) < 1e-3  # far away: w_c only
    assert (w[mask == 1] == 1.0).all()  # border term on background pixels only (default)
    assert w[10:22, 22].mean() > w[10:22, 36].mean() + 5  # gap >> outer edge

    # against a brute-force distance computation, with three objects of two classes
    mask[30:34, 40:50] = 2
    mask[0:3, 0:3] = 255
    objects = [np.zeros_like(mask, bool) for _ in range(3)]
    objects[0][10:22, 10:22] = objects[1][10:22, 23:35] = objects[2][30:34, 40:50] = True
    valid = mask != 255
    counts = np.bincount(mask[valid])
    table = valid.sum() / (3 * counts)
    wc = np.where(valid, table[np.where(valid, mask, 0)], 0.0)
    for border_on, where in (("background", (mask == 0)), ("all", valid)):
        got = unet_weight_map(mask, class_weights="balanced", border_on=border_on)
        want = _brute_force_weight_map(mask, objects, 10.0, 5.0, wc, where)
        np.testing.assert_allclose(got, want, rtol=1e-5, atol=1e-5)
    assert (unet_weight_map(mask)[0:3, 0:3] == 0).all()  # ignored pixels
    balanced = unet_weight_map(mask, w0=0.0)
    np.testing.assert_allclose(balanced[valid].mean(), 1.0, rtol=1e-5)  # mean w_c is 1
    per_class = unet_weight_map(mask, w0=0.0, class_weights=[0.5, 2.0, 3.0])
    np.testing.assert_allclose(per_class[mask == 2], 3.0)


def test_unet_weight_map_edge_cases():
    one = np.zeros((8, 8), np.int64)
    one[2:4, 2:4] = 1
    np.testing.assert_allclose(unet_weight_map(one, class_weights=None), 1.0)  # one object
    diagonal = np.zeros((6, 6), np.int64)
    diagonal[1, 1] = diagonal[2, 2] = 1
    # 4-connectivity: two objects (a gap weight appears); 8-connectivity: one object
    assert unet_weight_map(diagonal, class_weights=None).max() > 5
    np.testing.assert_allclose(unet_weight_map(diagonal, class_weights=None, connectivity=2), 1)
    with pytest.raises(ValueError, match="one weight per class"):
        unet_weight_map(one, class_weights=[1.0])
    with pytest.raises(ValueError, match="integer array"):
        unet_weight_map(one.astype(float))

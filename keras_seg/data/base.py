"""The dataset protocol shared by the readers and the built-in synthetic dataset."""

import numpy as np


class SegmentationDataset:
    """Base class of the keras-seg datasets: an indexable collection of image/mask pairs.

    Every dataset (folder, Pascal VOC, Cityscapes, CamVid, the synthetic one) is a
    sequence: ``len(ds)`` examples, and ``ds[i]`` returns ``(image, mask)`` with
    ``image`` a ``uint8`` array of shape ``(H, W, 3)`` and ``mask`` an integer array of
    shape ``(H, W)`` holding class indices in ``[0, num_classes)`` or ``ignore_index``.

    Attributes:
        num_classes: number of classes the masks use (the ignore index excluded).
        class_names: list of ``num_classes`` names.
        ignore_index: label value that marks pixels no loss or metric counts (255).
        palette: ``uint8`` array ``(num_classes, 3)``, the color of each class.
    """

    num_classes = None
    class_names = None
    ignore_index = 255
    palette = None

    def __len__(self):
        raise NotImplementedError(f"{type(self).__name__} must implement __len__")

    def __getitem__(self, index):
        raise NotImplementedError(f"{type(self).__name__} must implement __getitem__")

    def describe(self, index):
        """A human-readable name of example ``index`` (its file name), for error messages."""
        return f"{type(self).__name__}[{index}]"

    def __iter__(self):
        for i in range(len(self)):
            yield self[i]


def default_palette(num_classes):
    """A fixed, distinct color per class: ``uint8`` array ``(num_classes, 3)``.

    Class 0 is black; the others follow Pascal VOC's bit-interleaved palette.
    """
    palette = np.zeros((num_classes, 3), dtype=np.uint8)
    for c in range(num_classes):
        label, r, g, b = c, 0, 0, 0
        for shift in range(7, -1, -1):
            r |= ((label >> 0) & 1) << shift
            g |= ((label >> 1) & 1) << shift
            b |= ((label >> 2) & 1) << shift
            label >>= 3
        palette[c] = (r, g, b)
    return palette

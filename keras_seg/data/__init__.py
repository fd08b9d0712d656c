"""Datasets, the built-in synthetic dataset, mask-safe augmentation and input pipelines."""

from keras_seg.data.base import SegmentationDataset, default_palette

__all__ = ["SegmentationDataset", "default_palette"]

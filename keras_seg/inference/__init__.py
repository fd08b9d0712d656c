"""Inference: prediction on images of any size and DeepLab's DenseCRF post-processing.

- :func:`predict` (:mod:`keras_seg.inference.predictor`): padding to the stride, sliding
  window, U-Net overlap-tile, multi-scale + flip test-time augmentation.
- :func:`dense_crf` / :class:`DenseCRF` (:mod:`keras_seg.inference.crf`): the fully
  connected CRF of DeepLab v1 / v2, numpy and scipy only.
"""

from keras_seg.inference.crf import DenseCRF, dense_crf
from keras_seg.inference.predictor import (
    BLENDS,
    DEFAULT_STRIDE,
    OUTPUTS,
    PAD_MODES,
    TTA_SCALES,
    gaussian_window,
    predict,
    resize_bilinear,
    sliding_window_starts,
)

__all__ = ["BLENDS", "DEFAULT_STRIDE", "OUTPUTS", "PAD_MODES", "TTA_SCALES", "DenseCRF",
           "dense_crf", "gaussian_window", "predict", "resize_bilinear",
           "sliding_window_starts"]

"""Inference: prediction on images of any size and DeepLab's DenseCRF post-processing.

- :class:`Predictor` / :func:`predict` (:mod:`keras_seg.inference.predictor`): padding to
  the stride, sliding window, U-Net overlap-tile, multi-scale + flip test-time
  augmentation; the model's geometry read from its declaration (probed only for a model
  that declares none), the settings checked once per ``Predictor``.
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
    Geometry,
    Predictor,
    gaussian_window,
    predict,
    resize_bilinear,
    sliding_window_starts,
)

__all__ = ["BLENDS", "DEFAULT_STRIDE", "OUTPUTS", "PAD_MODES", "TTA_SCALES", "DenseCRF",
           "Geometry", "Predictor", "dense_crf", "gaussian_window", "predict",
           "resize_bilinear", "sliding_window_starts"]

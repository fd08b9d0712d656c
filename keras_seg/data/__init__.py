"""Datasets, the built-in synthetic dataset, mask-safe augmentation and input pipelines."""

from keras_seg.data.base import SegmentationDataset, default_palette

__all__ = ["SegmentationDataset", "default_palette"]

from keras_seg.data.synthetic import SyntheticShapes  # noqa: E402

__all__ += ["SyntheticShapes"]

from keras_seg.data.augment import (  # noqa: E402
    Augment,
    ColorJitter,
    Compose,
    ElasticDeformation,
    RandomCrop,
    RandomHorizontalFlip,
    RandomRotation,
    RandomScale,
)
from keras_seg.data.camvid import CamVid  # noqa: E402
from keras_seg.data.cityscapes import Cityscapes  # noqa: E402
from keras_seg.data.class_weights import (  # noqa: E402
    ClassCounts,
    class_pixel_counts,
    enet_class_weights,
    median_frequency_weights,
    unet_weight_map,
)
from keras_seg.data.folder import FilePairDataset, FolderDataset  # noqa: E402
from keras_seg.data.io import colorize, read_image, read_mask, write_image, write_mask  # noqa: E402
from keras_seg.data.loading import DATA_FORMATS, detect_data_format, load_dataset  # noqa: E402
from keras_seg.data.pipeline import SegmentationPipeline, to_tf_dataset  # noqa: E402
from keras_seg.data.voc import VOCSegmentation  # noqa: E402

__all__ += [
    "DATA_FORMATS", "Augment", "CamVid", "Cityscapes", "ClassCounts", "ColorJitter", "Compose",
    "ElasticDeformation", "FilePairDataset", "FolderDataset", "RandomCrop",
    "RandomHorizontalFlip", "RandomRotation", "RandomScale", "SegmentationPipeline",
    "VOCSegmentation", "class_pixel_counts", "colorize", "detect_data_format", "enet_class_weights",
    "load_dataset",
    "median_frequency_weights", "read_image", "read_mask", "to_tf_dataset", "unet_weight_map",
    "write_image", "write_mask",
]

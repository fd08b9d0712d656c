"""Custom layers of keras-seg; each is serializable (``.keras`` files load with no
``custom_objects``) and backend-agnostic."""

from keras_seg.layers.gfrnet import CropToStride, GatedRefinement, GateUnit
from keras_seg.layers.initializers import BilinearUpsampling
from keras_seg.layers.pooling import MaxPoolingWithArgmax2D, MaxUnpooling2D
from keras_seg.layers.refinenet import (
    ChainedResidualPooling,
    MultiResolutionFusion,
    ResidualConvUnit,
)
from keras_seg.layers.spatial import CropToReference, PadToMultiple, ResizeLike

__all__ = ["CropToReference", "PadToMultiple", "ResizeLike"]
__all__ += [
    "ChainedResidualPooling",
    "CropToStride",
    "GateUnit",
    "GatedRefinement",
    "MultiResolutionFusion",
    "ResidualConvUnit",
]
__all__ += ["BilinearUpsampling", "MaxPoolingWithArgmax2D", "MaxUnpooling2D"]

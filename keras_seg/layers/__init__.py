"""Custom layers of keras-seg; each is serializable (``.keras`` files load with no
``custom_objects``) and backend-agnostic."""

from keras_seg.layers.apc import AdaptiveContextModule
from keras_seg.layers.aspp import ASPP, ASPPSum, ImagePooling
from keras_seg.layers.atrous import (
    AtrousConv2D,
    AtrousDepthwiseConv2D,
    AtrousSeparableConv2D,
    Conv2D,
    Conv2DTranspose,
)
from keras_seg.layers.attention import ChannelAttention, PositionAttention
from keras_seg.layers.context import ContextModule
from keras_seg.layers.enet import ENetBottleneck, ENetInitialBlock
from keras_seg.layers.gfrnet import GatedRefinement, GateUnit
from keras_seg.layers.initializers import BilinearUpsampling
from keras_seg.layers.linknet import LinkNetDecoderBlock
from keras_seg.layers.normalization import BatchNormalization
from keras_seg.layers.pooling import MaxPooling2D, MaxPoolingWithArgmax2D, MaxUnpooling2D
from keras_seg.layers.pyramid import AdaptiveAveragePooling2D, PyramidPooling
from keras_seg.layers.refinenet import (
    ChainedResidualPooling,
    MultiResolutionFusion,
    ResidualConvUnit,
)
from keras_seg.layers.spatial import CropToReference, CropToStride, PadToMultiple, ResizeLike

__all__ = ["CropToReference", "PadToMultiple", "ResizeLike"]
__all__ += [
    "ChainedResidualPooling",
    "CropToStride",
    "GateUnit",
    "GatedRefinement",
    "MultiResolutionFusion",
    "ResidualConvUnit",
]
__all__ += [
    "ASPP",
    "ASPPSum",
    "AdaptiveAveragePooling2D",
    "ContextModule",
    "ImagePooling",
    "PyramidPooling",
]
__all__ += ["BilinearUpsampling", "MaxPooling2D", "MaxPoolingWithArgmax2D", "MaxUnpooling2D"]
__all__ += ["ENetBottleneck", "ENetInitialBlock", "LinkNetDecoderBlock"]
__all__ += ["AdaptiveContextModule", "ChannelAttention", "PositionAttention"]
__all__ += ["AtrousConv2D", "AtrousDepthwiseConv2D", "AtrousSeparableConv2D"]
__all__ += ["BatchNormalization", "Conv2D", "Conv2DTranspose"]

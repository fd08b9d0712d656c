"""keras-seg: classic semantic-segmentation architectures as Keras 3 models.

The package runs unchanged on the TensorFlow, JAX and PyTorch backends of Keras 3.

Typical use::

    import keras_seg
    model = keras_seg.applications.UNet(num_classes=2)
    model.compile(optimizer="adam",
                  loss=keras.losses.SparseCategoricalCrossentropy(from_logits=True))
    # SavedModel / ONNX / LiteRT from any backend, checked against Keras:
    keras_seg.export.export(model, "unet.onnx", format="onnx")
"""

__version__ = "0.1.0"

from keras_seg import applications, backbones, export, layers  # noqa: E402
from keras_seg.model_utils import inference_model, output_names  # noqa: E402

__all__ = [
    "__version__",
    "applications",
    "backbones",
    "export",
    "inference_model",
    "layers",
    "output_names",
]

# losses, dataset-level metrics, deep supervision with one label map (issue 5)
from keras_seg import losses, metrics, training  # noqa: E402
from keras_seg.training import SegmentationModel  # noqa: E402

__all__ += ["SegmentationModel", "losses", "metrics", "training"]

# prediction on any image size: padding, sliding window, overlap-tile, TTA (issue 6)
from keras_seg import inference  # noqa: E402

__all__ += ["inference"]

# DenseCRF post-processing of DeepLab v1, numpy / scipy (issue 6)
from keras_seg import postprocessing  # noqa: E402

__all__ += ["postprocessing"]

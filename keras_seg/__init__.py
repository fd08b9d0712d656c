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

from keras_seg._startup import quiet_cli_start  # noqa: E402

quiet_cli_start()  # the keras-seg command only: before Keras imports TensorFlow

from keras_seg import (  # noqa: E402
    applications,
    backbones,
    export,
    inference,
    layers,
    losses,
    metrics,
    model_base,
    schedules,
)
from keras_seg.model_base import (  # noqa: E402
    SegmentationModel,
    inference_model,
    output_names,
)

__all__ = [
    "SegmentationModel",
    "__version__",
    "applications",
    "backbones",
    "export",
    "inference",
    "inference_model",
    "layers",
    "schedules",
    "losses",
    "metrics",
    "model_base",
    "output_names",
]

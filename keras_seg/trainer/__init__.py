"""The training and evaluation driver behind ``keras-seg train / evaluate / demo``.

The same functions run the paper recipes in ``applications/`` and can be called from
Python::

    from keras_seg.trainer import TrainConfig, train
    result = train(TrainConfig(model="unet", data="synthetic", epochs=5, output="runs/unet"))
    print(result["val_mean_iou"])

Modules:

- :mod:`~keras_seg.trainer.config`: :class:`TrainConfig`, its fields' descriptions
  (section, help, command-line flag) and :data:`SECTIONS`; the ``keras-seg train`` and
  ``evaluate`` flags are generated from them (:func:`add_config_arguments`);
- :mod:`~keras_seg.trainer.fit`: :func:`train` (optimizer and schedule, callbacks,
  checkpoints, resume, logs);
- :mod:`~keras_seg.trainer.devices`: where the steps run (the ``devices`` section: data
  parallel over several devices or processes, precision, XLA), through Keras' own engines;
  the trainer's only backend-specific code, imported by :func:`train` when it runs;
- :mod:`~keras_seg.trainer.evaluation`: :func:`evaluate`, :func:`evaluation_to_json`,
  :func:`format_iou_table`, :func:`model_num_classes`.

The model, loss and dataset come from the factories beside their registries:
:func:`keras_seg.applications.build`, :func:`keras_seg.losses.get` and
:func:`keras_seg.data.load_dataset`.
"""

from keras_seg.trainer.config import (
    CLASS_WEIGHTING,
    OPTIMIZERS,
    RESUME_CHANGEABLE,
    RESUME_FIXED,
    SCHEDULES,
    SECTIONS,
    TrainConfig,
    add_config_arguments,
    config_values,
)
from keras_seg.trainer.evaluation import (
    evaluate,
    evaluation_to_json,
    format_iou_table,
    model_num_classes,
)
from keras_seg.trainer.fit import train

__all__ = [
    "CLASS_WEIGHTING", "OPTIMIZERS", "RESUME_CHANGEABLE", "RESUME_FIXED", "SCHEDULES",
    "SECTIONS", "TrainConfig",
    "add_config_arguments", "config_values", "evaluate", "evaluation_to_json",
    "format_iou_table", "model_num_classes", "train",
]

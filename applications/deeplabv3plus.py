"""Training recipe: DeepLab v3+ (Chen et al., ECCV 2018).

Run it on a dataset folder (Pascal VOC, Cityscapes, CamVid, or images/ + masks/), or
without --data on the built-in synthetic dataset::

    python applications/deeplabv3plus.py --data /path/to/dataset --output runs/deeplabv3plus
    python applications/deeplabv3plus.py --fast   # a few steps with a tiny model
"""

from keras_seg.recipes import run

RECIPE = {
    "paper": "DeepLab v3+ (Chen et al., ECCV 2018)",
    "model": "deeplabv3plus",
    "backbone": "xception",
    "crop_size": (513, 513),
    "synthetic_size": 513,
    "batch_size": 16,
    "optimizer": "sgd",
    "momentum": 0.9,
    "lr": 0.007,
    "schedule": "poly",
    "weight_decay": 4e-5,
    "augment": True,
    "scale_range": (0.5, 2.0),
    "loss": "ce",
    "iterations": 30000,
    "fast": {{"backbone_options": {"width_multiplier": 0.125}}},
}

if __name__ == "__main__":
    run(RECIPE)

"""Training recipe: DeepLab v2 ASPP-L (Chen et al., TPAMI 2017).

Run it on a dataset folder (Pascal VOC, Cityscapes, CamVid, or images/ + masks/), or
without --data on the built-in synthetic dataset::

    python applications/deeplabv2.py --data /path/to/dataset --output runs/deeplabv2
    python applications/deeplabv2.py --fast   # a few steps with a tiny model
"""

from keras_seg.recipes import run

RECIPE = {
    "paper": "DeepLab v2 ASPP-L (Chen et al., TPAMI 2017)",
    "model": "deeplabv2",
    "backbone": "resnet101",
    "crop_size": (321, 321),
    "synthetic_size": 321,
    "batch_size": 10,
    "optimizer": "sgd",
    "momentum": 0.9,
    "lr": 2.5e-4,
    "schedule": "poly",  # power 0.9
    "weight_decay": 5e-4,
    "augment": True,
    "scale_range": (0.5, 1.5),
    "loss": "ce",
    "iterations": 20000,
    "fast": {{"backbone_options": {"width_multiplier": 0.125}}},
}

if __name__ == "__main__":
    run(RECIPE)

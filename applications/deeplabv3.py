"""Training recipe: DeepLab v3 (Chen et al., arXiv 2017).

Run it on a dataset folder (Pascal VOC, Cityscapes, CamVid, or images/ + masks/), or
without --data on the built-in synthetic dataset::

    python applications/deeplabv3.py --data /path/to/dataset --output runs/deeplabv3
    python applications/deeplabv3.py --fast   # a few steps with a tiny model

Output stride 16 in training; evaluate at output stride 8 with multi-scale + flip
(keras-seg evaluate --tta) as the paper reports its best numbers.
"""

from keras_seg.recipes import run

RECIPE = {
    "paper": "DeepLab v3 (Chen et al., arXiv 2017)",
    "model": "deeplabv3",
    "backbone": "resnet101",
    "crop_size": (513, 513),
    "synthetic_size": 513,
    "batch_size": 16,
    "optimizer": "sgd",
    "momentum": 0.9,
    "lr": 0.007,
    "schedule": "poly",  # power 0.9
    "weight_decay": 1e-4,
    "augment": True,
    "scale_range": (0.5, 2.0),
    "loss": "ce",
    "iterations": 30000,
    "fast": {{"backbone_options": {"width_multiplier": 0.125}}},
}

if __name__ == "__main__":
    run(RECIPE)

"""Training recipe: RefineNet (Lin et al., CVPR 2017).

Run it on a dataset folder (Pascal VOC, Cityscapes, CamVid, or images/ + masks/), or
without --data on the built-in synthetic dataset::

    python applications/refinenet.py --data /path/to/dataset --output runs/refinenet
    python applications/refinenet.py --fast   # a few steps with a tiny model

The paper (MatConvNet) gives lr 5e-4 with random scaling, cropping and flipping; the
batch and schedule follow the public re-implementations.
"""

from keras_seg.recipes import run

RECIPE = {
    "paper": "RefineNet (Lin et al., CVPR 2017)",
    "model": "refinenet",
    "backbone": "resnet101",
    "crop_size": (400, 400),
    "synthetic_size": 400,
    "batch_size": 8,
    "optimizer": "sgd",
    "momentum": 0.9,
    "lr": 5e-4,
    "schedule": "poly",
    "weight_decay": 5e-4,
    "augment": True,
    "scale_range": (0.7, 1.3),
    "loss": "ce",
    "iterations": 40000,
    "fast": {{"backbone_options": {"width_multiplier": 0.125}}},
}

if __name__ == "__main__":
    run(RECIPE)

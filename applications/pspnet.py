"""Training recipe: PSPNet (Zhao et al., CVPR 2017).

Run it on a dataset folder (Pascal VOC, Cityscapes, CamVid, or images/ + masks/), or
without --data on the built-in synthetic dataset::

    python applications/pspnet.py --data /path/to/dataset --output runs/pspnet
    python applications/pspnet.py --fast   # a few steps with a tiny model
"""

from keras_seg.recipes import run

RECIPE = {
    "paper": "PSPNet (Zhao et al., CVPR 2017)",
    "model": "pspnet",
    "backbone": "resnet101",
    "model_options": {"aux": True},  # auxiliary loss on res4, weight 0.4 (the default)
    "crop_size": (473, 473),
    "synthetic_size": 473,
    "batch_size": 16,
    "optimizer": "sgd",
    "momentum": 0.9,
    "lr": 0.01,
    "schedule": "poly",  # power 0.9
    "weight_decay": 1e-4,
    "augment": True,
    "scale_range": (0.5, 2.0),
    "rotation": 10.0,
    "loss": "ce",
    "iterations": 30000,
    "fast": {{"backbone_options": {"width_multiplier": 0.125}}},
}

if __name__ == "__main__":
    run(RECIPE)

"""Training recipe: LinkNet (Chaurasia & Culurciello, VCIP 2017).

Run it on a dataset folder (Pascal VOC, Cityscapes, CamVid, or images/ + masks/), or
without --data on the built-in synthetic dataset::

    python applications/linknet.py --data /path/to/dataset --output runs/linknet
    python applications/linknet.py --fast   # a few steps with a tiny model
"""

from keras_seg.recipes import run

RECIPE = {
    "paper": "LinkNet (Chaurasia & Culurciello, VCIP 2017)",
    "model": "linknet",
    "backbone": "resnet18",
    "crop_size": (512, 1024),  # Cityscapes at 1024x512; CamVid at 768x576
    "synthetic_size": 512,
    "batch_size": 10,
    "optimizer": "rmsprop",
    "lr": 5e-4,
    "schedule": "constant",
    "augment": True,
    "loss": "ce",
    "class_weighting": "enet",  # 1 / ln(1.02 + p), as ENet
    "iterations": 40000,
    "fast": {{"backbone_options": {"width_multiplier": 0.125}}},
}

if __name__ == "__main__":
    run(RECIPE)

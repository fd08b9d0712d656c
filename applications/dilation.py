"""Training recipe: Dilated convolutions (Yu & Koltun, ICLR 2016).

Run it on a dataset folder (Pascal VOC, Cityscapes, CamVid, or images/ + masks/), or
without --data on the built-in synthetic dataset::

    python applications/dilation.py --data /path/to/dataset --output runs/dilation
    python applications/dilation.py --fast   # a few steps with a tiny model

The paper trains the front end first (60K iterations), then the context module on the
frozen front end; this recipe trains the whole network jointly.
"""

from keras_seg.recipes import run

RECIPE = {
    "paper": "Dilated convolutions (Yu & Koltun, ICLR 2016)",
    "model": "dilatednet",
    "crop_size": (500, 500),
    "synthetic_size": 500,
    "batch_size": 14,
    "optimizer": "sgd",
    "momentum": 0.9,
    "lr": 1e-3,
    "schedule": "constant",
    "augment": False,
    "loss": "ce",
    "iterations": 60000,
    "fast": {{"backbone_options": {"width_multiplier": 0.125}}},
}

if __name__ == "__main__":
    run(RECIPE)

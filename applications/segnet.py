"""Training recipe: SegNet (Badrinarayanan, Kendall & Cipolla, TPAMI 2017).

Run it on a dataset folder (Pascal VOC, Cityscapes, CamVid, or images/ + masks/), or
without --data on the built-in synthetic dataset::

    python applications/segnet.py --data /path/to/dataset --output runs/segnet
    python applications/segnet.py --fast   # a few steps with a tiny model

The paper trains until the training loss converges and picks the best epoch on val.
"""

from keras_seg.recipes import run

RECIPE = {
    "paper": "SegNet (Badrinarayanan, Kendall & Cipolla, TPAMI 2017)",
    "model": "segnet",
    "crop_size": (360, 480),  # CamVid at 360x480
    "synthetic_size": 360,
    "batch_size": 12,
    "optimizer": "sgd",
    "momentum": 0.9,
    "lr": 0.1,
    "schedule": "constant",
    "augment": False,
    "loss": "ce",
    "class_weighting": "median",  # median frequency balancing (Eigen & Fergus)
    "iterations": 40000,
    # --fast: the shared tiny settings of keras_seg.recipes.FAST plus these
    "fast": {"model_options": {"filters": (4, 4, 8, 8, 8)}},
}

if __name__ == "__main__":
    run(RECIPE)

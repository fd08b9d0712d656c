"""Training recipe: ENet (Paszke et al., arXiv 2016).

Run it on a dataset folder (Pascal VOC, Cityscapes, CamVid, or images/ + masks/), or
without --data on the built-in synthetic dataset::

    python applications/enet.py --data /path/to/dataset --output runs/enet
    python applications/enet.py --fast   # a few steps with a tiny model

The paper trains the encoder first on downsampled labels, then the whole network;
this recipe trains end to end.
"""

from keras_seg.recipes import run

RECIPE = {
    "paper": "ENet (Paszke et al., arXiv 2016)",
    "model": "enet",
    "crop_size": (360, 480),  # CamVid 480x360
    "synthetic_size": 360,
    "batch_size": 10,
    "optimizer": "adam",
    "lr": 5e-4,
    "schedule": "constant",
    "weight_decay": 2e-4,
    "augment": False,
    "loss": "ce",
    "class_weighting": "enet",  # 1 / ln(1.02 + p_class)
    "iterations": 40000,
    # --fast: the shared tiny settings of keras_seg.recipes.FAST plus these
    "fast": {"model_options": {"filters": (4, 8, 16)}},
}

if __name__ == "__main__":
    run(RECIPE)

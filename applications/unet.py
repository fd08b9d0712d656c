"""Training recipe: U-Net (Ronneberger, Fischer & Brox, MICCAI 2015).

Run it on a dataset folder (Pascal VOC, Cityscapes, CamVid, or images/ + masks/), or
without --data on the built-in synthetic dataset::

    python applications/unet.py --data /path/to/dataset --output runs/unet
    python applications/unet.py --fast   # a few steps with a tiny model

The paper trains with unpadded convolutions (padding="valid") and overlap-tile
inference; "same" padding here trains on any crop size.
"""

from keras_seg.recipes import run

RECIPE = {
    "paper": "U-Net (Ronneberger, Fischer & Brox, MICCAI 2015)",
    "model": "unet",
    "model_options": {"padding": "same"},
    "crop_size": (512, 512),
    "synthetic_size": 512,
    "batch_size": 1,  # "a large input tile over a large batch size ... batch to a single image"
    "optimizer": "sgd",
    "momentum": 0.99,
    "lr": 0.01,
    "schedule": "constant",
    "augment": True,
    "scale_range": (1.0, 1.0),
    "rotation": 15.0,
    "elastic": True,  # random displacements on a coarse 3x3 grid, sigma 10 px
    "boundary_weights": True,  # w0 = 10, sigma = 5 px weight map (eq. 2)
    "loss": "ce",
    "iterations": 20000,
    # --fast: the shared tiny settings of keras_seg.recipes.FAST plus these
    "fast": {"model_options": {"filters": 4, "depth": 2}},
}

if __name__ == "__main__":
    run(RECIPE)

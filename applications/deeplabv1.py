"""Training recipe: DeepLab v1 LargeFOV (Chen et al., ICLR 2015).

Run it on a dataset folder (Pascal VOC, Cityscapes, CamVid, or images/ + masks/), or
without --data on the built-in synthetic dataset::

    python applications/deeplabv1.py --data /path/to/dataset --output runs/deeplabv1
    python applications/deeplabv1.py --fast   # a few steps with a tiny model

Apply the DenseCRF at test time: keras-seg predict MODEL --crf.
"""

from keras_seg.recipes import run

RECIPE = {
    "paper": "DeepLab v1 LargeFOV (Chen et al., ICLR 2015)",
    "model": "deeplabv1",
    "crop_size": (306, 306),
    "synthetic_size": 306,
    "batch_size": 20,
    "optimizer": "sgd",
    "momentum": 0.9,
    "lr": 1e-3,
    "schedule": "poly",  # the paper steps x0.1 every 2000 iterations; poly is v2's refinement
    "weight_decay": 5e-4,
    "augment": False,
    "loss": "ce",  # labels downsampled x8 (nearest) to the logits, as the paper
    "iterations": 6000,
    "fast": {{"backbone_options": {"width_multiplier": 0.125}}},
}

if __name__ == "__main__":
    run(RECIPE)

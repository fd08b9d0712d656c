"""Training recipe: G-FRNet (Islam et al., CVPR 2017).

Run it on a dataset folder (Pascal VOC, Cityscapes, CamVid, or images/ + masks/), or
without --data on the built-in synthetic dataset::

    python applications/gfrnet.py --data /path/to/dataset --output runs/gfrnet
    python applications/gfrnet.py --fast   # a few steps with a tiny model

Optimizer settings are not all given in the paper; these follow its Caffe setup.
"""

from keras_seg.recipes import run

RECIPE = {
    "paper": "G-FRNet (Islam et al., CVPR 2017)",
    "model": "gfrnet",
    "backbone": "vgg16",
    # deep supervision: one label map, a cross-entropy per stage, all weighted 1 (default)
    "crop_size": (320, 320),
    "synthetic_size": 320,
    "batch_size": 10,
    "optimizer": "sgd",
    "momentum": 0.9,
    "lr": 1e-3,
    "schedule": "constant",
    "augment": False,
    "loss": "ce",
    "iterations": 30000,
    "fast": {{"backbone_options": {"width_multiplier": 0.125}}},
}

if __name__ == "__main__":
    run(RECIPE)

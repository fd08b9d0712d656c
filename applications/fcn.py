"""Training recipe: FCN-8s (Long, Shelhamer & Darrell, CVPR 2015).

Run it on a dataset folder (Pascal VOC, Cityscapes, CamVid, or images/ + masks/), or
without --data on the built-in synthetic dataset::

    python applications/fcn.py --data /path/to/dataset --output runs/fcn
    python applications/fcn.py --fast   # a few steps with a tiny model

Long et al. train FCN-32s first and initialize 16s/8s from the coarser net; here
the FCN-8s trains end to end (their "all-at-once" variant, which they report equal).
"""

from keras_seg.recipes import run

RECIPE = {
    "paper": "FCN-8s (Long, Shelhamer & Darrell, CVPR 2015)",
    "model": "fcn8s",
    "backbone": "vgg16",
    # whole images (no crop) in the paper; crops of 320 keep batches rectangular here
    "crop_size": (320, 320),
    "synthetic_size": 320,
    "batch_size": 20,
    "optimizer": "sgd",
    "momentum": 0.9,
    "lr": 1e-4,  # the paper's fixed rate for FCN-VGG16 (with a per-image normalized loss)
    "schedule": "constant",
    "weight_decay": 5e-4,  # 2^-4 in Caffe units; Keras' decoupled decay stands in for L2
    "augment": False,  # "random mirroring and jittering ... no noticeable improvement"
    "loss": "ce",
    "iterations": 100000,
    "fast": {{"backbone_options": {"width_multiplier": 0.125}}},
}

if __name__ == "__main__":
    run(RECIPE)

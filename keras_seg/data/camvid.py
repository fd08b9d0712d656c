"""CamVid (Brostow et al. 2009) in the 11-class layout of the SegNet tutorial."""

import os

import numpy as np

from keras_seg.data.folder import FilePairDataset, _format_list, _require_dir, _stems
from keras_seg.data.io import IMAGE_EXTENSIONS, MASK_EXTENSIONS

CAMVID_CLASSES = (
    "Sky", "Building", "Pole", "Road", "Sidewalk", "Tree", "SignSymbol", "Fence", "Car",
    "Pedestrian", "Bicyclist",
)

# Colors of the SegNet tutorial (Sidewalk is its "Pavement").
CAMVID_PALETTE = np.array([
    (128, 128, 128), (128, 0, 0), (192, 192, 128), (128, 64, 128), (60, 40, 222),
    (128, 128, 0), (192, 128, 128), (64, 64, 128), (64, 0, 128), (64, 64, 0), (0, 128, 192),
], dtype=np.uint8)

CAMVID_VOID = 11


class CamVid(FilePairDataset):
    """CamVid road scenes, 11 classes; the 12th label (11, "void"/unlabelled) is ignored.

    Layout (the SegNet tutorial's ``CamVid`` folder: 367 train, 101 val, 233 test images
    of 480x360)::

        root/train/0001TP_006690.png ...     root/trainannot/0001TP_006690.png ...
        root/val/...                         root/valannot/...
        root/test/...                        root/testannot/...

    Images and annotations are matched by file name. Annotations are index PNGs with
    values 0..10 (:data:`CAMVID_CLASSES`) and 11 for void, which becomes ``255``.

    Args:
        root: the ``CamVid`` folder.
        split: ``"train"``, ``"val"``, ``"test"`` or ``"trainval"`` (train + val).

    ``ds[i]`` returns ``(image, mask)``: ``uint8 (H, W, 3)`` and ``int32 (H, W)`` in
    ``[0, 11) + {255}``.

    Raises:
        FileNotFoundError: a folder is missing.
        ValueError: unknown split, images without annotations or annotations without
            images (all listed), no images, or (when reading) a size mismatch, an
            unreadable file or an annotation value above 11.
    """

    def __init__(self, root, split="train"):
        splits = {"train": ("train",), "val": ("val",), "test": ("test",),
                  "trainval": ("train", "val")}
        if split not in splits:
            raise ValueError(
                f"CamVid: unknown split {split!r}; use 'train', 'val', 'test' or 'trainval'."
            )
        root = os.fspath(root)
        self.root = root
        self.split = split
        _require_dir(root, "CamVid root", "Pass the CamVid folder of the SegNet tutorial "
                     "(with train/, trainannot/, val/, ...).")
        pairs = []
        for part in splits[split]:
            image_dir = os.path.join(root, part)
            mask_dir = os.path.join(root, f"{part}annot")
            _require_dir(image_dir, "CamVid image folder", f"Expected {part}/ in the root.")
            _require_dir(mask_dir, "CamVid annotation folder",
                         f"Expected {part}annot/ next to {part}/.")
            images = _stems(image_dir, IMAGE_EXTENSIONS, "Image")
            masks = _stems(mask_dir, MASK_EXTENSIONS, "Annotation")
            no_mask = [images[s] for s in sorted(images) if s not in masks]
            no_image = [masks[s] for s in sorted(masks) if s not in images]
            if no_mask or no_image:
                raise ValueError(
                    f"CamVid {part!r}: images without annotation [{_format_list(no_mask)}], "
                    f"annotations without image [{_format_list(no_image)}]. Each image needs an "
                    f"annotation of the same name in {mask_dir!r}."
                )
            pairs += [(images[s], masks[s]) for s in sorted(images)]
        if not pairs:
            raise ValueError(f"CamVid {split!r}: no images in {root!r}; the dataset is empty.")
        label_map = {c: c for c in range(len(CAMVID_CLASSES))}
        label_map[CAMVID_VOID] = 255
        super().__init__(pairs, len(CAMVID_CLASSES), class_names=CAMVID_CLASSES,
                         ignore_index=255, palette=CAMVID_PALETTE, label_map=label_map,
                         name=f"CamVid({split})")

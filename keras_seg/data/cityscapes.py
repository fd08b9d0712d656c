"""Cityscapes fine annotations (Cordts et al., CVPR 2016): labelIds -> 19 trainIds."""

import os

import numpy as np

from keras_seg.data.folder import FilePairDataset, _format_list, _require_dir

# The official label table (cityscapesScripts, helpers/labels.py):
# (name, labelId, trainId); trainId 255 = not evaluated, mapped to the ignore index.
CITYSCAPES_LABELS = (
    ("unlabeled", 0, 255),
    ("ego vehicle", 1, 255),
    ("rectification border", 2, 255),
    ("out of roi", 3, 255),
    ("static", 4, 255),
    ("dynamic", 5, 255),
    ("ground", 6, 255),
    ("road", 7, 0),
    ("sidewalk", 8, 1),
    ("parking", 9, 255),
    ("rail track", 10, 255),
    ("building", 11, 2),
    ("wall", 12, 3),
    ("fence", 13, 4),
    ("guard rail", 14, 255),
    ("bridge", 15, 255),
    ("tunnel", 16, 255),
    ("pole", 17, 5),
    ("polegroup", 18, 255),
    ("traffic light", 19, 6),
    ("traffic sign", 20, 7),
    ("vegetation", 21, 8),
    ("terrain", 22, 9),
    ("sky", 23, 10),
    ("person", 24, 11),
    ("rider", 25, 12),
    ("car", 26, 13),
    ("truck", 27, 14),
    ("bus", 28, 15),
    ("caravan", 29, 255),
    ("trailer", 30, 255),
    ("train", 31, 16),
    ("motorcycle", 32, 17),
    ("bicycle", 33, 18),
    ("license plate", -1, -1),
)

CITYSCAPES_CLASSES = (
    "road", "sidewalk", "building", "wall", "fence", "pole", "traffic light", "traffic sign",
    "vegetation", "terrain", "sky", "person", "rider", "car", "truck", "bus", "train",
    "motorcycle", "bicycle",
)

# Official colors of the 19 evaluated classes, in trainId order.
CITYSCAPES_PALETTE = np.array([
    (128, 64, 128), (244, 35, 232), (70, 70, 70), (102, 102, 156), (190, 153, 153),
    (153, 153, 153), (250, 170, 30), (220, 220, 0), (107, 142, 35), (152, 251, 152),
    (70, 130, 180), (220, 20, 60), (255, 0, 0), (0, 0, 142), (0, 0, 70), (0, 60, 100),
    (0, 80, 100), (0, 0, 230), (119, 11, 32),
], dtype=np.uint8)


def cityscapes_label_map(ignore_index=255):
    """``{labelId: trainId}`` for the raw values a ``*_gtFine_labelIds.png`` may hold.

    labelIds 0..33 map through :data:`CITYSCAPES_LABELS` (trainId 255 -> ``ignore_index``).
    The license plate (labelId -1, trainId -1) is stored as 255 in 8-bit PNGs and is ignored
    too. Any other raw value is not a Cityscapes labelId.
    """
    table = {}
    for _, label_id, train_id in CITYSCAPES_LABELS:
        raw = label_id % 256  # -1 is written as 255 in a uint8 PNG
        table[raw] = ignore_index if train_id in (255, -1) else train_id
    return table


class Cityscapes(FilePairDataset):
    """Cityscapes with fine annotations, 19 evaluated classes (trainIds), 255 = ignore.

    Layout (``leftImg8bit_trainvaltest.zip`` and ``gtFine_trainvaltest.zip`` extracted into
    ``root``)::

        root/leftImg8bit/{split}/{city}/{city}_{seq}_{frame}_leftImg8bit.png
        root/gtFine/{split}/{city}/{city}_{seq}_{frame}_gtFine_labelIds.png

    The ``labelIds`` masks (34 ids) are mapped to the 19 trainIds of the official table
    (:data:`CITYSCAPES_LABELS`); ids that are not evaluated (unlabeled, ego vehicle,
    parking, guard rail, ..., license plate) become ``255``. ``gtFine`` masks in any other
    format (``_color``, ``_instanceIds``, ``_labelTrainIds``) are not used.

    Args:
        root: folder holding ``leftImg8bit/`` and ``gtFine/``.
        split: ``"train"`` (2975 images), ``"val"`` (500) or ``"test"`` (1525; its public
            masks are all unlabeled).

    ``ds[i]`` returns ``(image, mask)``: ``uint8 (H, W, 3)`` and ``int32 (H, W)`` in
    ``[0, 19) + {255}``.

    Raises:
        FileNotFoundError: a folder is missing, or images have no labelIds mask (all listed).
        ValueError: unknown split, no images, or (when reading) a size mismatch, an
            unreadable file or a raw value that is not a Cityscapes labelId.
    """

    def __init__(self, root, split="train"):
        if split not in ("train", "val", "test"):
            raise ValueError(f"Cityscapes: unknown split {split!r}; use 'train', 'val' or 'test'.")
        root = os.fspath(root)
        self.root = root
        self.split = split
        _require_dir(root, "Cityscapes root", "Pass the folder holding leftImg8bit/ and gtFine/.")
        image_root = os.path.join(root, "leftImg8bit", split)
        mask_root = os.path.join(root, "gtFine", split)
        _require_dir(image_root, "Cityscapes image folder",
                     "Extract leftImg8bit_trainvaltest.zip into the root.")
        _require_dir(mask_root, "Cityscapes annotation folder",
                     "Extract gtFine_trainvaltest.zip into the root.")
        suffix = "_leftImg8bit.png"
        pairs, missing = [], []
        for city in sorted(os.listdir(image_root)):
            city_dir = os.path.join(image_root, city)
            if not os.path.isdir(city_dir):
                continue
            for name in sorted(os.listdir(city_dir)):
                if not name.endswith(suffix):
                    continue
                stem = name[: -len(suffix)]
                mask = os.path.join(mask_root, city, f"{stem}_gtFine_labelIds.png")
                if not os.path.isfile(mask):
                    missing.append(os.path.join(city_dir, name))
                pairs.append((os.path.join(city_dir, name), mask))
        if missing:
            raise FileNotFoundError(
                f"Cityscapes {split!r}: images without a *_gtFine_labelIds.png mask in "
                f"{mask_root!r}: {_format_list(missing)}. Extract gtFine_trainvaltest.zip "
                "completely (or run cityscapesScripts' json2labelImg)."
            )
        if not pairs:
            raise ValueError(
                f"Cityscapes {split!r}: no *{suffix} images under {image_root!r}; the dataset "
                "is empty."
            )
        super().__init__(pairs, len(CITYSCAPES_CLASSES), class_names=CITYSCAPES_CLASSES,
                         ignore_index=255, palette=CITYSCAPES_PALETTE,
                         label_map=cityscapes_label_map(255), name=f"Cityscapes({split})")

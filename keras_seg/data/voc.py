"""Pascal VOC 2012 semantic segmentation (Everingham et al., IJCV 2010)."""

import os

from keras_seg.data.base import default_palette
from keras_seg.data.folder import FilePairDataset, _format_list, _read_split, _require_dir
from keras_seg.data.io import VOID_COLOR

VOC_CLASSES = (
    "background", "aeroplane", "bicycle", "bird", "boat", "bottle", "bus", "car", "cat",
    "chair", "cow", "diningtable", "dog", "horse", "motorbike", "person", "pottedplant",
    "sheep", "sofa", "train", "tvmonitor",
)


def _find_voc_root(root):
    """The ``VOC2012`` folder, given it, its ``VOCdevkit`` parent, or the folder above."""
    for candidate in (root, os.path.join(root, "VOC2012"),
                      os.path.join(root, "VOCdevkit", "VOC2012")):
        if os.path.isdir(os.path.join(candidate, "JPEGImages")):
            return candidate
    raise FileNotFoundError(
        f"No Pascal VOC 2012 folder under {root!r}: expected JPEGImages/ in it, in "
        f"{os.path.join(root, 'VOC2012')!r} or in {os.path.join(root, 'VOCdevkit', 'VOC2012')!r}."
        " Pass the VOCdevkit/VOC2012 folder of the extracted VOCtrainval archive."
    )


class VOCSegmentation(FilePairDataset):
    """Pascal VOC 2012 segmentation: 21 classes (background + 20 objects), 255 = void.

    Layout (the extracted ``VOCtrainval_11-May-2012.tar``)::

        VOCdevkit/VOC2012/
          JPEGImages/2007_000032.jpg ...
          SegmentationClass/2007_000032.png ...     palette PNGs: index = class, 255 = void
          ImageSets/Segmentation/train.txt val.txt trainval.txt

    ``root`` may be the ``VOC2012`` folder, ``VOCdevkit``, or the folder that contains
    ``VOCdevkit``. The void label (255, drawn as object boundaries and difficult regions)
    is the ignore index. The masks' palette index is the class, so the annotation colors are
    not needed; ``palette`` holds VOC's colors for display. Masks re-saved as RGB color
    images are read back through those colors (void = (224, 224, 192)).

    Args:
        root: see above.
        split: ``"train"`` (1464 images), ``"val"`` (1449) or ``"trainval"`` (2913), read
            from ``ImageSets/Segmentation/{split}.txt``.

    ``ds[i]`` returns ``(image, mask)``: ``uint8 (H, W, 3)`` and ``int32 (H, W)`` in
    ``[0, 21) + {255}``.

    Raises:
        FileNotFoundError: the VOC folder, a sub-folder, the split list or a listed file is
            missing (every missing mask is listed).
        ValueError: unknown split, empty list, or (when reading) a size mismatch, an
            unreadable file or a mask value other than 0..20 and 255.
    """

    def __init__(self, root, split="train"):
        if split not in ("train", "val", "trainval"):
            raise ValueError(
                f"VOCSegmentation: unknown split {split!r}; use 'train', 'val' or 'trainval'."
            )
        root = os.fspath(root)
        _require_dir(root, "VOC root", "Pass the VOCdevkit/VOC2012 folder.")
        voc = _find_voc_root(root)
        self.root = voc
        self.split = split
        image_dir = os.path.join(voc, "JPEGImages")
        mask_dir = os.path.join(voc, "SegmentationClass")
        _require_dir(mask_dir, "VOC mask folder", "The segmentation masks of VOC 2012 are in "
                     "SegmentationClass/ of the VOCtrainval archive.")
        names = _read_split(os.path.join(voc, "ImageSets", "Segmentation", f"{split}.txt"),
                            "VOC")
        pairs = [(os.path.join(image_dir, f"{n}.jpg"), os.path.join(mask_dir, f"{n}.png"))
                 for n in names]
        missing_images = [i for i, _ in pairs if not os.path.isfile(i)]
        missing_masks = [m for _, m in pairs if not os.path.isfile(m)]
        if missing_images or missing_masks:
            raise FileNotFoundError(
                f"VOC {split!r} lists files that do not exist: images "
                f"[{_format_list(missing_images)}], masks [{_format_list(missing_masks)}]. "
                "Re-extract the archive or fix the split list."
            )
        label_map = {c: c for c in range(len(VOC_CLASSES))}
        label_map[255] = 255
        palette = default_palette(len(VOC_CLASSES))
        colors = {tuple(int(v) for v in color): c for c, color in enumerate(palette)}
        colors[VOID_COLOR] = 255
        super().__init__(pairs, len(VOC_CLASSES), class_names=VOC_CLASSES, ignore_index=255,
                         palette=palette, label_map=label_map, mask_colors=colors,
                         name=f"VOCSegmentation({split})")

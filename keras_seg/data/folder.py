"""Datasets stored as image / mask file pairs, and the generic folder layout.

:class:`FilePairDataset` holds the logic every file-based reader shares (reading, raw label
-> class mapping, size and range checks, errors naming the files); :class:`FolderDataset`,
:class:`~keras_seg.data.VOCSegmentation`, :class:`~keras_seg.data.Cityscapes` and
:class:`~keras_seg.data.CamVid` only find the pairs.
"""

import os
import warnings

import numpy as np

from keras_seg import validation
from keras_seg.data.base import SegmentationDataset, default_palette
from keras_seg.data.io import IMAGE_EXTENSIONS, MASK_EXTENSIONS, read_image, read_mask


class LabelRangeError(ValueError):
    """A mask holds labels outside ``[0, num_classes)`` that are not the ignore index.

    Attributes:
        mask_path: the mask file.
        values: the offending label values (sorted NumPy array).
        num_classes: the dataset's number of classes.
        ignore_index: the dataset's ignore index.
    """

    def __init__(self, message, mask_path, values, num_classes, ignore_index):
        super().__init__(message)
        self.mask_path = mask_path
        self.values = values
        self.num_classes = num_classes
        self.ignore_index = ignore_index


def _require_dir(path, what, hint):
    if not os.path.isdir(path):
        raise FileNotFoundError(f"{what} not found: {path!r}. {hint}")


def _format_list(items, limit=10):
    items = list(items)
    shown = ", ".join(repr(x) for x in items[:limit])
    return shown + (f" and {len(items) - limit} more" if len(items) > limit else "")


class FilePairDataset(SegmentationDataset):
    """A dataset of ``(image file, mask file)`` pairs with checked labels.

    ``ds[i]`` reads both files, maps raw mask values to labels (optionally through
    ``label_map``) and checks that the mask has the image's size and that every label is in
    ``[0, num_classes)`` or ``ignore_index``. :meth:`verify` runs these checks on every
    example and reports all problems at once.

    Args:
        pairs: list of ``(image_path, mask_path)``; must not be empty.
        num_classes: number of classes (``ignore_index`` excluded), a positive int.
        class_names: ``num_classes`` names (default ``"class_0"``, ...).
        ignore_index: label of pixels no loss or metric counts.
        palette: ``(num_classes, 3)`` class colors (default
            :func:`~keras_seg.data.default_palette`).
        label_map: optional dict ``{raw value: label}``: raw values listed map to their
            label (which may be ``ignore_index``); raw values not listed are errors.
        mask_colors: optional palette for RGB color masks (see
            :func:`~keras_seg.data.io.read_mask`).
        name: dataset name used in messages.

    ``ds[i]`` returns ``(image, mask)``: ``uint8 (H, W, 3)`` and ``int32 (H, W)``.
    """

    def __init__(self, pairs, num_classes, class_names=None, ignore_index=255, palette=None,
                 label_map=None, mask_colors=None, name=None):
        self.name = name or type(self).__name__
        self.pairs = [(os.fspath(i), os.fspath(m)) for i, m in pairs]
        if not self.pairs:
            raise ValueError(f"{self.name}: the dataset is empty (no image/mask pairs found).")
        num_classes = validation.num_classes(self.name, num_classes)
        if class_names is None:
            class_names = [f"class_{c}" for c in range(num_classes)]
        class_names = [str(n) for n in class_names]
        if len(class_names) != num_classes:
            raise ValueError(
                f"{self.name}: {len(class_names)} class_names for num_classes={num_classes}; "
                "give one name per class."
            )
        ignore_index = int(ignore_index)
        if 0 <= ignore_index < num_classes:
            raise ValueError(
                f"{self.name}: ignore_index={ignore_index} is a class index "
                f"(num_classes={num_classes}); use a value >= num_classes such as 255."
            )
        if palette is None:
            palette = default_palette(num_classes)
        palette = np.asarray(palette, dtype=np.uint8)
        if palette.shape != (num_classes, 3):
            raise ValueError(
                f"{self.name}: palette must have shape ({num_classes}, 3), got {palette.shape}."
            )
        self.num_classes = num_classes
        self.class_names = class_names
        self.ignore_index = ignore_index
        self.palette = palette
        self.mask_colors = mask_colors
        self._lut = None
        if label_map is not None:
            self._lut = self._build_lut(label_map)

    @staticmethod
    def _build_lut(label_map):
        size = max(256, max(int(k) for k in label_map) + 1)
        lut = np.full(size, -1, dtype=np.int32)
        for raw, label in label_map.items():
            lut[int(raw)] = int(label)
        return lut

    def __len__(self):
        return len(self.pairs)

    def describe(self, index):
        """The image and mask files of example ``index``."""
        image, mask = self.pairs[index]
        return f"{image} (mask {mask})"

    def load_mask(self, index):
        """The checked label mask of example ``index`` without reading its image.

        Returns ``int32 (H, W)``; used by :func:`~keras_seg.data.class_pixel_counts`.
        """
        mask_path = self.pairs[index][1]
        return self._labels(read_mask(mask_path, palette=self.mask_colors), mask_path)

    def _labels(self, raw, mask_path):
        if self._lut is None:
            labels = raw.astype(np.int32, copy=False)
            bad = ((labels < 0) | (labels >= self.num_classes)) & (labels != self.ignore_index)
            if bad.any():
                values = np.unique(labels[bad])
                raise LabelRangeError(
                    f"{self.name}: mask {mask_path!r} has label values "
                    f"{values[:10].tolist()}{' ...' if len(values) > 10 else ''} outside "
                    f"[0, {self.num_classes}) that are not ignore_index={self.ignore_index} "
                    f"({int(bad.sum())} pixels). Fix the mask, raise num_classes, or set "
                    "ignore_index to the value that marks unlabeled pixels.",
                    mask_path, values, self.num_classes, self.ignore_index)
            return labels
        raw = raw.astype(np.int64, copy=False)
        in_table = (raw >= 0) & (raw < len(self._lut))
        labels = np.where(in_table, self._lut[np.clip(raw, 0, len(self._lut) - 1)], -1)
        bad = labels < 0
        if bad.any():
            values = np.unique(raw[bad])
            valid = np.flatnonzero(self._lut >= 0).tolist()
            raise ValueError(
                f"{self.name}: mask {mask_path!r} has raw values "
                f"{values[:10].tolist()}{' ...' if len(values) > 10 else ''} that this "
                f"dataset does not define ({int(bad.sum())} pixels; valid raw values: "
                f"{valid}). The file does not follow the dataset's label format: check that "
                "it is the right annotation file (e.g. labelIds, not color or instanceIds)."
            )
        return labels.astype(np.int32)

    def __getitem__(self, index):
        if not -len(self) <= index < len(self):
            raise IndexError(f"{self.name}: index {index} out of range for {len(self)} examples")
        image_path, mask_path = self.pairs[index]
        image = read_image(image_path)
        raw = read_mask(mask_path, palette=self.mask_colors)
        if raw.shape != image.shape[:2]:
            raise ValueError(
                f"{self.name}: mask {mask_path!r} is {raw.shape[1]}x{raw.shape[0]} (WxH) but its "
                f"image {image_path!r} is {image.shape[1]}x{image.shape[0]}. Masks must have "
                "their image's size: re-export the mask at the image's resolution (nearest "
                "neighbour, never a smoothing resize) or fix the pairing."
            )
        return image, self._labels(raw, mask_path)

    def verify(self, max_errors=20):
        """Read every example and check it; raise one error listing all problems found.

        Args:
            max_errors: how many problems to list before stopping.

        Returns:
            ``len(self)`` when every example is readable, sized and labelled correctly.

        Raises:
            ValueError: with one line per problem (file and cause).
        """
        problems = []
        for i in range(len(self)):
            try:
                self[i]
            except (ValueError, FileNotFoundError) as e:
                problems.append(str(e))
                if len(problems) >= max_errors:
                    break
        if problems:
            raise ValueError(
                f"{self.name}: {len(problems)} problem(s) found"
                f"{' (stopped early)' if len(problems) >= max_errors else ''}:\n- "
                + "\n- ".join(problems)
            )
        return len(self)


def _stems(directory, extensions, what):
    """``{stem: path}`` of the files in ``directory`` with one of ``extensions``."""
    found = {}
    clashes = []
    for entry in sorted(os.listdir(directory)):
        stem, ext = os.path.splitext(entry)
        if ext.lower() not in extensions or not os.path.isfile(os.path.join(directory, entry)):
            continue
        if stem in found:
            clashes.append(entry)
            continue
        found[stem] = os.path.join(directory, entry)
    if clashes:
        raise ValueError(
            f"{what} folder {directory!r} has several files with the same name and different "
            f"extensions: {_format_list(clashes)}. Keep one file per example."
        )
    return found


def _read_split(path, what):
    if not os.path.isfile(path):
        raise FileNotFoundError(f"{what} split list not found: {path!r}.")
    with open(path) as f:
        names = [line.strip() for line in f]
    names = [n.split()[0] for n in names if n and not n.startswith("#")]
    if not names:
        raise ValueError(f"{what} split list {path!r} lists no examples.")
    return names


class FolderDataset(FilePairDataset):
    """A folder of images and masks matched by file name.

    Layout (``images`` and ``masks`` name the two sub-folders)::

        root/
          images/  a.jpg  b.png  ...     (.png .jpg .jpeg .bmp .tif .tiff)
          masks/   a.png  b.png  ...     (.png, same file stem as the image)
          splits/  train.txt  val.txt    (optional: one file stem per line)

    Splits: ``split=None`` uses every pair; ``split="train"`` uses the stems listed in
    ``root/splits/train.txt`` (any split name works; blank lines and ``#`` comments are
    skipped). A layout with one folder per split (``root/train/images``, ...) is read by
    passing ``root="root/train"``.

    Masks may be single-channel index PNGs (8 or 16 bit; the value is the class), palette
    ("P" mode) PNGs (the palette *index* is the class, as in Pascal VOC), or RGB color PNGs
    when ``palette`` gives the color of each class. Pixels equal to ``ignore_index`` are
    ignored by losses and metrics.

    Every image must have a mask and every mask an image: the unmatched files are listed in
    the error (nothing is skipped). Mask sizes and label ranges are checked when an example
    is read; :meth:`verify` checks all of them at once.

    Args:
        root: dataset folder.
        images: name of the image sub-folder.
        masks: name of the mask sub-folder.
        num_classes: number of classes, a positive int. ``None``: ``len(class_names)`` or
            ``len(palette)`` when given, otherwise inferred from a scan of every mask as
            ``max label + 1`` (ignore index excluded), with a warning that says so.
        class_names: optional list of class names.
        ignore_index: label of unlabeled pixels (255).
        split: ``None`` or the name of a list in ``root/splits/`` (without ``.txt``).
        palette: colors of the classes: ``(num_classes, 3)``, or a dict
            ``{(r, g, b): label}`` (may map a color to ``ignore_index``). Needed to read RGB
            color masks (an unknown color is an error naming the file and the color); for
            index masks it only sets the display colors.

    ``ds[i]`` returns ``(image, mask)``: ``uint8 (H, W, 3)`` and ``int32 (H, W)``.

    Raises:
        FileNotFoundError: ``root``, a sub-folder or the split list is missing.
        ValueError: ``num_classes`` is not a positive int (2.7 is refused, not truncated),
            the dataset is empty, images without masks or masks without images, a split
            lists unknown names, or (when reading) a size mismatch, an unreadable file or
            labels outside ``[0, num_classes)`` that are not ``ignore_index``
            (:class:`LabelRangeError`).
    """

    def __init__(self, root, images="images", masks="masks", num_classes=None, class_names=None,
                 ignore_index=255, split=None, palette=None):
        if num_classes is not None:
            num_classes = validation.num_classes("FolderDataset", num_classes)
        root = os.fspath(root)
        self.root = root
        self.split = split
        _require_dir(root, "Dataset root", "Pass the folder that holds the images/ and masks/ "
                     "sub-folders.")
        image_dir = os.path.join(root, images)
        mask_dir = os.path.join(root, masks)
        _require_dir(image_dir, "Image folder", f"Create it or pass images=<name> (the "
                     f"sub-folder of {root!r} that holds the images).")
        _require_dir(mask_dir, "Mask folder", f"Create it or pass masks=<name> (the "
                     f"sub-folder of {root!r} that holds the masks).")
        image_files = _stems(image_dir, IMAGE_EXTENSIONS, "Image")
        mask_files = _stems(mask_dir, MASK_EXTENSIONS, "Mask")
        if split is not None:
            split_path = os.path.join(root, "splits", f"{split}.txt")
            names = _read_split(split_path, f"FolderDataset {split!r}")
            unknown = [n for n in names if n not in image_files]
            if unknown:
                raise ValueError(
                    f"Split list {split_path!r} names examples with no image in {image_dir!r}: "
                    f"{_format_list(unknown)}. Fix the list or add the images."
                )
            stems = names
        else:
            stems = sorted(image_files)
            orphans = sorted(set(mask_files) - set(image_files))
            if orphans:
                raise ValueError(
                    f"Masks without an image in {image_dir!r}: "
                    f"{_format_list(mask_files[s] for s in orphans)}. Add the images or remove "
                    "the masks (images and masks are matched by file stem)."
                )
        missing = [image_files[s] for s in stems if s not in mask_files]
        if missing:
            raise ValueError(
                f"Images without a mask in {mask_dir!r}: {_format_list(missing)}. Add the masks "
                "as <stem>.png (images and masks are matched by file stem) or remove the images"
                f"{' from the split list' if split is not None else ''}."
            )
        if not stems:
            raise ValueError(
                f"FolderDataset: no images found in {image_dir!r} (extensions "
                f"{', '.join(IMAGE_EXTENSIONS)}). The dataset is empty."
            )
        pairs = [(image_files[s], mask_files[s]) for s in stems]

        mask_colors = palette if palette is not None else None
        display = None
        if palette is not None and not isinstance(palette, dict):
            display = np.asarray(palette, dtype=np.uint8)
        if num_classes is None:
            if class_names is not None:
                num_classes = len(class_names)
            elif display is not None:
                num_classes = len(display)
            else:
                num_classes = self._scan_num_classes(pairs, ignore_index, mask_colors)
        if display is not None and len(display) != num_classes:
            raise ValueError(
                f"FolderDataset: palette has {len(display)} colors for num_classes="
                f"{num_classes}; give one color per class."
            )
        super().__init__(pairs, num_classes, class_names=class_names, ignore_index=ignore_index,
                         palette=display, mask_colors=mask_colors, name="FolderDataset")

    @staticmethod
    def _scan_num_classes(pairs, ignore_index, mask_colors):
        top = -1
        for _, mask_path in pairs:
            labels = read_mask(mask_path, palette=mask_colors).astype(np.int64)
            if labels.size == 0:
                continue
            if labels.min() < 0:
                raise ValueError(f"Mask {mask_path!r} has negative labels.")
            labels = labels[labels != ignore_index]
            if labels.size:
                top = max(top, int(labels.max()))
        if top < 0:
            raise ValueError(
                "FolderDataset: every mask pixel is ignore_index, so num_classes cannot be "
                "inferred; pass num_classes=."
            )
        num_classes = top + 1
        warnings.warn(
            f"FolderDataset: num_classes not given; inferred num_classes={num_classes} from a "
            f"scan of {len(pairs)} masks (largest label {top}, ignore_index={ignore_index} "
            "excluded). Pass num_classes= to skip the scan or if some classes never occur.",
            stacklevel=3,
        )
        return num_classes

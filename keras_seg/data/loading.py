"""Open a dataset by its folder (or ``"synthetic"``) and split name.

:func:`load_dataset` is what ``keras-seg train / evaluate --data PATH`` calls: it detects
the layout of the folder (:func:`detect_data_format`) and returns the matching reader.
"""

import os

#: what ``data_format="auto"`` recognizes, checked in this order
DATA_FORMATS = ("synthetic", "voc", "cityscapes", "camvid", "folder")


def detect_data_format(path):
    """Guess the layout of a dataset folder.

    Args:
        path: a dataset folder, or ``"synthetic"`` for the built-in dataset.

    Returns:
        One of :data:`DATA_FORMATS`: ``"synthetic"``; ``"voc"`` (a ``SegmentationClass``
        folder in ``path``, ``path/VOC2012`` or ``path/VOCdevkit/VOC2012``);
        ``"cityscapes"`` (``leftImg8bit`` and ``gtFine``); ``"camvid"`` (``train`` and
        ``trainannot``); otherwise ``"folder"``.

    Raises:
        FileNotFoundError: ``path`` is not a folder.
    """
    if path == "synthetic":
        return "synthetic"
    if not os.path.isdir(path):
        raise FileNotFoundError(f"Dataset folder {path!r} does not exist; pass a folder or "
                                "'synthetic' for the built-in dataset.")
    names = set(os.listdir(path))
    voc_roots = [path, os.path.join(path, "VOC2012"), os.path.join(path, "VOCdevkit", "VOC2012")]
    if any(os.path.isdir(os.path.join(r, "SegmentationClass")) for r in voc_roots):
        return "voc"
    if {"leftImg8bit", "gtFine"} <= names:
        return "cityscapes"
    if {"train", "trainannot"} <= names:
        return "camvid"
    return "folder"


def load_dataset(path, split, *, data_format="auto", num_classes=None, class_names=None,
                 ignore_index=255, synthetic=None):
    """The :class:`~keras_seg.data.SegmentationDataset` of ``path`` for ``split``.

    Args:
        path: a dataset folder, or ``"synthetic"`` for the built-in
            :class:`~keras_seg.data.SyntheticShapes`.
        split: split name (``"train"``, ``"val"``, ``"test"``, or a list name of a
            ``folder`` dataset).
        data_format: one of :data:`DATA_FORMATS`, or ``"auto"`` to detect it with
            :func:`detect_data_format`.
        num_classes: classes of a ``folder`` dataset (None: ``len(class_names)`` when
            given, else inferred from its masks). The other formats have a fixed number
            and refuse it.
        class_names: names of the classes of a ``folder`` dataset (None: ``"class_0"``,
            ...). The other formats name their classes and refuse it.
        ignore_index: label value of unlabeled pixels. A ``folder`` dataset is read with
            it; Pascal VOC, Cityscapes, CamVid and the synthetic dataset mark unlabeled
            pixels with 255 and refuse another value.
        synthetic: keyword arguments of :class:`~keras_seg.data.SyntheticShapes` other
            than ``split`` (``num_images``, ``image_size``, ``seed``, ``shapes``, ...),
            used when the format is ``"synthetic"``. None: its defaults.

    Returns:
        The dataset; its ``ignore_index`` equals ``ignore_index``.

    Raises:
        ValueError: an unknown ``data_format``; ``ignore_index`` differs from the value
            the reader marks unlabeled pixels with; ``num_classes`` or ``class_names``
            given for a format other than ``"folder"``.
        FileNotFoundError: ``path`` (or a folder the reader needs) does not exist.
    """
    from keras_seg import data

    if data_format not in ("auto", *DATA_FORMATS):
        raise ValueError(f"data_format={data_format!r} is not one of "
                         f"{('auto', *DATA_FORMATS)}.")
    fmt = detect_data_format(path) if data_format == "auto" else data_format
    if fmt != "folder":
        given = [f"{name}={value!r}" for name, value in (("num_classes", num_classes),
                                                         ("class_names", class_names))
                 if value is not None]
        if given:
            raise ValueError(
                f"{' and '.join(given)} given for the {fmt} dataset {path!r}, which has its "
                "own classes and names: these options are for 'folder' datasets only. Leave "
                "them out (--num-classes / --class-names).")
    if fmt == "synthetic":
        dataset = data.SyntheticShapes(split=split, **(synthetic or {}))
    elif fmt == "folder":
        dataset = data.FolderDataset(path, split=split, num_classes=num_classes,
                                     class_names=class_names, ignore_index=ignore_index)
    else:
        readers = {"voc": data.VOCSegmentation, "cityscapes": data.Cityscapes,
                   "camvid": data.CamVid}
        dataset = readers[fmt](path, split=split)
    if dataset.ignore_index != ignore_index:
        raise ValueError(
            f"The {fmt} dataset {path!r} marks unlabeled pixels with {dataset.ignore_index}, "
            f"but ignore_index={ignore_index} was asked for (the config's ignore_index / "
            f"--ignore-index). Use ignore_index={dataset.ignore_index} for this dataset; "
            f"only a 'folder' dataset can be read with another value.")
    return dataset

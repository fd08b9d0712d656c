"""Class weights and per-pixel weight maps computed from label masks.

* :func:`class_pixel_counts` counts the labelled pixels of each class over a dataset;
* :func:`median_frequency_weights`: median frequency balancing (Eigen & Fergus, ICCV 2015;
  used by SegNet, Badrinarayanan et al. 2017);
* :func:`enet_class_weights`: ENet's ``1 / ln(c + p_class)`` (Paszke et al. 2016);
* :func:`unet_weight_map`: U-Net's border-emphasising weight map (Ronneberger et al. 2015,
  eq. 2), used as per-pixel sample weights.

Classes that never occur get weight 0 (with a warning): they contribute no pixels to the
loss anyway, and a finite weight could not be computed for median frequency balancing.
"""

import warnings
from typing import NamedTuple

import numpy as np
from scipy import ndimage

__all__ = [
    "ClassCounts",
    "class_pixel_counts",
    "enet_class_weights",
    "median_frequency_weights",
    "unet_weight_map",
]


class ClassCounts(NamedTuple):
    """Pixel statistics of each class over a set of masks.

    Attributes:
        pixels: ``int64 (num_classes,)``: labelled pixels of each class.
        image_pixels: ``int64 (num_classes,)``: for each class, the labelled pixels of all
            the images in which the class occurs (the denominator of median frequency
            balancing).
        num_images: number of masks counted.
    """

    pixels: np.ndarray
    image_pixels: np.ndarray
    num_images: int


def _iter_masks(source):
    """Masks of a dataset (mask-only reads when the dataset offers them) or of arrays."""
    if isinstance(source, np.ndarray):
        if source.ndim == 2:
            yield "mask", source
            return
        if source.ndim == 3:
            for i, m in enumerate(source):
                yield f"mask {i}", m
            return
        raise ValueError(f"Masks must be (H, W) or (N, H, W), got shape {source.shape}.")
    if hasattr(source, "num_classes") and hasattr(source, "__getitem__"):
        load = getattr(source, "load_mask", None)
        describe = getattr(source, "describe", lambda i: f"example {i}")
        for i in range(len(source)):
            yield describe(i), (load(i) if load is not None else source[i][1])
        return
    for i, m in enumerate(source):
        yield f"mask {i}", np.asarray(m)


def class_pixel_counts(dataset_or_masks, num_classes, ignore_index=255):
    """Count the labelled pixels of each class.

    Args:
        dataset_or_masks: a :class:`~keras_seg.data.SegmentationDataset`, an integer array
            ``(H, W)`` or ``(N, H, W)``, or an iterable of ``(H, W)`` masks.
        num_classes: number of classes.
        ignore_index: label that is not counted.

    Returns:
        :class:`ClassCounts` with ``pixels`` and ``image_pixels`` of shape ``(num_classes,)``.

    Raises:
        ValueError: a label is outside ``[0, num_classes)`` and not ``ignore_index`` (names
            the mask and the values), or there is no mask.
    """
    num_classes = int(num_classes)
    pixels = np.zeros(num_classes, dtype=np.int64)
    image_pixels = np.zeros(num_classes, dtype=np.int64)
    n = 0
    for name, mask in _iter_masks(dataset_or_masks):
        mask = np.asarray(mask)
        if not np.issubdtype(mask.dtype, np.integer):
            raise ValueError(f"class_pixel_counts: {name} is not an integer mask ({mask.dtype}).")
        labels = mask[mask != ignore_index].astype(np.int64)
        bad = (labels < 0) | (labels >= num_classes)
        if bad.any():
            raise ValueError(
                f"class_pixel_counts: {name} has labels {np.unique(labels[bad])[:10].tolist()} "
                f"outside [0, {num_classes}) that are not ignore_index={ignore_index}."
            )
        counts = np.bincount(labels, minlength=num_classes)
        pixels += counts
        image_pixels[counts > 0] += labels.size
        n += 1
    if n == 0:
        raise ValueError("class_pixel_counts: no masks given (empty dataset).")
    return ClassCounts(pixels, image_pixels, n)


def _pixels(counts):
    if isinstance(counts, ClassCounts):
        return np.asarray(counts.pixels, dtype=np.float64), np.asarray(counts.image_pixels,
                                                                         dtype=np.float64)
    pixels = np.asarray(counts, dtype=np.float64)
    if pixels.ndim != 1 or (pixels < 0).any():
        raise ValueError("counts must be a ClassCounts or a 1-D array of non-negative counts.")
    return pixels, np.full_like(pixels, pixels.sum())


def _warn_absent(absent, scheme):
    if absent.any():
        warnings.warn(
            f"{scheme}: classes {np.flatnonzero(absent).tolist()} have no pixels; their weight "
            "is set to 0.",
            stacklevel=3,
        )


def median_frequency_weights(counts):
    """Median frequency balancing (Eigen & Fergus 2015; SegNet).

    ``freq(c) = pixels of class c / pixels of the images that contain c`` and
    ``w(c) = median over classes of freq / freq(c)``: frequent classes get weights below 1,
    rare classes above 1.

    Args:
        counts: a :class:`ClassCounts` from :func:`class_pixel_counts`, or a 1-D array of
            pixel counts (then every class's denominator is the total of all pixels, which
            changes no ratio when every class occurs in every image).

    Returns:
        ``float32 (num_classes,)`` weights; classes without pixels get 0 (with a warning)
        and are left out of the median.
    """
    pixels, image_pixels = _pixels(counts)
    present = pixels > 0
    if not present.any():
        raise ValueError("median_frequency_weights: no class has any pixel.")
    _warn_absent(~present, "median_frequency_weights")
    freq = np.zeros_like(pixels)
    freq[present] = pixels[present] / image_pixels[present]
    weights = np.zeros_like(pixels)
    weights[present] = np.median(freq[present]) / freq[present]
    return weights.astype(np.float32)


def enet_class_weights(counts, c=1.02):
    """ENet's class weighting (Paszke et al. 2016): ``w = 1 / ln(c + p_class)``.

    ``p_class`` is the class's share of all labelled pixels; with ``c = 1.02`` the weights
    are bounded in ``[1 / ln(2.02), 1 / ln(1.02)] = [1.42, 50.5]``.

    Args:
        counts: a :class:`ClassCounts` or a 1-D array of pixel counts.
        c: the constant, ``> 1``.

    Returns:
        ``float32 (num_classes,)`` weights; classes without pixels get 0 (with a warning).
    """
    if c <= 1:
        raise ValueError(f"enet_class_weights: c must be > 1 (ln(c + p) > 0), got {c}.")
    pixels, _ = _pixels(counts)
    total = pixels.sum()
    if total <= 0:
        raise ValueError("enet_class_weights: no class has any pixel.")
    present = pixels > 0
    _warn_absent(~present, "enet_class_weights")
    weights = np.where(present, 1.0 / np.log(c + pixels / total), 0.0)
    return weights.astype(np.float32)


# Beyond this many sigmas of distance the border term is below exp(-18) ~ 1.5e-8 (times w0).
_TRUNCATE = 6.0


def unet_weight_map(mask, w0=10.0, sigma=5.0, class_weights="balanced", ignore_index=255,
                    background=0, border_on="background", connectivity=1):
    """U-Net's pixel weight map (Ronneberger, Fischer, Brox 2015, eq. 2).

    ``w(x) = w_c(x) + w0 * exp(-(d1(x) + d2(x))^2 / (2 sigma^2))`` where ``d1`` and ``d2``
    are the distances from pixel ``x`` to the nearest and the second-nearest object. It
    forces the network to learn the thin background gaps between touching objects.

    Objects: the connected components of each non-background class taken separately
    (``scipy.ndimage.label`` on ``mask == c``, 4-connected by default), so two touching
    objects of different classes are two objects, and one class's objects separated by a
    background gap are several. Distances are Euclidean, in pixels, from the pixel centre
    to the nearest pixel of the object (0 on the object). With fewer than two objects the
    border term is 0.

    Args:
        mask: integer array ``(H, W)``.
        w0: weight of the border term (10 in the paper).
        sigma: its width in pixels (about 5 in the paper).
        class_weights: the class-balancing term ``w_c``: ``"balanced"`` (inverse class
            frequency in this mask, scaled so that the mean over labelled pixels is 1:
            ``w_c = labelled pixels / (present classes * pixels of c)``), ``None`` (1), or an
            array ``(num_classes,)`` of per-class weights.
        ignore_index: label whose pixels get weight 0.
        background: class index (or sequence of indices) that forms no object.
        border_on: ``"background"`` adds the border term on background pixels only (the
            gaps, as the paper's Fig. 3d shows); ``"all"`` adds it everywhere, as eq. 2
            literally reads (object pixels next to another object are weighted up too).
        connectivity: 1 (4-neighbourhood) or 2 (8-neighbourhood) for the components.

    Returns:
        ``float32 (H, W)`` weights, usable as ``sample_weight`` of a per-pixel loss.
    """
    mask = np.asarray(mask)
    if mask.ndim != 2 or not np.issubdtype(mask.dtype, np.integer):
        raise ValueError(
            f"unet_weight_map: mask must be an integer array (H, W), got {mask.dtype} "
            f"{mask.shape}."
        )
    if sigma <= 0:
        raise ValueError(f"unet_weight_map: sigma must be > 0, got {sigma}.")
    if border_on not in ("background", "all"):
        raise ValueError(f"unet_weight_map: border_on must be 'background' or 'all', got "
                         f"{border_on!r}.")
    if connectivity not in (1, 2):
        raise ValueError(f"unet_weight_map: connectivity must be 1 or 2, got {connectivity}.")
    valid = mask != ignore_index
    labels = mask.astype(np.int64)
    if (labels[valid] < 0).any():
        raise ValueError("unet_weight_map: mask has negative labels.")
    background = {int(b) for b in np.atleast_1d(background)} if background is not None else set()

    # class term w_c
    if class_weights is None:
        wc = valid.astype(np.float64)
    elif isinstance(class_weights, str):
        if class_weights != "balanced":
            raise ValueError(
                f"unet_weight_map: class_weights must be 'balanced', None or an array, got "
                f"{class_weights!r}."
            )
        counts = np.bincount(labels[valid]) if valid.any() else np.zeros(1, np.int64)
        present = counts > 0
        table = np.zeros(len(counts))
        table[present] = valid.sum() / (present.sum() * counts[present])
        wc = np.where(valid, table[np.where(valid, labels, 0)], 0.0)
    else:
        table = np.asarray(class_weights, dtype=np.float64)
        top = int(labels[valid].max()) if valid.any() else -1
        if table.ndim != 1 or top >= len(table):
            raise ValueError(
                f"unet_weight_map: class_weights has {table.size} entries but the mask has "
                f"label {top}; give one weight per class."
            )
        wc = np.where(valid, table[np.where(valid, labels, 0)], 0.0)

    # border term from the two nearest objects
    structure = ndimage.generate_binary_structure(2, connectivity)
    objects = []
    for c in np.unique(labels[valid]):
        if int(c) in background:
            continue
        comp, n = ndimage.label(labels == c, structure=structure)
        objects += [comp == k for k in range(1, n + 1)]
    border = np.zeros(mask.shape, dtype=np.float64)
    if len(objects) >= 2:
        h, w = mask.shape
        margin = int(np.ceil(_TRUNCATE * sigma))
        d1 = np.full(mask.shape, np.inf)
        d2 = np.full(mask.shape, np.inf)
        for obj in objects:
            rows, cols = np.nonzero(obj)
            r0, r1 = max(rows.min() - margin, 0), min(rows.max() + margin + 1, h)
            c0, c1 = max(cols.min() - margin, 0), min(cols.max() + margin + 1, w)
            # exact distances inside the window (the object lies inside it); farther
            # pixels contribute less than exp(-_TRUNCATE^2 / 2) to the border term
            d = ndimage.distance_transform_edt(~obj[r0:r1, c0:c1])
            a1, a2 = d1[r0:r1, c0:c1], d2[r0:r1, c0:c1]
            a2[...] = np.minimum(a2, np.maximum(a1, d))
            a1[...] = np.minimum(a1, d)
        border = w0 * np.exp(-((d1 + d2) ** 2) / (2.0 * sigma**2))
        if border_on == "background":
            is_background = np.isin(labels, list(background)) & valid
            border = np.where(is_background, border, 0.0)
        else:
            border = np.where(valid, border, 0.0)
    return (wc + border).astype(np.float32)

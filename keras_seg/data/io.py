"""Reading and writing images and label masks (index PNGs, palette PNGs, color masks).

Conventions used by every reader of :mod:`keras_seg.data`:

* an **image** is returned as a ``uint8`` array ``(H, W, 3)`` (RGB); grayscale, alpha and
  palette images are converted, 16-bit images are scaled to 8 bits;
* a **mask** is an integer array ``(H, W)`` of class indices, with ``ignore_index`` (255 by
  default) for pixels no loss or metric counts. On disk a mask is a single-channel index
  PNG (8 or 16 bit), a palette ("P" mode) PNG whose palette *index* is the class (Pascal
  VOC's format), or an RGB color mask whose colors are mapped to classes with a palette.

Unreadable or corrupt files raise ``ValueError`` naming the file; missing files raise
``FileNotFoundError``. Nothing is silently skipped.
"""

import os

import numpy as np
from PIL import Image, UnidentifiedImageError

IMAGE_EXTENSIONS = (".png", ".jpg", ".jpeg", ".bmp", ".tif", ".tiff")
MASK_EXTENSIONS = (".png",)

# Pascal VOC draws its void / boundary label (255) in this cream color.
VOID_COLOR = (224, 224, 192)


def _open(path, what):
    """Open and fully decode ``path`` with PIL, turning every failure into a clear error."""
    path = os.fspath(path)
    if not os.path.isfile(path):
        raise FileNotFoundError(
            f"{what} file not found: {path!r}. Check the dataset root and layout "
            "(see the reader's docstring), or remove the entry that lists it."
        )
    try:
        img = Image.open(path)
        img.load()
    except (UnidentifiedImageError, OSError, SyntaxError, ValueError) as e:
        raise ValueError(
            f"Cannot read {what.lower()} file {path!r} ({type(e).__name__}: {e}). The file is "
            "corrupt, truncated or not an image: re-export it (e.g. as PNG) or remove it "
            "and its partner from the dataset."
        ) from e
    return img


def read_image(path):
    """Read an image file as RGB.

    Args:
        path: path of a PNG/JPEG/BMP/TIFF file.

    Returns:
        ``uint8`` array of shape ``(H, W, 3)``. Grayscale images are repeated over the three
        channels, alpha is dropped, palette images are expanded to their colors, and 16-bit
        images are scaled to 8 bits (``value / 257``).

    Raises:
        FileNotFoundError: the file does not exist.
        ValueError: the file cannot be decoded, or holds floating-point pixels.
    """
    img = _open(path, "Image")
    if img.mode in ("I;16", "I;16B", "I;16L", "I"):
        arr = np.asarray(img).astype(np.int64)
        arr = np.clip(arr, 0, 65535) // 257
        arr = arr.astype(np.uint8)
        return np.repeat(arr[..., None], 3, axis=-1)
    if img.mode == "F":
        raise ValueError(
            f"Image file {os.fspath(path)!r} holds floating-point pixels (PIL mode 'F'); "
            "convert it to an 8-bit RGB or grayscale image first."
        )
    return np.asarray(img.convert("RGB"), dtype=np.uint8).copy()


def read_mask(path, palette=None):
    """Read a label mask.

    Args:
        path: path of a PNG mask.
        palette: only for RGB color masks: either an array-like ``(K, 3)`` whose row ``k``
            is the color of class ``k``, or a dict ``{(r, g, b): label}`` (a label may be the
            ignore index, e.g. ``{(224, 224, 192): 255}``). Ignored for index and palette
            ("P" mode) masks, whose stored index is the label.

    Returns:
        Integer array ``(H, W)``: ``uint8`` for 8-bit masks, ``int32`` for 16-bit masks and
        color masks. The values are the raw labels; range checks are the dataset's job.

    Raises:
        FileNotFoundError: the file does not exist.
        ValueError: the file cannot be decoded; an RGB mask with several distinct channel
            values and no ``palette``; a color not in ``palette`` (names file and color).
    """
    img = _open(path, "Mask")
    path = os.fspath(path)
    mode = img.mode
    if mode in ("P", "L"):
        return np.asarray(img, dtype=np.uint8).copy()
    if mode == "1":
        return np.asarray(img, dtype=np.uint8).copy()
    if mode in ("I;16", "I;16B", "I;16L", "I"):
        return np.asarray(img).astype(np.int32)
    if mode == "LA":
        return np.asarray(img, dtype=np.uint8)[..., 0].copy()
    if mode in ("RGB", "RGBA"):
        rgb = np.asarray(img.convert("RGB"), dtype=np.uint8)
        if palette is not None:
            return colors_to_labels(rgb, palette, source=path)
        if np.array_equal(rgb[..., 0], rgb[..., 1]) and np.array_equal(rgb[..., 0], rgb[..., 2]):
            # a grayscale index mask stored with three equal channels
            return rgb[..., 0].copy()
        raise ValueError(
            f"Mask {path!r} is an RGB color image. Pass the class colors as palette= "
            "(row k = color of class k, or a dict {(r, g, b): label}) so colors map to "
            "classes, or save masks as single-channel index PNGs or palette PNGs."
        )
    raise ValueError(
        f"Mask {path!r} has the unsupported PIL mode {mode!r}; save it as a single-channel "
        "8/16-bit PNG, a palette PNG or an RGB color PNG."
    )


def _palette_table(palette):
    """``(codes, labels)``: 24-bit color codes and their labels, from an array or a dict."""
    if isinstance(palette, dict):
        colors = np.asarray(list(palette.keys()), dtype=np.int64).reshape(-1, 3)
        labels = np.asarray(list(palette.values()), dtype=np.int64)
    else:
        colors = np.asarray(palette, dtype=np.int64)
        if colors.ndim != 2 or colors.shape[1] != 3:
            raise ValueError(
                f"palette must have shape (num_classes, 3) or be a dict {{(r, g, b): label}}; "
                f"got an array of shape {colors.shape}."
            )
        labels = np.arange(len(colors), dtype=np.int64)
    if colors.min(initial=0) < 0 or colors.max(initial=0) > 255:
        raise ValueError("palette colors must be in [0, 255].")
    codes = (colors[:, 0] << 16) | (colors[:, 1] << 8) | colors[:, 2]
    if len(np.unique(codes)) != len(codes):
        raise ValueError("palette lists the same color twice; each color must name one label.")
    return codes, labels


def colors_to_labels(rgb, palette, source="mask"):
    """Map an RGB color mask to labels with a palette.

    Args:
        rgb: ``uint8`` array ``(H, W, 3)``.
        palette: array-like ``(K, 3)`` (row ``k`` = color of class ``k``) or a dict
            ``{(r, g, b): label}``.
        source: name used in error messages (the file path).

    Returns:
        ``int32`` array ``(H, W)`` of labels.

    Raises:
        ValueError: a color of ``rgb`` is not in the palette (names ``source``, the colors
            and how many pixels have them).
    """
    codes, labels = _palette_table(palette)
    rgb = np.asarray(rgb).astype(np.int64)
    pix = (rgb[..., 0] << 16) | (rgb[..., 1] << 8) | rgb[..., 2]
    uniq, inverse = np.unique(pix, return_inverse=True)
    order = np.argsort(codes)
    pos = np.searchsorted(codes[order], uniq)
    pos = np.clip(pos, 0, len(codes) - 1)
    found = codes[order][pos] == uniq
    if not found.all():
        missing = uniq[~found]
        counts = np.bincount(inverse.ravel(), minlength=len(uniq))[~found]
        shown = ", ".join(
            f"({c >> 16}, {(c >> 8) & 255}, {c & 255}): {n} px"
            for c, n in zip(missing[:8].tolist(), counts[:8].tolist(), strict=True)
        )
        more = f" and {len(missing) - 8} more" if len(missing) > 8 else ""
        raise ValueError(
            f"Color mask {source!r} has colors that are not in the palette: {shown}{more}. "
            "Add them to palette= (a dict may map a color to the ignore index) or fix the "
            "mask (anti-aliased or JPEG-compressed masks blend colors: save masks as PNG "
            "without smoothing)."
        )
    return labels[order][pos][inverse].reshape(pix.shape).astype(np.int32)


def colorize(mask, palette, ignore_index=255, ignore_color=VOID_COLOR):
    """Turn a label mask into an RGB image for viewing.

    Args:
        mask: integer array ``(H, W)``.
        palette: ``uint8`` array-like ``(num_classes, 3)``, the color of each class.
        ignore_index: label drawn with ``ignore_color``.
        ignore_color: RGB color of ignored pixels.

    Returns:
        ``uint8`` array ``(H, W, 3)``.

    Raises:
        ValueError: a label is neither in ``[0, num_classes)`` nor ``ignore_index``.
    """
    mask = np.asarray(mask)
    palette = np.asarray(palette, dtype=np.uint8)
    bad = ((mask < 0) | (mask >= len(palette))) & (mask != ignore_index)
    if bad.any():
        raise ValueError(
            f"colorize: labels {np.unique(mask[bad])[:10].tolist()} have no palette color "
            f"(palette has {len(palette)} classes; ignore_index={ignore_index})."
        )
    out = np.empty(mask.shape + (3,), dtype=np.uint8)
    valid = mask != ignore_index
    out[valid] = palette[mask[valid]]
    out[~valid] = np.asarray(ignore_color, dtype=np.uint8)
    return out


def write_image(path, image):
    """Write a ``uint8`` image ``(H, W, 3)`` or ``(H, W)`` (format from the extension)."""
    image = np.asarray(image)
    if image.dtype != np.uint8:
        raise ValueError(f"write_image expects a uint8 array, got {image.dtype}.")
    Image.fromarray(image).save(os.fspath(path))


def write_mask(path, mask, palette=None, ignore_index=255, ignore_color=VOID_COLOR):
    """Write a label mask as a PNG that :func:`read_mask` reads back unchanged.

    Labels in ``[0, 255]`` are written as a palette ("P" mode) PNG in Pascal VOC's style:
    the stored index is the label, and viewers show class ``k`` in ``palette[k]`` and the
    ignore index in ``ignore_color``. Larger labels are written as a 16-bit grayscale PNG.

    Args:
        path: output path (``.png``).
        mask: integer array ``(H, W)`` with values in ``[0, 65535]``.
        palette: ``(K, 3)`` class colors; ``None`` uses
            :func:`keras_seg.data.default_palette`.
        ignore_index: label shown in ``ignore_color`` (when it is below 256).
        ignore_color: RGB color of the ignore index in the PNG's palette.
    """
    from keras_seg.data.base import default_palette

    mask = np.asarray(mask)
    if mask.ndim != 2 or not np.issubdtype(mask.dtype, np.integer):
        raise ValueError(
            f"write_mask expects an integer array (H, W), got {mask.dtype} {mask.shape}."
        )
    if mask.size and (mask.min() < 0 or mask.max() > 65535):
        raise ValueError("write_mask: labels must be in [0, 65535].")
    path = os.fspath(path)
    if mask.size == 0 or mask.max() <= 255:
        table = default_palette(256)
        if palette is not None:
            palette = np.asarray(palette, dtype=np.uint8)[:256]
            table[: len(palette)] = palette
        if 0 <= ignore_index <= 255:
            table[ignore_index] = ignore_color
        img = Image.fromarray(mask.astype(np.uint8))  # mode "L"
        img.putpalette(table.reshape(-1).tolist())  # turns it into mode "P", same indices
        img.save(path)
    else:
        Image.fromarray(mask.astype(np.uint16)).save(path)

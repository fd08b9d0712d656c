"""Pictures of segmentations: colored masks, overlays, side-by-side panels, confusion matrices.

All functions take and return numpy ``uint8`` RGB arrays ``(H, W, 3)``; :func:`save_png`
writes them with Pillow.
"""

import os

import numpy as np

#: color drawn for ignore-index pixels (and any label outside the palette)
IGNORE_COLOR = (255, 255, 255)


def colorize(mask, palette, ignore_color=IGNORE_COLOR):
    """Color a class map.

    Args:
        mask: integer array ``(H, W)`` of class indices (values outside
            ``[0, len(palette))``, such as the ignore index, get ``ignore_color``).
        palette: ``(num_classes, 3)`` uint8 colors.
        ignore_color: RGB of the pixels without a class.

    Returns:
        uint8 array ``(H, W, 3)``.
    """
    mask = np.asarray(mask)
    if mask.ndim != 2:
        raise ValueError(f"colorize expects a (H, W) class map, got shape {mask.shape}.")
    palette = np.asarray(palette, dtype=np.uint8)
    table = np.concatenate([palette, np.asarray([ignore_color], dtype=np.uint8)])
    index = np.where((mask >= 0) & (mask < len(palette)), mask, len(palette))
    return table[index]


def overlay(image, mask, palette, alpha=0.5):
    """Blend the colored ``mask`` over ``image`` (uint8 ``(H, W, 3)``) with weight ``alpha``."""
    image = _as_rgb(image)
    colored = colorize(mask, palette).astype(np.float32)
    if colored.shape != image.shape:
        raise ValueError(f"Image {image.shape[:2]} and mask {colored.shape[:2]} differ in size.")
    blend = (1 - alpha) * image.astype(np.float32) + alpha * colored
    return np.clip(blend + 0.5, 0, 255).astype(np.uint8)


def side_by_side(image, truth, prediction, palette, gap=4, zoom=1):
    """Image | ground truth | prediction, as one uint8 panel.

    Args:
        image: ``(H, W, 3)`` or ``(H, W)`` image.
        truth, prediction: integer class maps ``(H, W)``.
        palette: ``(num_classes, 3)`` uint8 colors.
        gap: white pixels between the panels.
        zoom: integer factor each panel is enlarged by (nearest neighbour, so that
            small images stay readable and labels keep their exact pixels).

    Returns:
        uint8 ``(zoom H, 3 zoom W + 2 gap, 3)``.
    """
    if not isinstance(zoom, (int, np.integer)) or zoom < 1:
        raise ValueError(f"side_by_side: zoom must be a positive int, got {zoom!r}.")
    image = _as_rgb(image)
    panels = [image, colorize(truth, palette), colorize(prediction, palette)]
    panels = [p.repeat(zoom, axis=0).repeat(zoom, axis=1) for p in panels]
    h = panels[0].shape[0]
    spacer = np.full((h, gap, 3), 255, dtype=np.uint8)
    return np.concatenate([panels[0], spacer, panels[1], spacer, panels[2]], axis=1)


def confusion_image(confusion, class_names=None, cell=24):
    """A row-normalized confusion-matrix heat map (rows = truth, columns = prediction).

    Args:
        confusion: ``(K, K)`` counts.
        class_names: optional K names drawn on the left and top margins.
        cell: side of one cell in pixels.

    Returns:
        uint8 RGB array.
    """
    from PIL import Image, ImageDraw

    cm = np.asarray(confusion, dtype=np.float64)
    k = cm.shape[0]
    rows = cm.sum(axis=1, keepdims=True)
    frac = np.divide(cm, rows, out=np.zeros_like(cm), where=rows > 0)
    names = list(class_names) if class_names is not None else [str(i) for i in range(k)]
    margin = 8 + 7 * max(len(n) for n in names)
    size = margin + k * cell + 4
    img = Image.new("RGB", (size, size), (255, 255, 255))
    draw = ImageDraw.Draw(img)
    for i in range(k):
        for j in range(k):
            shade = int(round(255 * (1 - frac[i, j])))
            x0, y0 = margin + j * cell, margin + i * cell
            draw.rectangle([x0, y0, x0 + cell - 1, y0 + cell - 1], fill=(shade, shade, 255))
        draw.text((2, margin + i * cell + cell // 3), names[i], fill=(0, 0, 0))
        draw.text((margin + i * cell + 2, 2), names[i][:3], fill=(0, 0, 0))
    return np.asarray(img)


def save_png(array, path):
    """Write a uint8 ``(H, W, 3)`` or ``(H, W)`` array to ``path`` (folders created)."""
    from PIL import Image

    folder = os.path.dirname(path)
    if folder:
        os.makedirs(folder, exist_ok=True)
    Image.fromarray(np.asarray(array, dtype=np.uint8)).save(path)
    return path


def _as_rgb(image):
    image = np.asarray(image)
    if image.ndim != 3 or image.shape[-1] != 3:
        raise ValueError(f"Expected an RGB image (H, W, 3), got shape {image.shape}.")
    if image.dtype != np.uint8:
        image = np.clip(image * (255.0 if image.max() <= 1.0 else 1.0) + 0.5, 0, 255)
        image = image.astype(np.uint8)
    return image

"""Pictures of segmentations: colored masks, overlays, labelled prediction pictures,
confusion matrices and training curves.

Two kinds of functions:

- pixel arrays (numpy ``uint8`` RGB ``(H, W, 3)``): :func:`colorize`, :func:`overlay`,
  :func:`side_by_side` (the bare image | truth | prediction strip, exact pixels);
  :func:`save_png` writes one;
- figures drawn with matplotlib, with titles, axis labels and legends a person reads:
  :func:`prediction_figure` (image / truth / prediction / overlay columns and a legend of
  the class colors with their names), :func:`confusion_figure` (row-normalized confusion
  matrix with class names, values in the cells and a color scale) and
  :func:`curves_figure` (loss and mean IoU per epoch). Each returns a
  ``matplotlib.figure.Figure`` (its text objects can be inspected); :func:`save_figure`
  writes one as a PNG, :func:`figure_to_array` renders one to pixels.
  :func:`save_confusion_matrix` and :func:`training_curves` draw and write in one call
  (``keras-seg evaluate`` / ``train``).

matplotlib is imported inside the functions (``import keras_seg`` stays fast) and used
without pyplot: each figure is a ``matplotlib.figure.Figure`` on its own Agg canvas, so
nothing opens a window, no global figure state is kept and threads do not interfere.

Files are written atomically: to a hidden temporary file beside the target
(``.NAME.PID.tmp``, the kind of leftover ``keras-seg train`` removes from a run folder),
then moved into place with ``os.replace``; a reader never sees half a picture.
"""

import csv
import math
import os

import numpy as np

#: color drawn for ignore-index pixels (and any label outside the palette)
IGNORE_COLOR = (255, 255, 255)

#: pixels per inch of the figures (font sizes are in points: 10 pt is 14 px)
DPI = 100

#: log.csv columns drawn by :func:`curves_figure`: (panel title, train key, validation key)
CURVES = (("loss", "loss", "val_loss"), ("mean IoU", "mean_iou", "val_mean_iou"))

TRAIN_COLOR, VAL_COLOR = "#1f77b4", "#d62728"


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
    """Blend the colored ``mask`` over ``image`` with weight ``alpha``.

    Args:
        image: ``(H, W, 3)`` RGB, or ``(H, W)`` / ``(H, W, 1)`` gray; uint8, or float
            in [0, 1] or [0, 255].
        mask: integer class map ``(H, W)``.
        palette: ``(num_classes, 3)`` uint8 colors.
        alpha: weight of the mask colors (0: the image only, 1: the colors only).

    Returns:
        uint8 array ``(H, W, 3)``.
    """
    image = _as_rgb(image)
    colored = colorize(mask, palette).astype(np.float32)
    if colored.shape != image.shape:
        raise ValueError(f"Image {image.shape[:2]} and mask {colored.shape[:2]} differ in size.")
    blend = (1 - alpha) * image.astype(np.float32) + alpha * colored
    return np.clip(blend + 0.5, 0, 255).astype(np.uint8)


def side_by_side(image, truth, prediction, palette, gap=4, zoom=1):
    """Image | ground truth | prediction as one bare uint8 strip (no titles, no legend).

    The exact pixels, for code that processes the picture further; for a picture a
    person reads, with column titles and a legend of the class colors, use
    :func:`prediction_figure`.

    Args:
        image: ``(H, W, 3)`` RGB or ``(H, W)`` / ``(H, W, 1)`` gray image.
        truth: integer class map ``(H, W)`` of the ground truth.
        prediction: integer class map ``(H, W)`` of the prediction.
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


# ---------------------------------------------------------------- matplotlib figures


def prediction_figure(image, prediction, palette, truth=None, class_names=None, *,
                      alpha=0.5, title=None):
    """A titled picture of one prediction: image / truth / prediction / overlay, and a
    legend of the class colors with their names.

    The legend lists the classes that appear in the truth or the prediction (a picture
    of 21 possible classes usually shows a few), each as ``name (index)`` so that it
    can be matched with the pixel values of an index mask, and ``ignored (unlabeled)``
    when the truth has pixels outside the classes (drawn white). It sits below the
    pictures, never over them. Small images are enlarged (nearest neighbour for the
    masks: label borders stay exact) so that each column is at least 256 pixels wide.

    Args:
        image: ``(H, W, 3)`` RGB or ``(H, W)`` / ``(H, W, 1)`` gray image; uint8, or
            float in [0, 1] or [0, 255].
        prediction: integer class map ``(H, W)``.
        palette: ``(num_classes, 3)`` uint8 colors, one per class.
        truth: integer class map ``(H, W)`` of the ground truth, or None (no truth
            column: what ``keras-seg predict`` draws).
        class_names: one name per class (None: ``class_<k>``).
        alpha: weight of the prediction colors in the overlay column.
        title: a line above the columns (None: none).

    Returns:
        A ``matplotlib.figure.Figure`` (write it with :func:`save_figure`).
    """
    import matplotlib.patches as mpatches

    rgb = _as_rgb(image)
    prediction = _class_map(prediction, rgb.shape[:2], "prediction")
    palette = np.asarray(palette, dtype=np.uint8)
    names = _class_names(class_names, len(palette))
    columns = [("image", rgb, "antialiased")]
    if truth is not None:
        truth = _class_map(truth, rgb.shape[:2], "truth")
        columns.append(("truth", colorize(truth, palette), "nearest"))
    columns.append(("prediction", colorize(prediction, palette), "nearest"))
    columns.append(("overlay", overlay(rgb, prediction, palette, alpha), "antialiased"))

    h, w = rgb.shape[:2]
    # each column between 256 and 512 pixels wide, at most 512 high
    panel_w = min(max(w, 256), 512)
    panel_h = panel_w * h / w
    if panel_h > 512:
        panel_w, panel_h = panel_w * 512 / panel_h, 512
    labels = [k for k in range(len(palette))
              if (prediction == k).any() or (truth is not None and (truth == k).any())]
    handles = [mpatches.Patch(facecolor=palette[k] / 255.0, edgecolor="0.4", linewidth=0.6,
                              label=f"{names[k]} ({k})") for k in labels]
    if truth is not None and ((truth < 0) | (truth >= len(palette))).any():
        handles.append(mpatches.Patch(facecolor=np.asarray(IGNORE_COLOR) / 255.0,
                                      edgecolor="0.4", linewidth=0.6,
                                      label="ignored (unlabeled)"))
    # the layout in pixels (a fixed grid: no layout engine to squeeze the titles)
    pad, gap, col_title = 10, 16, 28
    top = pad + (30 if title else 0) + col_title
    width_px = pad * 2 + len(columns) * panel_w + (len(columns) - 1) * gap
    longest = max((len(handle.get_label()) for handle in handles), default=10)
    entry_px = 44 + 8 * longest  # patch, spacing and the label at 10 pt
    ncol = max(1, min(len(handles), int((width_px - 2 * pad) // entry_px)))
    legend_rows = math.ceil(len(handles) / ncol) if handles else 0
    legend_px = 30 + 24 * legend_rows if handles else 0
    height_px = top + panel_h + pad + legend_px
    figure = _new_figure(width_px / DPI, height_px / DPI, layout=None)
    for i, (name, pixels, interpolation) in enumerate(columns):
        left = pad + i * (panel_w + gap)
        ax = figure.add_axes([left / width_px, (height_px - top - panel_h) / height_px,
                              panel_w / width_px, panel_h / height_px])
        ax.imshow(pixels, interpolation=interpolation, aspect="auto")
        ax.set_title(name, fontsize=12)
        ax.set_xticks([])
        ax.set_yticks([])
    if title:
        figure.suptitle(title, fontsize=12, y=1 - pad / height_px, va="top")
    if handles:
        figure.legend(handles=handles, loc="upper center", ncol=ncol, fontsize=10,
                      bbox_to_anchor=(0.5, legend_px / height_px), frameon=False,
                      title="classes in this picture: name (label value)",
                      title_fontsize=10, handlelength=1.6, handleheight=1.1,
                      columnspacing=1.4, borderaxespad=0.2)
    return figure


def confusion_figure(confusion, class_names=None, *, title=None):
    """The row-normalized confusion matrix as a heat map a person reads.

    Rows are the true classes and columns the predicted ones, each labelled with the
    full class name ("true class" / "predicted class" axis titles); each cell holds the
    fraction of the true class's pixels predicted as the column's class (a row sums to
    1; the diagonal is each class's recall), printed in the cell (blank for no pixel,
    ``<.01`` for a few), with a color scale beside the matrix. The right edge gives each
    row's pixel count (``n``), so the counts are the fraction times ``n``; matrices of
    up to 8 classes also print each cell's count under its fraction. A class without
    any true pixel has a gray row. The exact counts are also in ``eval.json``.

    Args:
        confusion: ``(K, K)`` pixel counts, rows = truth, columns = prediction.
        class_names: K names (None: ``class_<k>``).
        title: a line above the matrix (None: "confusion matrix").

    Returns:
        A ``matplotlib.figure.Figure`` (write it with :func:`save_figure`).
    """
    import matplotlib
    from matplotlib.ticker import FixedLocator

    counts = np.asarray(confusion, dtype=np.float64)
    if counts.ndim != 2 or counts.shape[0] != counts.shape[1] or counts.shape[0] < 1:
        raise ValueError(f"confusion_figure: confusion must be square (K, K), got shape "
                         f"{counts.shape}.")
    k = counts.shape[0]
    names = _class_names(class_names, k)
    totals = counts.sum(axis=1)
    with np.errstate(invalid="ignore", divide="ignore"):
        frac = np.where(totals[:, None] > 0, counts / totals[:, None], np.nan)

    # sizes in inches: the figure is made to fit the matrix, its labels and the color
    # scale, so that the cells come out square without forcing an aspect (a fixed
    # aspect lets the layout engine cut the axis labels)
    cell = max(0.62, 2.4 / k) if k <= 8 else max(0.3, 0.62 - 0.02 * (k - 8))
    font = 10 if k <= 8 else (8 if k <= 16 else 7)
    label_font = 10 if k <= 24 else 8
    count_font = label_font - 1
    name_in = max(len(n) for n in names) * label_font * 0.6 / 72
    count_in = 0.1 + 8 * count_font * 0.6 / 72  # "n=99.9k" right of the matrix
    title_in = len(title or "confusion matrix") * 12 * 0.6 / 72
    width = max(name_in + 0.35 + k * cell + count_in + 1.35 + 0.2, title_in + 0.4)
    height = 0.45 + k * cell + name_in * 0.71 + 0.5 + 0.2
    figure = _new_figure(width, height)
    ax = figure.add_subplot()
    cmap = matplotlib.colormaps["Blues"].with_extremes(bad="0.85")
    shown = ax.imshow(np.ma.masked_invalid(frac), cmap=cmap, vmin=0.0, vmax=1.0,
                      interpolation="nearest", aspect="auto",
                      extent=(-0.5, k - 0.5, k - 0.5, -0.5))
    ax.set_xticks(range(k), names, rotation=45, ha="right", rotation_mode="anchor",
                  fontsize=label_font)
    ax.set_yticks(range(k), names, fontsize=label_font)
    ax.set_xlabel("predicted class", fontsize=11)
    ax.set_ylabel("true class", fontsize=11)
    ax.tick_params(length=0)
    # thin white lines between the cells
    ax.xaxis.set_minor_locator(FixedLocator(np.arange(-0.5, k, 1.0)))
    ax.yaxis.set_minor_locator(FixedLocator(np.arange(-0.5, k, 1.0)))
    ax.grid(which="minor", color="white", linewidth=1.0)
    ax.tick_params(which="minor", length=0)
    for side in ax.spines.values():
        side.set_visible(False)
    # each row's pixel count in a column right of the matrix (inside the axes: a
    # secondary axis would throw the layout off)
    ax.set_xlim(-0.5, k - 0.5 + count_in / cell)
    for i, total in enumerate(totals):
        ax.text(k - 0.5 + 0.1 / cell, i, f"n={_compact(total)}", ha="left", va="center",
                fontsize=count_font, color="0.35")
    with_counts = k <= 8
    for i in range(k):
        for j in range(k):
            if counts[i, j] == 0 or math.isnan(frac[i, j]):
                continue
            value = frac[i, j]
            text = "<.01" if value < 0.005 else f"{value:.2f}"
            if with_counts:
                text += f"\n{_compact(counts[i, j])}"
            ax.text(j, i, text, ha="center", va="center", fontsize=font,
                    color="white" if value > 0.55 else "0.1")
    bar = figure.colorbar(shown, ax=ax, fraction=0.045, pad=0.02, shrink=0.85)
    bar.set_label("fraction of the true class's pixels\n(each row sums to 1)", fontsize=10)
    bar.ax.tick_params(labelsize=9)
    figure.suptitle(title or "confusion matrix", fontsize=12)
    return figure


def curves_figure(rows_or_csv_path, title=None):
    """Loss and mean IoU per epoch, training and validation: two panels side by side.

    The points are the epochs (counted from 1; ``log.csv`` counts from 0 as Keras'
    ``CSVLogger``); the best validation mean IoU is marked with a star. Both vertical
    axes start at 0 (mean IoU ends at 1 at most), so that the size of a change reads
    right. The legend is
    shared and sits below the panels, off the curves. Missing columns (no validation
    split) or empty values are left out.

    Args:
        rows_or_csv_path: the rows of ``log.csv`` (dicts with ``epoch``, ``loss``,
            ``mean_iou``, ``val_loss``, ``val_mean_iou``, values as numbers or strings),
            or the path of a ``log.csv``.
        title: a line above the panels (None: "training curves, N epochs").

    Returns:
        A ``matplotlib.figure.Figure`` (write it with :func:`save_figure`).

    Raises:
        ValueError: there is no row, or a row has no ``epoch``.
    """
    from matplotlib.lines import Line2D
    from matplotlib.ticker import MaxNLocator

    rows = _read_rows(rows_or_csv_path)
    if not rows:
        raise ValueError("curves_figure: no epoch to draw (log.csv has no row yet).")
    try:
        epochs = np.asarray([int(float(row["epoch"])) + 1 for row in rows])
    except (KeyError, TypeError, ValueError) as err:
        raise ValueError(f"curves_figure: every row needs an 'epoch' number ({err!r}).") from None
    figure = _new_figure(10.0, 4.4)
    axes = figure.subplots(1, 2)
    marker = "o" if len(rows) <= 60 else None
    best = None
    for ax, (name, train_key, val_key) in zip(axes, CURVES, strict=True):
        for key, label, color, style in ((train_key, "training", TRAIN_COLOR, "-"),
                                         (val_key, "validation", VAL_COLOR, "--")):
            values = np.asarray([_number(row.get(key)) for row in rows])
            keep = ~np.isnan(values)
            if keep.any():
                ax.plot(epochs[keep], values[keep], style, color=color, marker=marker,
                        markersize=4, linewidth=1.6, label=label)
            if key == "val_mean_iou" and keep.any():
                at = int(np.nanargmax(values))
                best = (epochs[at], values[at])
                ax.plot([best[0]], [best[1]], "*", color=VAL_COLOR, markersize=14,
                        markeredgecolor="black", markeredgewidth=0.6, zorder=5)
        # from 0, so that a small change does not look like a large one (mean IoU up to 1)
        low, high = ax.get_ylim()
        ax.set_ylim(min(0.0, low), min(high, 1.02) if name == "mean IoU" else high)
        ax.set_title(name, fontsize=12)
        ax.set_xlabel("epoch", fontsize=11)
        ax.xaxis.set_major_locator(MaxNLocator(integer=True))
        ax.tick_params(labelsize=10)
        ax.grid(alpha=0.3)
        if len(epochs) == 1:
            ax.set_xlim(epochs[0] - 1, epochs[0] + 1)
    handles = [Line2D([], [], color=TRAIN_COLOR, marker=marker, label="training"),
               Line2D([], [], color=VAL_COLOR, linestyle="--", marker=marker,
                      label="validation")]
    if best is not None:
        handles.append(Line2D([], [], color=VAL_COLOR, marker="*", linestyle="none",
                              markersize=12, markeredgecolor="black", markeredgewidth=0.6,
                              label=f"best validation mean IoU {best[1]:.4f} "
                                    f"(epoch {best[0]})"))
    figure.legend(handles=handles, loc="outside lower center", ncol=len(handles),
                  fontsize=10, frameon=False)
    count = len(rows)
    figure.suptitle(title or f"training curves, {count} epoch{'s' if count != 1 else ''}",
                    fontsize=12)
    return figure


def training_curves(rows_or_csv_path, path):
    """Draw :func:`curves_figure` and write it to ``path`` (PNG, atomically).

    ``keras-seg train`` calls it at each epoch end, once the epoch is committed, with
    the rows ``log.csv`` was just rewritten from, and writes ``curves.png`` beside it.

    Args:
        rows_or_csv_path: the rows of ``log.csv`` (dicts), or the path of a ``log.csv``.
        path: the PNG file to write (folders created).

    Returns:
        ``path``.
    """
    return save_figure(curves_figure(rows_or_csv_path), path)


def save_confusion_matrix(confusion, class_names, path, title=None):
    """Draw :func:`confusion_figure` and write it to ``path`` (PNG, atomically).

    Args:
        confusion: ``(K, K)`` pixel counts, rows = truth, columns = prediction.
        class_names: K names (None: ``class_<k>``).
        path: the PNG file to write (folders created).
        title: a line above the matrix (None: "confusion matrix").

    Returns:
        ``path``.
    """
    return save_figure(confusion_figure(confusion, class_names, title=title), path)


def confusion_image(confusion, class_names=None, title=None):
    """:func:`confusion_figure` rendered to a uint8 RGB array ``(H, W, 3)``.

    Args:
        confusion: ``(K, K)`` pixel counts, rows = truth, columns = prediction.
        class_names: K names (None: ``class_<k>``).
        title: a line above the matrix (None: "confusion matrix").
    """
    return figure_to_array(confusion_figure(confusion, class_names, title=title))


def figure_to_array(figure):
    """Render a matplotlib ``figure`` to a uint8 RGB array ``(H, W, 3)``.

    Args:
        figure: a ``matplotlib.figure.Figure`` (e.g. from :func:`prediction_figure`).
    """
    from matplotlib.backends.backend_agg import FigureCanvasAgg

    canvas = figure.canvas if isinstance(figure.canvas, FigureCanvasAgg) else \
        FigureCanvasAgg(figure)
    canvas.draw()
    return np.asarray(canvas.buffer_rgba())[..., :3].copy()


def save_figure(figure, path):
    """Write a matplotlib ``figure`` as a PNG to ``path``, atomically (folders created).

    Args:
        figure: a ``matplotlib.figure.Figure``.
        path: the file to write; the format is PNG whatever its extension.

    Returns:
        ``path``.
    """
    return write_atomic(path, lambda tmp: figure.savefig(tmp, format="png", dpi=DPI,
                                                          facecolor="white"))


def save_png(array, path):
    """Write a uint8 ``(H, W, 3)`` or ``(H, W)`` array as a PNG, atomically.

    Args:
        array: the pixels (converted to uint8).
        path: the file to write (folders created); the format is PNG whatever its
            extension.

    Returns:
        ``path``.
    """
    from PIL import Image

    image = Image.fromarray(np.asarray(array, dtype=np.uint8))
    return write_atomic(path, lambda tmp: image.save(tmp, format="PNG"))


# ------------------------------------------------------------------------- files


def write_atomic(path, write, suffix=""):
    """Write ``path`` atomically: ``write(tmp)`` fills a hidden temporary file beside it
    (``.NAME.PID.tmp`` + ``suffix``), then ``os.replace`` moves that into place (removed
    on failure).

    Args:
        path: the file to write (folders created).
        write: a function of one argument, the temporary path, that writes the content.
        suffix: appended to the temporary name, for writers that insist on one
            (``model.save`` needs ``.keras``).

    Returns:
        ``path``.
    """
    path = os.fspath(path)
    folder, name = os.path.split(path)
    if folder:
        os.makedirs(folder, exist_ok=True)
    tmp = os.path.join(folder, f".{name}.{os.getpid()}.tmp{suffix}")
    try:
        write(tmp)
        os.replace(tmp, path)
    except BaseException:
        if os.path.exists(tmp):
            os.remove(tmp)
        raise
    return path


def write_text_atomic(path, text):
    """Write the string ``text`` (UTF-8) to ``path`` atomically (:func:`write_atomic`).

    Args:
        path: the file to write (folders created).
        text: its whole content.

    Returns:
        ``path``.
    """
    def write(tmp):
        with open(tmp, "w", encoding="utf-8") as f:
            f.write(text)

    return write_atomic(path, write)


def _new_figure(width, height, layout="constrained"):
    """A Figure of ``width`` x ``height`` inches on its own Agg canvas (``layout``: its
    layout engine, None for axes placed by hand)."""
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    figure = Figure(figsize=(width, height), dpi=DPI, layout=layout, facecolor="white")
    FigureCanvasAgg(figure)
    return figure


def _class_names(class_names, count):
    """``count`` names: ``class_names`` (padded with ``class_<k>``) or ``class_<k>``."""
    names = [str(n) for n in (class_names if class_names is not None else [])][:count]
    return names + [f"class_{k}" for k in range(len(names), count)]


def _class_map(mask, size, what):
    """``mask`` as an integer ``(H, W)`` array of ``size``, or a ValueError naming it."""
    mask = np.asarray(mask)
    if mask.ndim == 3 and mask.shape[-1] == 1:
        mask = mask[..., 0]
    if mask.ndim != 2 or mask.shape != tuple(size):
        raise ValueError(f"The {what} must be a class map of the image's size {tuple(size)}, "
                         f"got shape {mask.shape}.")
    return mask.astype(np.int64)


def _compact(count):
    """A pixel count in at most 5 characters: 950, 12.3k, 4.1M."""
    count = float(count)
    for limit, suffix in ((1e9, "G"), (1e6, "M"), (1e3, "k")):
        if count >= limit:
            value = count / limit
            return f"{value:.1f}{suffix}" if value < 100 else f"{value:.0f}{suffix}"
    return f"{count:.0f}"


def _number(value):
    """A log value as a float (NaN for a missing or empty one)."""
    try:
        return float(value)
    except (TypeError, ValueError):
        return float("nan")


def _read_rows(rows_or_csv_path):
    """The rows of a ``log.csv`` given as rows or as its path."""
    if isinstance(rows_or_csv_path, (str, os.PathLike)):
        with open(rows_or_csv_path, newline="") as f:
            return list(csv.DictReader(f))
    return list(rows_or_csv_path)


def _as_rgb(image):
    """``image`` as uint8 RGB ``(H, W, 3)``: gray repeated, floats in [0, 1] scaled."""
    image = np.asarray(image)
    if image.ndim == 3 and image.shape[-1] == 1:
        image = image[..., 0]
    if image.ndim == 2:
        image = np.repeat(image[..., None], 3, axis=-1)
    if image.ndim != 3 or image.shape[-1] != 3:
        raise ValueError(f"Expected an RGB (H, W, 3) or gray (H, W) image, got shape "
                         f"{image.shape}.")
    if image.dtype != np.uint8:
        image = image.astype(np.float64)
        image = np.clip(image * (255.0 if image.max(initial=0) <= 1.0 else 1.0) + 0.5, 0, 255)
        image = image.astype(np.uint8)
    return image

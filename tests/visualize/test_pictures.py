"""keras_seg.visualize: the figures a person reads (prediction pictures, confusion matrix,
training curves), checked through their matplotlib objects and the files written."""

import csv
import math
import os

import numpy as np
import pytest
from PIL import Image

from keras_seg import visualize
from keras_seg.data.base import default_palette

VOC = ["background", "aeroplane", "bicycle", "bird", "boat", "bottle", "bus", "car", "cat",
       "chair", "cow", "diningtable", "dog", "horse", "motorbike", "person", "pottedplant",
       "sheep", "sofa", "train", "tvmonitor"]


def _assert_texts_inside(figure):
    """Nothing drawn (titles, tick labels, axis labels, legend, cells) is cut by the edge
    of the picture: the tight box of what is drawn lies within the canvas."""
    figure.canvas.draw()
    renderer = figure.canvas.get_renderer()
    box = figure.get_tightbbox(renderer)  # inches
    width, height = figure.get_size_inches()
    assert box.x0 >= -0.005 and box.y0 >= -0.005, (box, (width, height))
    assert box.x1 <= width + 0.005 and box.y1 <= height + 0.005, (box, (width, height))


def _png_size(path):
    with Image.open(path) as im:
        return im.size


def _pixels(figure):
    return tuple(int(round(v)) for v in figure.get_size_inches() * figure.dpi)


# ----------------------------------------------------------------- prediction pictures


def test_prediction_figure_titles_legend_and_file(tmp_path):
    rng = np.random.default_rng(0)
    image = rng.integers(0, 256, (48, 64, 3), dtype=np.uint8)
    truth = np.zeros((48, 64), np.int64)
    truth[10:30, 5:20], truth[:, 50:] = 2, 255
    prediction = np.zeros((48, 64), np.int64)
    prediction[12:30, 5:22], prediction[40:, :10] = 2, 4
    names = ["background", "disc", "square", "triangle", "ring"]
    figure = visualize.prediction_figure(image, prediction, default_palette(5), truth=truth,
                                         class_names=names, title="val 0")
    assert [ax.get_title() for ax in figure.axes] == ["image", "truth", "prediction",
                                                      "overlay"]
    legend = figure.legends[0]
    labels = [t.get_text() for t in legend.get_texts()]
    # the classes of the picture (truth or prediction), named with their label value, and
    # the ignored pixels; absent classes are left out
    assert labels == ["background (0)", "square (2)", "ring (4)", "ignored (unlabeled)"]
    colors = [tuple(np.round(np.asarray(p.get_facecolor()[:3]) * 255).astype(int))
              for p in legend.get_patches()]
    assert colors[:3] == [tuple(int(v) for v in default_palette(5)[k]) for k in (0, 2, 4)]
    assert figure.texts[0].get_text() == "val 0"
    # the pictures show the exact colored masks
    truth_panel = figure.axes[1].images[0].get_array()
    np.testing.assert_array_equal(truth_panel, visualize.colorize(truth, default_palette(5)))
    np.testing.assert_array_equal(figure.axes[3].images[0].get_array(),
                                  visualize.overlay(image, prediction, default_palette(5)))
    _assert_texts_inside(figure)
    # the legend sits below the pictures, over none of them
    renderer = figure.canvas.get_renderer()
    legend_top = legend.get_window_extent(renderer).y1
    assert all(legend_top <= ax.get_window_extent(renderer).y0 for ax in figure.axes)
    # small images are enlarged: each column is at least 256 pixels wide
    assert all(ax.get_window_extent(renderer).width >= 255.5 for ax in figure.axes)
    path = visualize.save_figure(figure, str(tmp_path / "sub" / "picture.png"))
    assert _png_size(path) == _pixels(figure)
    assert os.listdir(tmp_path / "sub") == ["picture.png"]  # no temporary file left


def test_prediction_figure_without_truth_and_with_21_classes():
    palette = default_palette(21)
    image = np.full((375, 500), 128, np.uint8)  # gray: drawn as RGB
    prediction = (np.arange(500)[None, :] * 21 // 500).repeat(375, axis=0)
    figure = visualize.prediction_figure(image, prediction, palette, class_names=VOC)
    assert [ax.get_title() for ax in figure.axes] == ["image", "prediction", "overlay"]
    labels = [t.get_text() for t in figure.legends[0].get_texts()]
    assert labels == [f"{name} ({k})" for k, name in enumerate(VOC)]
    _assert_texts_inside(figure)
    renderer = figure.canvas.get_renderer()
    legend = figure.legends[0].get_window_extent(renderer)
    assert all(legend.y1 <= ax.get_window_extent(renderer).y0 for ax in figure.axes)
    # the legend entries do not overlap one another
    boxes = [t.get_window_extent(renderer) for t in figure.legends[0].get_texts()]
    for i, a in enumerate(boxes):
        for b in boxes[i + 1:]:
            assert not a.overlaps(b), (a, b)
    # unnamed classes get class_<k>
    unnamed = visualize.prediction_figure(image[:20, :20], prediction[:20, :20], palette)
    assert [t.get_text() for t in unnamed.legends[0].get_texts()] == ["class_0 (0)"]


def test_prediction_figure_refuses_a_mask_of_another_size():
    with pytest.raises(ValueError, match="truth must be a class map of the image's size"):
        visualize.prediction_figure(np.zeros((8, 8, 3), np.uint8), np.zeros((8, 8), int),
                                    default_palette(2), truth=np.zeros((8, 9), int))


# ------------------------------------------------------------------- confusion matrix


def test_confusion_figure_names_values_counts_and_scale(tmp_path):
    names = ["background", "disc", "square"]
    confusion = np.array([[90, 10, 0], [5, 15, 0], [0, 0, 0]])
    figure = visualize.confusion_figure(confusion, names, title="unet on synthetic")
    ax, bar = figure.axes
    assert [t.get_text() for t in ax.get_xticklabels()] == names
    assert [t.get_text() for t in ax.get_yticklabels()] == names
    assert ax.get_xlabel() == "predicted class" and ax.get_ylabel() == "true class"
    assert "fraction" in bar.get_ylabel()  # the color scale, labelled
    cells = {(round(t.get_position()[1]), round(t.get_position()[0])): t.get_text()
             for t in ax.texts if not t.get_text().startswith("n=")}
    # row-normalized values with the counts under them (few classes); zero cells blank
    assert cells == {(0, 0): "0.90\n90", (0, 1): "0.10\n10", (1, 0): "0.25\n5",
                     (1, 1): "0.75\n15"}
    counts = [t.get_text() for t in ax.texts if t.get_text().startswith("n=")]
    assert counts == ["n=100", "n=20", "n=0"]
    # the row without pixels is masked (drawn gray), the others sum to 1
    shown = ax.images[0].get_array()
    assert shown.mask[2].all() and not shown.mask[:2].any()
    np.testing.assert_allclose(shown[:2].sum(axis=1), 1.0)
    assert figure.texts[0].get_text() == "unet on synthetic"
    _assert_texts_inside(figure)
    path = visualize.save_confusion_matrix(confusion, names, str(tmp_path / "cm.png"))
    assert _png_size(path) == _pixels(figure)


def test_confusion_figure_with_21_classes_stays_readable():
    rng = np.random.default_rng(1)
    confusion = rng.integers(0, 40, (21, 21)) + np.diag(rng.integers(1000, 9000, 21))
    confusion[3, 7] = 1  # a tiny fraction: "<.01", not "0.00"
    figure = visualize.confusion_figure(confusion, VOC)
    ax = figure.axes[0]
    assert [t.get_text() for t in ax.get_xticklabels()] == VOC  # full names, not cut
    _assert_texts_inside(figure)
    renderer = figure.canvas.get_renderer()
    rows = [t.get_window_extent(renderer) for t in ax.get_yticklabels()]
    for a, b in zip(rows, rows[1:], strict=False):
        assert not a.overlaps(b)
    cells = [t for t in ax.texts if not t.get_text().startswith("n=")]
    assert all("\n" not in t.get_text() for t in cells)  # no counts in small cells
    assert min(t.get_fontsize() for t in cells) >= 7
    assert any(t.get_text() == "<.01" for t in cells)
    # every cell text fits its cell
    cell_px = ax.get_window_extent(renderer).height / 21
    assert max(t.get_window_extent(renderer).width for t in cells) < cell_px
    shown = visualize.confusion_image(confusion, VOC)
    assert shown.dtype == np.uint8 and shown.shape[2] == 3 and shown.shape[0] >= 21 * 30


@pytest.mark.parametrize("k", [1, 2, 5, 12, 21, 40])
def test_confusion_cells_are_square_and_nothing_is_cut(k):
    names = [f"class number {i}" for i in range(k)]
    figure = visualize.confusion_figure(np.eye(k) * 50 + 1, names, title="a title")
    _assert_texts_inside(figure)
    ax = figure.axes[0]
    box = ax.get_window_extent(figure.canvas.get_renderer())
    columns = ax.get_xlim()[1] - ax.get_xlim()[0]  # the k cells and the counts column
    assert box.width / columns == pytest.approx(box.height / k, rel=0.1)


def test_confusion_figure_refuses_a_non_square_matrix():
    with pytest.raises(ValueError, match="must be square"):
        visualize.confusion_figure(np.zeros((2, 3)))


# -------------------------------------------------------------------- training curves


def _rows(count):
    return [{"epoch": e, "loss": 2.0 / (e + 1), "mean_iou": 0.1 * e,
             "val_loss": 2.5 / (e + 1), "val_mean_iou": [0.1, 0.4, 0.3, 0.35][e % 4],
             "lr": 0.01} for e in range(count)]


def _curves(figure):
    """{(panel title, line label): (x, y)} of the drawn curves."""
    out = {}
    for ax in figure.axes:
        for line in ax.get_lines():
            if not line.get_label().startswith("_"):
                out[(ax.get_title(), line.get_label())] = (list(line.get_xdata()),
                                                           list(line.get_ydata()))
    return out


def test_curves_figure_points_per_epoch_and_best_epoch():
    rows = _rows(4)
    figure = visualize.curves_figure(rows)
    curves = _curves(figure)
    assert set(curves) == {("loss", "training"), ("loss", "validation"),
                           ("mean IoU", "training"), ("mean IoU", "validation")}
    for x, _ in curves.values():
        assert x == [1, 2, 3, 4]  # one point per epoch, counted from 1
    assert curves[("mean IoU", "validation")][1] == [0.1, 0.4, 0.3, 0.35]
    assert curves[("loss", "training")][1] == pytest.approx([2.0, 1.0, 2 / 3, 0.5])
    assert [ax.get_xlabel() for ax in figure.axes] == ["epoch", "epoch"]
    labels = [t.get_text() for t in figure.legends[0].get_texts()]
    assert labels == ["training", "validation",
                      "best validation mean IoU 0.4000 (epoch 2)"]
    assert figure.texts[0].get_text() == "training curves, 4 epochs"
    _assert_texts_inside(figure)
    # the legend is below the panels, off the curves
    renderer = figure.canvas.get_renderer()
    top = figure.legends[0].get_window_extent(renderer).y1
    assert all(top <= ax.get_tightbbox(renderer).y0 + 1 for ax in figure.axes)


def test_training_curves_from_log_csv_atomically(tmp_path):
    rows = _rows(3)
    rows[1]["val_loss"] = ""  # an empty value is left out, not drawn as 0
    log = tmp_path / "log.csv"
    with open(log, "w", newline="") as f:
        writer = csv.DictWriter(f, fieldnames=list(rows[0]))
        writer.writeheader()
        writer.writerows(rows)
    curves = _curves(visualize.curves_figure(str(log)))
    assert curves[("loss", "validation")][0] == [1, 3]
    assert curves[("loss", "training")][0] == [1, 2, 3]
    path = visualize.training_curves(str(log), str(tmp_path / "curves.png"))
    assert _png_size(path) == (1000, 440)
    assert sorted(os.listdir(tmp_path)) == ["curves.png", "log.csv"]
    # a training run without validation split: training curves only, no best marker
    train_only = [{"epoch": 0, "loss": 1.0, "mean_iou": 0.2}]
    figure = visualize.curves_figure(train_only)
    assert set(_curves(figure)) == {("loss", "training"), ("mean IoU", "training")}
    assert len(figure.legends[0].get_texts()) == 2
    with pytest.raises(ValueError, match="no epoch"):
        visualize.curves_figure([])


# ------------------------------------------------------------------------------ files


def test_writes_are_atomic(tmp_path):
    target = tmp_path / "picture.png"
    visualize.save_png(np.zeros((4, 5, 3), np.uint8), str(target))
    before = target.read_bytes()

    def broken(tmp):
        with open(tmp, "wb") as f:
            f.write(b"half a pic")
        raise OSError("disk full")

    with pytest.raises(OSError, match="disk full"):
        visualize.write_atomic(str(target), broken)
    assert target.read_bytes() == before  # the old file is untouched
    assert os.listdir(tmp_path) == ["picture.png"]  # and the temporary removed
    with Image.open(target) as im:
        assert im.size == (5, 4)


def test_gray_and_float_images_are_drawn_as_rgb():
    gray = np.linspace(0, 1, 12, dtype=np.float32).reshape(3, 4)
    rgb = visualize.overlay(gray, np.zeros((3, 4), int), default_palette(2), alpha=0.0)
    assert rgb.shape == (3, 4, 3) and rgb.dtype == np.uint8
    np.testing.assert_array_equal(rgb[..., 0], rgb[..., 2])
    assert rgb[0, 0, 0] == 0 and rgb[-1, -1, 0] == 255
    assert math.isclose(visualize.DPI, 100)

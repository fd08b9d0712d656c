"""Speed (and effect) of ``keras_seg.inference.dense_crf`` on a VOC-sized input.

DeepLab v1's setting: a 500x375 RGB image, 21 classes, 10 mean-field iterations,
w1 = 4, theta_alpha = 49, theta_beta = 5, w2 = 3, theta_gamma = 3. Inputs:

* ``scene``: a deterministic synthetic photograph-like image (a colour gradient
  with low-frequency colour variation, five striped objects, pixel noise of 6
  levels) with "network-like" probabilities: one-hot logits of the true labels
  (confidence 6) average-pooled by 8 (a stride-8 network's blurred boundaries),
  upsampled bilinearly, plus smooth noise on all 21 classes, softmax.
* ``scene, random``: the same image with i.i.d. Dirichlet(0.5) probabilities over
  the 21 classes (nothing for the CRF to agree with; timing only).
* ``--image PATH``: a photograph of yours, resized to 500x375, with probabilities
  built as for ``scene`` from a 6-colour quantisation of it (timing only).

It prints, for each input, the best of ``--repeats`` runs of the whole call
(input checks, lattice construction and the iterations), in wall-clock and CPU
(process) time, the same for ``iterations=0`` (everything but the iterations), and
for ``scene`` the pixel accuracy and mean IoU before and after the CRF. CPU time is
the better figure on a shared machine: wall time there includes waiting for a core.
``--write`` also writes the table to ``benchmarks/dense_crf.md`` (``--append``
adds it after what is there, e.g. for a run with ``OPENBLAS_NUM_THREADS=1``).

Run:  python benchmarks/dense_crf.py [--image photo.jpg] [--repeats 5] [--write]
(numpy and scipy only; the Keras backend does not matter).
"""


import argparse
import os
import platform
import time

import numpy as np
import scipy
import scipy.ndimage

from keras_seg.inference.crf import dense_crf

HEIGHT, WIDTH, CLASSES = 375, 500, 21


def synthetic_scene(seed=0):
    """A textured 375x500 RGB image and its label map (5 object classes + background)."""
    rng = np.random.default_rng(seed)
    rows, cols = np.mgrid[0:HEIGHT, 0:WIDTH].astype(np.float64)
    image = np.empty((HEIGHT, WIDTH, 3))
    image[..., 0] = 90 + 80 * rows / HEIGHT
    image[..., 1] = 140 - 30 * rows / HEIGHT
    image[..., 2] = 200 - 120 * rows / HEIGHT
    image += 25 * scipy.ndimage.gaussian_filter(rng.normal(size=(HEIGHT, WIDTH, 3)), (12, 12, 0))
    labels = np.zeros((HEIGHT, WIDTH), dtype=np.int64)
    objects = [  # (class, colour, kind, centre row, centre col, half height, half width)
        (15, (200, 150, 120), "ellipse", 200, 120, 110, 55),
        (7, (30, 60, 170), "rectangle", 290, 330, 50, 120),
        (12, (120, 80, 40), "ellipse", 250, 440, 70, 45),
        (5, (40, 160, 60), "triangle", 110, 330, 80, 70),
        (9, (220, 220, 60), "rectangle", 70, 90, 35, 60),
    ]
    for label, colour, kind, row, col, half_h, half_w in objects:
        dy, dx = (rows - row) / half_h, (cols - col) / half_w
        if kind == "ellipse":
            mask = dy**2 + dx**2 <= 1
        elif kind == "rectangle":
            mask = (np.abs(dy) <= 1) & (np.abs(dx) <= 1)
        else:
            mask = (dy <= 1) & (np.abs(dx) <= (dy + 1) / 2)
        stripes = 18 * np.sin((rows + 0.6 * cols) / 4.0)[..., None]
        image[mask] = (np.asarray(colour, np.float64) + stripes)[mask]
        labels[mask] = label
    image += rng.normal(scale=6.0, size=image.shape)
    return np.clip(image, 0, 255).astype(np.uint8), labels


def network_like_probabilities(labels, seed=0, stride=8, confidence=6.0, noise=1.5):
    """Softmax of blurred one-hot logits (stride-8 pooling, bilinear upsampling) + noise."""
    rng = np.random.default_rng(seed)
    height, width = labels.shape
    onehot = np.eye(CLASSES)[labels] * confidence
    pooled = scipy.ndimage.uniform_filter(onehot, (stride, stride, 1), mode="nearest")
    pooled = pooled[stride // 2::stride, stride // 2::stride]
    zoom = (height / pooled.shape[0], width / pooled.shape[1], 1)
    logits = scipy.ndimage.zoom(pooled, zoom, order=1, grid_mode=True, mode="nearest")
    field = scipy.ndimage.gaussian_filter(rng.normal(size=(height, width, CLASSES)), (8, 8, 0))
    logits = logits + noise * field / field.std()
    logits -= logits.max(axis=-1, keepdims=True)
    probabilities = np.exp(logits)
    return (probabilities / probabilities.sum(axis=-1, keepdims=True)).astype(np.float32)


def quantised_labels(image, colours=6):
    """Labels of a photograph from a PIL median-cut quantisation (for --image)."""
    from PIL import Image

    quantised = Image.fromarray(image).quantize(colors=colours)
    return np.asarray(quantised, dtype=np.int64)


def mean_iou(predicted, labels):
    ious = []
    for c in np.union1d(np.unique(predicted), np.unique(labels)):
        union = np.sum((predicted == c) | (labels == c))
        ious.append(np.sum((predicted == c) & (labels == c)) / union)
    return float(np.mean(ious))


def best_time(repeats, function, *args, **kwargs):
    """Best (wall, cpu) seconds of ``repeats`` calls, and the last result."""
    best_wall = best_cpu = float("inf")
    for _ in range(repeats):
        wall, cpu = time.perf_counter(), time.process_time()
        result = function(*args, **kwargs)
        best_wall = min(best_wall, time.perf_counter() - wall)
        best_cpu = min(best_cpu, time.process_time() - cpu)
    return best_wall, best_cpu, result


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--image", help="a photograph to time on (resized to 500x375)")
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--write", action="store_true", help="write benchmarks/dense_crf.md")
    parser.add_argument("--append", action="store_true", help="append to it instead")
    args = parser.parse_args()

    image, labels = synthetic_scene()
    rng = np.random.default_rng(1)
    inputs = [
        ("scene", image, network_like_probabilities(labels), labels),
        ("scene, random", image,
         rng.dirichlet(np.full(CLASSES, 0.5), (HEIGHT, WIDTH)).astype(np.float32), None),
    ]
    if args.image:
        from PIL import Image

        photo = Image.open(args.image).convert("RGB").resize((WIDTH, HEIGHT), Image.BILINEAR)
        photo = np.asarray(photo)
        name = f"photo {os.path.basename(args.image)}"
        inputs.append((name, photo, network_like_probabilities(quantised_labels(photo)), None))

    load_before = os.getloadavg()
    rows = []
    for name, picture, probabilities, truth in inputs:
        wall, cpu, refined = best_time(args.repeats, dense_crf, picture, probabilities)
        wall0, cpu0, _ = best_time(
            args.repeats, dense_crf, picture, probabilities, iterations=0
        )
        quality = ""
        if truth is not None:
            before, after = probabilities.argmax(-1), refined.argmax(-1)
            quality = (
                f"{np.mean(before == truth):.3f} -> {np.mean(after == truth):.3f}, "
                f"{mean_iou(before, truth):.3f} -> {mean_iou(after, truth):.3f}"
            )
        rows.append((name, wall, cpu, wall0, cpu0, quality))
        print(f"{name}: {wall:.3f} s wall, {cpu:.3f} s CPU ({wall0:.3f} / {cpu0:.3f} s "
              f"without iterations) {quality}", flush=True)
    load_after = os.getloadavg()

    lines = [
        "# DenseCRF speed",
        "",
        "`python benchmarks/dense_crf.py --write` (see its docstring for the inputs).",
        f"500x375 image, {CLASSES} classes, 10 mean-field iterations, DeepLab v1 parameters "
        "(w1 = 4, theta_alpha = 49, theta_beta = 5, w2 = 3, theta_gamma = 3), best of "
        f"{args.repeats} runs.",
        "",
        f"Machine: {platform.machine()}, {os.cpu_count()} cores, Python "
        f"{platform.python_version()}, numpy {np.__version__}, scipy {scipy.__version__}; "
        f"load average (1 min) {load_before[0]:.1f} before, {load_after[0]:.1f} after; "
        f"OPENBLAS_NUM_THREADS={os.environ.get('OPENBLAS_NUM_THREADS', 'unset')}.",
        "",
        "| input | total wall (s) | total CPU (s) | without iterations: wall / CPU (s) "
        "| pixel accuracy, mIoU: unary -> CRF |",
        "|---|---|---|---|---|",
    ]
    for name, wall, cpu, wall0, cpu0, quality in rows:
        lines.append(f"| {name} | {wall:.3f} | {cpu:.3f} | {wall0:.3f} / {cpu0:.3f} | "
                     f"{quality or '-'} |")
    table = "\n".join(lines) + "\n"
    print()
    print(table)
    if args.write or args.append:
        path = os.path.join(os.path.dirname(os.path.abspath(__file__)), "dense_crf.md")
        with open(path, "a" if args.append else "w") as handle:
            if args.append:
                handle.write("\n")
            handle.write(table)
        print(f"written to {path}")


if __name__ == "__main__":
    main()

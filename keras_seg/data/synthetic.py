"""The built-in synthetic dataset: shapes on cluttered backgrounds, told apart by shape only.

:class:`SyntheticShapes` draws each example procedurally with numpy from a random
generator seeded by ``(seed, split, index)``: nothing is downloaded or stored, any index
is generated on demand in O(1), the same arguments always give the same arrays, and the
train / val / test splits come from disjoint random streams.
"""

import functools

import numpy as np

from keras_seg.data.base import SegmentationDataset, default_palette

SHAPES = ("disc", "square", "triangle", "ring", "cross", "star", "bar")
DEFAULT_SHAPES = ("disc", "square", "triangle", "ring", "cross", "star")
SPLITS = {"train": 0, "val": 1, "test": 2}
DEFAULT_NUM_IMAGES = {"train": 512, "val": 128, "test": 128}

_TAU = 2.0 * np.pi
# outward normals of an equilateral triangle (one vertex pointing along -v, "up")
_TRIANGLE_NORMALS = np.array([[np.cos(a), np.sin(a)] for a in
                              (np.pi / 2, np.pi / 2 + _TAU / 3, np.pi / 2 + 2 * _TAU / 3)])
_STAR_POINTS = 5
_STAR_HALF_SECTOR = np.pi / _STAR_POINTS
_MIN_SIZE = 3.0  # pixels: no object is drawn smaller (no shape is left below)
_NOISE_SEED = 20150518  # the pixel-noise table is the same for every dataset


class SyntheticShapes(SegmentationDataset):
    """Procedural shapes dataset: foreground classes that only shape tells apart.

    Each image has a cluttered background (class 0): a random base texture, irregular
    blobs (thresholded smooth noise) and straight lines, none of them a class shape.
    On it ``min_objects .. max_objects`` objects are painted in random order, so later
    objects occlude earlier ones and the mask follows. By default the six classes are
    ``disc``, ``square``, ``triangle``, ``ring`` (annulus), ``cross`` (plus sign) and
    ``star`` (five points); ``shapes`` picks others from :data:`SHAPES` (which adds
    ``bar``, a rectangle 3.3 to 5.6 times as long as wide). Each object has a random
    class, position (partly outside the frame allowed), rotation and size (its bounding
    diameter, ``low + (high - low) * sqrt(u)`` for ``u`` uniform in [0, 1) and
    ``(low, high)`` = ``object_size`` times the shorter image side: a density rising
    linearly with the size, so that large objects, which carry most pixels, are not
    rare). Then pixel noise (uniform, of a random standard deviation) is added.

    Color carries no class information: every object, whatever its class, and the
    background draw their look from one distribution, a "material" made of two
    uniformly random RGB colors mixed by a random texture (flat, linear gradient,
    sinusoidal stripes, checkerboard or speckle). The only class-independent condition
    is contrast: an object's mean color is redrawn (up to a few times) while it lies
    within ``min_contrast`` (RGB distance) of the mean of the pixels it covers, so that
    objects stay visible. The classes differ only in outline and structure (a ring
    has a hole, a cross has arms, a star has points): a per-pixel color classifier is
    at chance on them, and a model must use shape and context.

    No pixel is ignored by default (``ignore_border=0``): every pixel has a true label,
    so the mIoU counts all of them. ``ignore_border=k`` marks the pixels within ``k``
    pixels (chessboard distance) of a boundary between two classes with
    ``ignore_index`` (255), like the void band around objects in Pascal VOC.

    Example ``i`` of a split is generated on demand from ``numpy.random.default_rng(
    [seed, split_id, i])`` (split ids: train 0, val 1, test 2), in well under 2 ms
    for a 96x96 image.

    Args:
        split: ``"train"``, ``"val"`` or ``"test"``.
        num_images: number of examples (``len``); default 512 for train, 128 for val
            and test. Any number is allowed: examples are generated, not stored.
        image_size: ``(height, width)`` of the images, each at least 16.
        seed: base seed; the same seed gives the same dataset.
        min_objects: least number of objects painted per image (>= 1).
        max_objects: largest number of objects painted per image.
        object_size: ``(low, high)`` range of the object's bounding diameter as a
            fraction of the shorter image side (default ``(1/16, 1/2)``), drawn with
            a density rising linearly from low to high; never less than 3 pixels.
        noise: largest standard deviation of the pixel noise (uint8 units);
            each image draws its own in ``[0, noise]``.
        min_contrast: least RGB distance between an object's mean color and the mean
            of what it covers (0 disables the check).
        clutter: amount of background clutter: up to ``round(2 * clutter)`` blobs and
            ``round(3 * clutter)`` straight lines per image (0: none).
        texture: largest strength in [0, 1] of the texture of each material (0: flat
            colors only).
        shapes: the foreground classes, in label order (class ``k + 1`` is
            ``shapes[k]``): distinct names from :data:`SHAPES`.
        ignore_border: width in pixels of the ignore band at class boundaries (0: none).

    Items:
        ``ds[i]`` returns ``(image, mask)``: ``uint8 (H, W, 3)`` and ``uint8 (H, W)``
        with values in ``[0, num_classes)`` (and 255 in the ignore band if enabled). Negative
        indices count from the end.

    Attributes:
        num_classes: ``1 + len(shapes)`` (7 by default).
        class_names: ``["background", *shapes]``.
        ignore_index: 255.
        palette: :func:`keras_seg.data.default_palette` of the classes.
    """

    def __init__(self, split="train", num_images=None, image_size=(96, 96), seed=0,
                 min_objects=4, max_objects=8, object_size=(1 / 16, 1 / 2), noise=10.0,
                 min_contrast=60.0, clutter=1.0, texture=0.7, shapes=DEFAULT_SHAPES,
                 ignore_border=0):
        if split not in SPLITS:
            raise ValueError(f"SyntheticShapes: split must be one of {sorted(SPLITS)}, "
                             f"got {split!r}.")
        if num_images is None:
            num_images = DEFAULT_NUM_IMAGES[split]
        if not _is_int(num_images) or num_images < 1:
            raise ValueError(f"SyntheticShapes: num_images must be a positive int, "
                             f"got {num_images!r}.")
        try:
            height, width = (int(s) for s in image_size)
        except (TypeError, ValueError):
            raise ValueError(f"SyntheticShapes: image_size must be (height, width), "
                             f"got {image_size!r}.") from None
        if height < 16 or width < 16:
            raise ValueError(f"SyntheticShapes: image_size must be at least 16x16 so that "
                             f"shapes stay recognizable, got {image_size!r}.")
        if not _is_int(seed) or seed < 0:
            raise ValueError(f"SyntheticShapes: seed must be a non-negative int, got {seed!r}.")
        if not (_is_int(min_objects) and _is_int(max_objects)
                and 1 <= min_objects <= max_objects):
            raise ValueError(f"SyntheticShapes: need ints 1 <= min_objects <= max_objects, "
                             f"got {min_objects!r} and {max_objects!r}.")
        try:
            low, high = (float(s) for s in object_size)
        except (TypeError, ValueError):
            raise ValueError(f"SyntheticShapes: object_size must be a (low, high) pair of "
                             f"fractions of the image side, got {object_size!r}.") from None
        if not 0 < low <= high <= 1:
            raise ValueError(f"SyntheticShapes: object_size must satisfy 0 < low <= high <= 1, "
                             f"got {object_size!r}.")
        for arg, value in (("noise", noise), ("min_contrast", min_contrast),
                           ("clutter", clutter)):
            if not isinstance(value, (int, float, np.number)) or not value >= 0:
                raise ValueError(f"SyntheticShapes: {arg} must be a number >= 0, got {value!r}.")
        if not isinstance(texture, (int, float, np.number)) or not 0 <= texture <= 1:
            raise ValueError(f"SyntheticShapes: texture must be a number in [0, 1], "
                             f"got {texture!r}.")
        if not _is_int(ignore_border) or ignore_border < 0:
            raise ValueError(f"SyntheticShapes: ignore_border must be an int >= 0 (pixels), "
                             f"got {ignore_border!r}.")
        self.split = split
        self.num_images = int(num_images)
        self.image_size = (height, width)
        self.seed = int(seed)
        self.min_objects = int(min_objects)
        self.max_objects = int(max_objects)
        self.object_size = (low, high)
        self.noise = float(noise)
        self.min_contrast = float(min_contrast)
        self.clutter = float(clutter)
        self.texture = float(texture)
        self._max_blobs = int(round(2 * self.clutter))
        self._max_lines = int(round(3 * self.clutter))
        # uniform noise of unit standard deviation; each image adds a random crop of it
        self._noise_table = np.random.default_rng(_NOISE_SEED).random(
            (height + 32, width + 32, 3), dtype=np.float32)
        self._noise_table -= 0.5
        self._noise_table *= np.float32(np.sqrt(12.0))
        self.ignore_border = int(ignore_border)
        if isinstance(shapes, str) or not shapes or any(s not in SHAPES for s in shapes) \
                or len(set(shapes)) != len(shapes):
            raise ValueError(f"SyntheticShapes: shapes must be a non-empty sequence of distinct "
                             f"names from {SHAPES}, got {shapes!r}.")
        self.shapes = tuple(shapes)
        self._draw = [_SHAPE_FUNCTIONS[name] for name in self.shapes]
        self.num_classes = 1 + len(self.shapes)
        self.class_names = ["background", *self.shapes]
        self.palette = default_palette(self.num_classes)
        self._yy = np.arange(height, dtype=np.float32)[:, None]
        self._xx = np.arange(width, dtype=np.float32)[None, :]

    def __len__(self):
        return self.num_images

    def __getitem__(self, index):
        image, mask, _ = self._generate(self._rng(index))
        return image, mask

    def objects(self, index):
        """The objects painted in example ``index``, in painting order (later on top).

        Returns a list of dicts: ``class_id`` (int), ``class_name``, ``center``
        (``(y, x)`` in pixels, may lie outside the image), ``size`` (bounding diameter in
        pixels), ``angle`` (radians), ``pixels`` (the pixels the shape covers inside the
        image) and ``visible_pixels`` (those left after occlusion by later objects).
        Objects entirely outside the frame are omitted.
        """
        return self._generate(self._rng(index), record=True)[2]

    def describe(self, index):
        return f"SyntheticShapes(split={self.split!r}, seed={self.seed})[{index}]"

    def arrays(self, start=0, stop=None):
        """Examples ``start .. stop - 1`` stacked: ``uint8 (N, H, W, 3)`` and ``(N, H, W)``."""
        stop = self.num_images if stop is None else stop
        if not (_is_int(start) and _is_int(stop) and 0 <= start < stop <= self.num_images):
            raise ValueError(f"SyntheticShapes.arrays: need ints 0 <= start < stop <= "
                             f"{self.num_images}, got start={start!r}, stop={stop!r}.")
        height, width = self.image_size
        images = np.empty((stop - start, height, width, 3), dtype=np.uint8)
        masks = np.empty((stop - start, height, width), dtype=np.uint8)
        for k, i in enumerate(range(start, stop)):
            images[k], masks[k] = self[i]
        return images, masks

    # === generation ===

    def _rng(self, index):
        if not _is_int(index):
            raise TypeError(f"SyntheticShapes indices must be ints, got {type(index).__name__}.")
        if index < 0:
            index += self.num_images
        if not 0 <= index < self.num_images:
            raise IndexError(f"SyntheticShapes({self.split!r}) index {index} out of range "
                             f"[0, {self.num_images}).")
        return np.random.default_rng([self.seed, SPLITS[self.split], int(index)])

    def _generate(self, rng, record=False):
        height, width = self.image_size
        yy, xx = self._yy, self._xx
        num_objects = int(rng.integers(self.min_objects, self.max_objects + 1))
        num_blobs = int(rng.integers(0, self._max_blobs + 1))
        num_lines = int(rng.integers(0, self._max_lines + 1))
        # one draw for all the uniform parameters: materials (background, blobs, objects),
        # objects (class, size, center y, x, angle, shape parameter), lines, noise
        materials = rng.random((1 + num_blobs + num_objects, _MATERIAL_PARAMS))
        shapes = rng.random((num_objects, 6))
        lines = rng.random((num_lines, 6))
        noise_sigma, noise_y, noise_x = rng.random(3)

        image = _material(materials[0], yy, xx, self.texture, rng)
        for k in range(num_blobs):  # irregular blobs: thresholded smooth noise
            field = _smooth_noise(rng, (height, width))
            lo, hi = field.min(), field.max()
            level = lo + (hi - lo) * (0.55 + 0.25 * materials[1 + k, -1])
            by, bx = np.nonzero(field > level)
            image[by, bx] = _material(materials[1 + k], by.astype(np.float32),
                                      bx.astype(np.float32), self.texture, rng)
        for angle, offset, half_width, *color in lines:  # straight lines across the image
            angle *= np.pi
            distance = ((xx - width / 2) * np.float32(np.cos(angle))
                        + (yy - height / 2) * np.float32(np.sin(angle)))
            offset = (offset - 0.5) * (height + width) / 2
            line = np.abs(distance - np.float32(offset)) <= 0.5 + 1.5 * half_width
            image[line] = 255 * np.asarray(color, dtype=np.float32)

        mask = np.zeros((height, width), dtype=np.uint8)
        owner = np.full((height, width), -1, dtype=np.int16) if record else None
        objects = []
        side = min(height, width)
        low, high = (max(f * side, _MIN_SIZE) for f in self.object_size)
        fg_classes = self.num_classes - 1
        for k, (c, size, cy, cx, angle, param) in enumerate(shapes):
            cls = 1 + min(int(c * fg_classes), fg_classes - 1)
            size = low + (high - low) * np.sqrt(size)  # density rising with the size
            cy, cx, angle = cy * height, cx * width, angle * _TAU
            half = 0.55 * size + 1.0  # the cross's arm corners reach 1.08 r
            y0, y1 = max(0, int(cy - half)), min(height, int(np.ceil(cy + half)) + 1)
            x0, x1 = max(0, int(cx - half)), min(width, int(np.ceil(cx + half)) + 1)
            dy, dx = yy[y0:y1] - np.float32(cy - 0.5), xx[:, x0:x1] - np.float32(cx - 0.5)
            cos, sin = np.float32(np.cos(angle)), np.float32(np.sin(angle))
            inside = self._draw[cls - 1](cos * dx + sin * dy, cos * dy - sin * dx, 0.5 * size,
                                         param)
            iy, ix = np.nonzero(inside)
            if not iy.size:
                continue
            iy += y0
            ix += x0
            texture = _material(materials[1 + num_blobs + k], iy.astype(np.float32),
                                ix.astype(np.float32), self.texture, rng)
            if self.min_contrast > 0:
                covered = image[iy, ix].sum(axis=0) / np.float32(iy.size)
                for _ in range(8):
                    mean = texture.sum(axis=0) / np.float32(iy.size)
                    if np.linalg.norm(mean - covered) >= self.min_contrast:
                        break
                    texture += 255 * rng.random(3, dtype=np.float32) - mean
            image[iy, ix] = texture
            mask[iy, ix] = cls
            if record:
                owner[iy, ix] = len(objects)
                objects.append({"class_id": cls, "class_name": self.class_names[cls],
                                "center": (float(cy), float(cx)), "size": float(size),
                                "angle": float(angle), "pixels": int(iy.size)})

        if self.noise > 0:  # uniform noise of standard deviation sigma, from a fixed table
            y0 = int(noise_y * (self._noise_table.shape[0] - height + 1))
            x0 = int(noise_x * (self._noise_table.shape[1] - width + 1))
            image += np.float32(noise_sigma * self.noise) * \
                self._noise_table[y0:y0 + height, x0:x0 + width]
        image = np.clip(image + 0.5, 0, 255).astype(np.uint8)
        if self.ignore_border:
            mask[_boundary_band(mask, self.ignore_border)] = self.ignore_index
        if record:
            visible = np.bincount(owner[owner >= 0], minlength=len(objects))
            for obj, count in zip(objects, visible, strict=True):
                obj["visible_pixels"] = int(count)
        return image, mask, objects


# === materials and clutter ===

_MATERIAL_PARAMS = 11


def _material(q, yy, xx, max_strength, rng):
    """A random textured surface at pixel coordinates ``yy``, ``xx`` (broadcastable arrays).

    ``q``: 11 uniform numbers in [0, 1) that pick it: two RGB colors ``c1``, ``c2``, a
    texture ``t`` in [0, 1] (flat, a linear gradient, stripes, a checkerboard or speckle,
    each a fifth of the time) with its angle and scale, and a strength in
    ``[0, max_strength]``; the color is ``c1 + strength * t * (c2 - c1)``. ``rng`` draws
    the speckle. Returns float32 ``(*shape, 3)``, ``shape`` the broadcast shape of ``yy``
    and ``xx``.
    """
    c1 = (255 * q[0:3]).astype(np.float32)
    c2 = (255 * q[3:6]).astype(np.float32)
    strength = np.float32(max_strength * q[6])
    kind = min(int(5 * q[7]), 4)
    shape = np.broadcast_shapes(yy.shape, xx.shape)
    if kind == 0 or strength == 0:
        flat = np.empty((*shape, 3), dtype=np.float32)
        flat[...] = c1
        return flat
    angle = _TAU * q[8]
    cos, sin = np.float32(np.cos(angle)), np.float32(np.sin(angle))
    proj = cos * xx + sin * yy
    if kind == 1:  # linear gradient across the region
        lo, hi = float(proj.min()), float(proj.max())
        t = (proj - np.float32(lo)) * np.float32(1.0 / max(hi - lo, 1.0))
    elif kind == 2:  # sinusoidal stripes, period 3 to 12 px
        t = 0.5 + 0.5 * np.sin(proj * np.float32(_TAU / (3 + 9 * q[9]))
                               + np.float32(_TAU * q[10]))
    elif kind == 3:  # checkerboard, cells 3 to 10 px
        inv_period = np.float32(1.0 / (3 + 7 * q[9]))
        perp = cos * yy - sin * xx
        t = (np.floor(proj * inv_period) + np.floor(perp * inv_period)) % 2
    else:  # speckle
        t = rng.random(shape, dtype=np.float32)
    t = np.broadcast_to(t, shape)
    return c1 + (strength * t)[..., None] * (c2 - c1)


def _smooth_noise(rng, size):
    """Bilinear upsampling of a random 3x3 to 6x6 grid to ``size``: a smooth field (h, w)."""
    grid = int(rng.integers(3, 7))
    coarse = rng.random((grid, grid), dtype=np.float32)
    (i0, fy), (j0, fx) = _interp_weights(grid, size[0]), _interp_weights(grid, size[1])
    rows = coarse[i0] + fy[:, None] * (coarse[i0 + 1] - coarse[i0])
    return rows[:, j0] + fx[None, :] * (rows[:, j0 + 1] - rows[:, j0])


@functools.lru_cache(maxsize=64)
def _interp_weights(n_in, n_out):
    """Left neighbours and weights of a linear interpolation from n_in to n_out points."""
    pos = np.linspace(0, n_in - 1, n_out, dtype=np.float32)
    i0 = np.minimum(pos.astype(np.int64), n_in - 2)
    return i0, pos - i0


def _boundary_band(mask, width):
    """Pixels within ``width`` (chessboard distance) of a pixel with another label."""
    band = np.zeros(mask.shape, dtype=bool)
    padded = np.pad(mask, width, mode="edge")
    h, w = mask.shape
    for dy in range(-width, width + 1):
        for dx in range(-width, width + 1):
            if dy or dx:
                band |= padded[width + dy:width + dy + h, width + dx:width + dx + w] != mask
    return band


# === shapes: boolean masks from rotated local coordinates u, v (pixels), the radius of the
# bounding circle and a shape parameter `param` in [0, 1) ===

def _ring_inner_radius(radius, param):
    """Hole radius of a ring: 0.45 to 0.65 of its radius, leaving at least 1.5 px of ring."""
    return min(radius * (0.45 + 0.2 * param), radius - 1.5)


def _cross_half_arm(radius, param):
    """Half the arm width of a cross: 0.28 to 0.4 of its radius (the arm half-length)."""
    return radius * (0.28 + 0.12 * param)


def _star_inner_radius(radius, param):
    """Radius of a star's inner vertices: 0.38 to 0.5 of its outer radius."""
    return radius * (0.38 + 0.12 * param)


def _disc(u, v, radius, param):
    return u * u + v * v <= radius * radius


def _square(u, v, radius, param):
    half = radius / np.sqrt(2.0)  # corners on the bounding circle
    return np.maximum(np.abs(u), np.abs(v)) <= half


def _triangle(u, v, radius, param):
    # equilateral, centered on its centroid, vertices on the bounding circle (apothem r/2)
    inside = np.ones(np.broadcast_shapes(u.shape, v.shape), dtype=bool)
    for nx, ny in _TRIANGLE_NORMALS:
        inside &= nx * u + ny * v <= 0.5 * radius
    return inside


def _ring(u, v, radius, param):
    r2 = u * u + v * v
    inner = _ring_inner_radius(radius, param)
    return (r2 <= radius * radius) & (r2 >= inner * inner)


def _cross(u, v, radius, param):
    arm = _cross_half_arm(radius, param)
    au, av = np.abs(u), np.abs(v)
    return ((au <= arm) & (av <= radius)) | ((av <= arm) & (au <= radius))


def _star(u, v, radius, param):
    inner = _star_inner_radius(radius, param)
    rho = np.sqrt(u * u + v * v)
    beta = np.abs(np.mod(np.arctan2(v, u), 2 * _STAR_HALF_SECTOR) - _STAR_HALF_SECTOR)
    beta = _STAR_HALF_SECTOR - beta  # angle from the nearest point (tip at 0)
    # inside when on the origin's side of the edge from the tip (radius, 0) to the
    # inner vertex at angle pi/5 and distance `inner`
    px, py = rho * np.cos(beta), rho * np.sin(beta)
    ex, ey = inner * np.cos(_STAR_HALF_SECTOR) - radius, inner * np.sin(_STAR_HALF_SECTOR)
    return ex * py - ey * (px - radius) >= 0


def _bar_half_width(radius, param):
    """Half the width of a bar: 0.18 to 0.3 of its half-length."""
    return radius * (0.18 + 0.12 * param)


def _bar(u, v, radius, param):
    return (np.abs(u) <= radius) & (np.abs(v) <= _bar_half_width(radius, param))


_SHAPE_FUNCTIONS = {"disc": _disc, "square": _square, "triangle": _triangle, "ring": _ring,
                    "cross": _cross, "star": _star, "bar": _bar}


def _is_int(x):
    return isinstance(x, (int, np.integer)) and not isinstance(x, bool)

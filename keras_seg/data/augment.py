"""Joint, mask-safe data augmentation for semantic segmentation.

Every transform is a callable ``(image, mask, rng) -> (image, mask)``:

* ``image``: ``uint8`` array ``(H, W, 3)``; ``mask``: integer array ``(H, W)``;
* ``rng``: a ``numpy.random.Generator`` (or an int seed): all randomness comes from it, so a
  transform is deterministic given the generator's state;
* geometric transforms move image and mask together; the **mask is always resampled with
  nearest neighbour**, keeps its dtype and never gains a value that was not in it, except
  ``ignore_index`` (255) where a transform pads (crop, rotation): padding is never a class.
  Images are padded with ``image_fill`` (0, a color, or ``"mean"``: the image's mean color).

Why numpy/scipy rather than ``keras.layers`` preprocessing: Keras' ``RandomRotation`` /
``RandomZoom`` / ``RandomCrop`` accept ``{"images", "segmentation_masks"}`` and resample
masks with nearest neighbour, but they fill the mask's out-of-image area with the image's
``fill_value`` (a class, not the ignore index), draw their randomness from backend seed
generators rather than a per-sample generator (so a shuffled, multi-worker pipeline would
not be reproducible), and have no elastic deformation. The transforms here run on numpy
arrays inside the input pipeline, on any backend. (For augmentation on the accelerator,
``keras.layers.RandomFlip`` is mask-safe as is and may be put in front of a model.)

:class:`Augment` assembles the usual recipes (defaults: DeepLab / PSPNet's random mirror
and random scale in [0.5, 2.0]); :class:`Compose` chains any transforms.
"""

import numpy as np
from PIL import Image
from scipy import ndimage

__all__ = [
    "Augment",
    "ColorJitter",
    "Compose",
    "ElasticDeformation",
    "RandomCrop",
    "RandomHorizontalFlip",
    "RandomRotation",
    "RandomScale",
    "check_pair",
]


def _rng(rng):
    if isinstance(rng, np.random.Generator):
        return rng
    return np.random.default_rng(rng)


def check_pair(image, mask, where="augmentation"):
    """Check an ``(image, mask)`` pair and return them as arrays.

    Args:
        image: ``uint8`` array-like ``(H, W, 3)``.
        mask: integer array-like ``(H, W)``.
        where: name used in the error message.

    Returns:
        ``(image, mask)`` as numpy arrays.

    Raises:
        ValueError: wrong rank, dtype or mismatched sizes.
    """
    image = np.asarray(image)
    mask = np.asarray(mask)
    if image.ndim != 3 or image.shape[-1] != 3 or image.dtype != np.uint8:
        raise ValueError(
            f"{where}: image must be a uint8 array (H, W, 3), got {image.dtype} {image.shape}. "
            "Datasets return uint8 RGB images; convert with np.asarray(img, np.uint8)."
        )
    if mask.ndim != 2 or not np.issubdtype(mask.dtype, np.integer):
        raise ValueError(
            f"{where}: mask must be an integer array (H, W), got {mask.dtype} {mask.shape}."
        )
    if mask.shape != image.shape[:2]:
        raise ValueError(
            f"{where}: mask size {mask.shape} differs from image size {image.shape[:2]}."
        )
    return image, mask


def _fill_color(image, image_fill):
    """The padding color of ``image`` as a float array ``(3,)``."""
    if isinstance(image_fill, str):
        if image_fill != "mean":
            raise ValueError(f"image_fill must be a number, an RGB triple or 'mean', got "
                             f"{image_fill!r}.")
        return image.reshape(-1, 3).mean(axis=0)
    return np.broadcast_to(np.asarray(image_fill, dtype=np.float64), (3,)).copy()


def resize_nearest(mask, size):
    """Resize an integer mask ``(H, W)`` to ``size = (h, w)`` by nearest neighbour.

    Pixel centres are aligned (``half_pixel_centers``); the output takes only values of the
    input and keeps its dtype.
    """
    h, w = mask.shape
    new_h, new_w = size
    rows = np.minimum(((np.arange(new_h) + 0.5) * h / new_h).astype(np.int64), h - 1)
    cols = np.minimum(((np.arange(new_w) + 0.5) * w / new_w).astype(np.int64), w - 1)
    return mask[rows[:, None], cols[None, :]]


def resize_image(image, size):
    """Resize a ``uint8`` image ``(H, W, 3)`` to ``size = (h, w)`` with bilinear filtering."""
    new_h, new_w = size
    return np.asarray(Image.fromarray(image).resize((new_w, new_h), Image.BILINEAR))


class RandomHorizontalFlip:
    """Mirror image and mask left-right with probability ``p``.

    Args:
        p: probability of flipping.
    """

    def __init__(self, p=0.5):
        if not 0.0 <= p <= 1.0:
            raise ValueError(f"RandomHorizontalFlip: p must be in [0, 1], got {p}.")
        self.p = float(p)

    def __call__(self, image, mask, rng=None):
        image, mask = check_pair(image, mask, "RandomHorizontalFlip")
        if _rng(rng).random() < self.p:
            return image[:, ::-1].copy(), mask[:, ::-1].copy()
        return image, mask

    def __repr__(self):
        return f"RandomHorizontalFlip(p={self.p})"


class RandomScale:
    """Resize image and mask by a random factor (DeepLab, PSPNet: 0.5 to 2.0).

    The factor is drawn uniformly from ``scale_range``; the image is resized bilinearly, the
    mask by nearest neighbour. The output size is ``round(H * s), round(W * s)`` (at least 1).

    Args:
        scale_range: ``(min, max)`` factors, ``0 < min <= max``.
    """

    def __init__(self, scale_range=(0.5, 2.0)):
        low, high = (float(v) for v in scale_range)
        if not 0 < low <= high:
            raise ValueError(f"RandomScale: need 0 < min <= max, got {scale_range}.")
        self.scale_range = (low, high)

    def __call__(self, image, mask, rng=None):
        image, mask = check_pair(image, mask, "RandomScale")
        s = _rng(rng).uniform(*self.scale_range)
        h, w = mask.shape
        size = (max(1, int(round(h * s))), max(1, int(round(w * s))))
        if size == (h, w):
            return image, mask
        return resize_image(image, size), resize_nearest(mask, size)

    def __repr__(self):
        return f"RandomScale(scale_range={self.scale_range})"


def pad_to(image, mask, size, image_fill=0, ignore_index=255):
    """Pad image and mask at the bottom and right to at least ``size = (h, w)``.

    The image is padded with ``image_fill`` (number, RGB triple or ``"mean"``), the mask with
    ``ignore_index``. Arrays already large enough are returned unchanged.
    """
    h, w = mask.shape
    new_h, new_w = max(h, size[0]), max(w, size[1])
    if (new_h, new_w) == (h, w):
        return image, mask
    fill = _fill_color(image, image_fill)
    out_image = np.empty((new_h, new_w, 3), dtype=image.dtype)
    out_image[...] = np.clip(np.round(fill), 0, 255).astype(image.dtype)
    out_image[:h, :w] = image
    out_mask = np.full((new_h, new_w), ignore_index, dtype=mask.dtype)
    out_mask[:h, :w] = mask
    return out_image, out_mask


def _as_size(size, name):
    if isinstance(size, int | np.integer):
        size = (int(size), int(size))
    size = tuple(int(v) for v in size)
    if len(size) != 2 or min(size) < 1:
        raise ValueError(f"{name}: size must be an int or (height, width) >= 1, got {size}.")
    return size


class RandomCrop:
    """Cut a random ``size`` window; pad first where the image is smaller.

    Padding goes to the bottom and right: the image with ``image_fill`` (0, an RGB triple, or
    ``"mean"``; DeepLab pads with the dataset mean color), the mask with ``ignore_index`` so
    that padded pixels are never learned as a class.

    Args:
        size: int or ``(height, width)`` of the output.
        image_fill: image padding value.
        ignore_index: mask padding value.
    """

    def __init__(self, size, image_fill=0, ignore_index=255):
        self.size = _as_size(size, "RandomCrop")
        _fill_color(np.zeros((1, 1, 3), np.uint8), image_fill)  # validates
        self.image_fill = image_fill
        self.ignore_index = int(ignore_index)

    def __call__(self, image, mask, rng=None):
        image, mask = check_pair(image, mask, "RandomCrop")
        image, mask = pad_to(image, mask, self.size, self.image_fill, self.ignore_index)
        rng = _rng(rng)
        h, w = mask.shape
        top = int(rng.integers(0, h - self.size[0] + 1))
        left = int(rng.integers(0, w - self.size[1] + 1))
        window = (slice(top, top + self.size[0]), slice(left, left + self.size[1]))
        return image[window].copy(), mask[window].copy()

    def __repr__(self):
        return (f"RandomCrop(size={self.size}, image_fill={self.image_fill!r}, "
                f"ignore_index={self.ignore_index})")


class RandomRotation:
    """Rotate image and mask about the centre by an angle uniform in ``[-degrees, degrees]``.

    PSPNet rotates by -10 to 10 degrees. The image is resampled bilinearly, the mask by
    nearest neighbour; corners that come from outside the image get ``image_fill`` in the
    image and ``ignore_index`` in the mask. The size is unchanged.

    Args:
        degrees: maximum absolute angle in degrees.
        image_fill: image padding value (number, RGB triple or ``"mean"``).
        ignore_index: mask padding value.
    """

    def __init__(self, degrees=10.0, image_fill=0, ignore_index=255):
        if degrees < 0:
            raise ValueError(f"RandomRotation: degrees must be >= 0, got {degrees}.")
        _fill_color(np.zeros((1, 1, 3), np.uint8), image_fill)
        self.degrees = float(degrees)
        self.image_fill = image_fill
        self.ignore_index = int(ignore_index)

    def __call__(self, image, mask, rng=None):
        image, mask = check_pair(image, mask, "RandomRotation")
        angle = _rng(rng).uniform(-self.degrees, self.degrees)
        if angle == 0.0:
            return image, mask
        fill = _fill_color(image, self.image_fill)
        channels = [
            ndimage.rotate(image[..., c].astype(np.float32), angle, reshape=False, order=1,
                           mode="constant", cval=float(fill[c]))
            for c in range(3)
        ]
        out_image = np.clip(np.round(np.stack(channels, axis=-1)), 0, 255).astype(np.uint8)
        out_mask = ndimage.rotate(mask, angle, reshape=False, order=0, mode="constant",
                                  cval=self.ignore_index, prefilter=False)
        return out_image, out_mask.astype(mask.dtype, copy=False)

    def __repr__(self):
        return (f"RandomRotation(degrees={self.degrees}, image_fill={self.image_fill!r}, "
                f"ignore_index={self.ignore_index})")


class ElasticDeformation:
    """U-Net's elastic deformation (Ronneberger, Fischer, Brox, MICCAI 2015, Sec. 3.1).

    "Smooth deformations using random displacement vectors on a coarse 3 by 3 grid. The
    displacements are sampled from a Gaussian distribution with 10 pixels standard
    deviation. Per-pixel displacements are then computed using bicubic interpolation."

    Here: a ``(grid, grid)`` field of 2-D displacements ~ N(0, sigma^2) spans the image
    (corners on the image corners); a cubic spline upsamples it to every pixel. The image is
    sampled at the displaced positions with cubic-spline interpolation (clipped to
    [0, 255]); the mask with nearest neighbour. Positions outside the image are mirrored
    (the paper's overlap-tile strategy mirrors borders), so no padding value appears.

    Args:
        grid: number of control points per side (3 in the paper).
        sigma: standard deviation of the displacements in pixels (10 in the paper).
        p: probability of applying the deformation.
    """

    def __init__(self, grid=3, sigma=10.0, p=1.0):
        if int(grid) < 2:
            raise ValueError(f"ElasticDeformation: grid must be >= 2, got {grid}.")
        if sigma < 0:
            raise ValueError(f"ElasticDeformation: sigma must be >= 0, got {sigma}.")
        self.grid = int(grid)
        self.sigma = float(sigma)
        self.p = float(p)

    def displacement(self, shape, rng):
        """Per-pixel displacements ``(2, H, W)`` (rows, cols) drawn from ``rng``."""
        h, w = shape
        coarse = rng.normal(0.0, self.sigma, size=(2, self.grid, self.grid))
        # Evaluate the cubic spline through the coarse grid at every pixel: control point
        # (i, j) sits at pixel (i * (h - 1) / (grid - 1), j * (w - 1) / (grid - 1)).
        gr = np.linspace(0, self.grid - 1, h)
        gc = np.linspace(0, self.grid - 1, w)
        coords = np.meshgrid(gr, gc, indexing="ij")
        return np.stack([
            ndimage.map_coordinates(coarse[k], coords, order=3, mode="nearest")
            for k in range(2)
        ])

    def __call__(self, image, mask, rng=None):
        image, mask = check_pair(image, mask, "ElasticDeformation")
        rng = _rng(rng)
        if rng.random() >= self.p:
            return image, mask
        h, w = mask.shape
        disp = self.displacement((h, w), rng)
        rows, cols = np.meshgrid(np.arange(h), np.arange(w), indexing="ij")
        coords = np.stack([rows + disp[0], cols + disp[1]])
        channels = [
            ndimage.map_coordinates(image[..., c].astype(np.float32), coords, order=3,
                                    mode="mirror")
            for c in range(3)
        ]
        out_image = np.clip(np.round(np.stack(channels, axis=-1)), 0, 255).astype(np.uint8)
        out_mask = ndimage.map_coordinates(mask, coords, order=0, mode="mirror", prefilter=False)
        return out_image, out_mask.astype(mask.dtype, copy=False)

    def __repr__(self):
        return f"ElasticDeformation(grid={self.grid}, sigma={self.sigma}, p={self.p})"


class ColorJitter:
    """Random brightness, contrast, saturation and hue changes of the image only.

    Each factor is drawn uniformly from ``[max(0, 1 - x), 1 + x]`` (hue: a shift in
    ``[-hue, hue]`` of the full hue circle) and applied in that order; the mask passes
    through untouched. U-Net's "gray value variations" are brightness and contrast.

    Args:
        brightness: multiplies the pixel values.
        contrast: blends with the mean gray level.
        saturation: blends with the grayscale image.
        hue: shifts the hue (``0 <= hue <= 0.5``).
    """

    def __init__(self, brightness=0.2, contrast=0.2, saturation=0.2, hue=0.0):
        for name, v in (("brightness", brightness), ("contrast", contrast),
                        ("saturation", saturation)):
            if v < 0:
                raise ValueError(f"ColorJitter: {name} must be >= 0, got {v}.")
        if not 0 <= hue <= 0.5:
            raise ValueError(f"ColorJitter: hue must be in [0, 0.5], got {hue}.")
        self.brightness = float(brightness)
        self.contrast = float(contrast)
        self.saturation = float(saturation)
        self.hue = float(hue)

    @staticmethod
    def _factor(rng, x):
        return rng.uniform(max(0.0, 1.0 - x), 1.0 + x)

    def __call__(self, image, mask, rng=None):
        image, mask = check_pair(image, mask, "ColorJitter")
        rng = _rng(rng)
        x = image.astype(np.float32)
        weights = np.array([0.299, 0.587, 0.114], dtype=np.float32)
        if self.brightness:
            x = x * self._factor(rng, self.brightness)
        if self.contrast:
            mean = float((np.clip(x, 0, 255) @ weights).mean())
            x = mean + (x - mean) * self._factor(rng, self.contrast)
        if self.saturation:
            gray = (np.clip(x, 0, 255) @ weights)[..., None]
            x = gray + (x - gray) * self._factor(rng, self.saturation)
        x = np.clip(np.round(x), 0, 255).astype(np.uint8)
        if self.hue:
            shift = int(round(rng.uniform(-self.hue, self.hue) * 255))
            hsv = np.asarray(Image.fromarray(x).convert("HSV")).copy()
            hsv[..., 0] = ((hsv[..., 0].astype(np.int32) + shift) % 256).astype(np.uint8)
            hsv_image = Image.frombytes("HSV", (hsv.shape[1], hsv.shape[0]), hsv.tobytes())
            x = np.asarray(hsv_image.convert("RGB"))
        return x, mask

    def __repr__(self):
        return (f"ColorJitter(brightness={self.brightness}, contrast={self.contrast}, "
                f"saturation={self.saturation}, hue={self.hue})")


class Compose:
    """Apply transforms in order, all drawing from the same generator.

    Args:
        transforms: sequence of callables ``(image, mask, rng) -> (image, mask)``.

    Call: ``(image uint8 (H, W, 3), mask int (H, W), rng) -> (image, mask)``.
    """

    def __init__(self, transforms):
        self.transforms = list(transforms)
        for t in self.transforms:
            if not callable(t):
                raise TypeError(f"Compose: {t!r} is not callable (image, mask, rng).")

    def __call__(self, image, mask, rng=None):
        image, mask = check_pair(image, mask, "Compose")
        rng = _rng(rng)
        for t in self.transforms:
            image, mask = t(image, mask, rng)
        return image, mask

    def __repr__(self):
        return "Compose([" + ", ".join(repr(t) for t in self.transforms) + "])"


class Augment(Compose):
    """The usual segmentation augmentation in one configurable callable.

    Order: random scale -> rotation -> elastic deformation -> crop -> horizontal flip ->
    color jitter (image only). Each step is off when its argument is falsy. The defaults are
    DeepLab v3 / PSPNet's "random mirror and random resize between 0.5 and 2"; add
    ``crop_size`` for their fixed-size crops. See :meth:`unet` and :meth:`pspnet` for the
    other papers' recipes.

    Args:
        flip: probability of a horizontal flip.
        scale: ``(min, max)`` random scale factors, or ``None``.
        crop_size: int or ``(h, w)`` random crop (padding smaller images), or ``None``.
        rotation: maximum rotation angle in degrees (0 = none).
        elastic: ``None``/``False``, ``True`` (U-Net: 3x3 grid, sigma 10 px) or a dict of
            :class:`ElasticDeformation` arguments.
        color_jitter: ``None``, a float (brightness = contrast = saturation = x) or a dict of
            :class:`ColorJitter` arguments.
        image_fill: image padding value (0, an RGB triple or ``"mean"``).
        ignore_index: mask padding value (never a class).

    Call: ``(image uint8 (H, W, 3), mask int (H, W), rng) -> (image, mask)``; the output has
    ``crop_size`` when given, otherwise the scaled size.
    """

    def __init__(self, flip=0.5, scale=(0.5, 2.0), crop_size=None, rotation=0.0, elastic=None,
                 color_jitter=None, image_fill=0, ignore_index=255):
        self.config = dict(flip=flip, scale=scale, crop_size=crop_size, rotation=rotation,
                           elastic=elastic, color_jitter=color_jitter, image_fill=image_fill,
                           ignore_index=ignore_index)
        transforms = []
        if scale:
            transforms.append(RandomScale(scale))
        if rotation:
            transforms.append(RandomRotation(rotation, image_fill, ignore_index))
        if elastic:
            transforms.append(ElasticDeformation(**(elastic if isinstance(elastic, dict)
                                                    else {})))
        if crop_size:
            transforms.append(RandomCrop(crop_size, image_fill, ignore_index))
        if flip:
            transforms.append(RandomHorizontalFlip(flip))
        if color_jitter:
            if isinstance(color_jitter, dict):
                transforms.append(ColorJitter(**color_jitter))
            else:
                x = float(color_jitter)
                transforms.append(ColorJitter(brightness=x, contrast=x, saturation=x))
        super().__init__(transforms)

    @classmethod
    def unet(cls, crop_size=None, **overrides):
        """U-Net (Ronneberger et al. 2015): elastic deformation (3x3 grid, sigma 10 px).

        The paper also names shifts, rotations and gray-value variation without amounts;
        the amounts here are choices: flip 0.5, rotation up to 15 degrees, brightness and
        contrast +-20 %, no scaling.
        """
        config = dict(flip=0.5, scale=None, crop_size=crop_size, rotation=15.0, elastic=True,
                      color_jitter=dict(brightness=0.2, contrast=0.2, saturation=0.0))
        config.update(overrides)
        return cls(**config)

    @classmethod
    def pspnet(cls, crop_size=None, **overrides):
        """PSPNet (Zhao et al. 2017): mirror, scale 0.5-2.0, rotation -10..10 degrees, crop
        (473 on VOC / ADE20K, 713 on Cityscapes), mean-color padding."""
        config = dict(flip=0.5, scale=(0.5, 2.0), crop_size=crop_size, rotation=10.0,
                      image_fill="mean")
        config.update(overrides)
        return cls(**config)

    def __repr__(self):
        return "Augment(" + ", ".join(f"{k}={v!r}" for k, v in self.config.items()) + ")"

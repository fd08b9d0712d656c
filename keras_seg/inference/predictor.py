"""Prediction on images of any size, with the papers' evaluation tricks.

A :class:`Predictor` holds a segmentation model (logits out) and the prediction
settings, validated once, and turns images into class maps, probabilities or
logits at each image's own size; :func:`predict` is the one-call form
(``Predictor(model, **settings).predict(images)``):

- **Padding to the stride.** The image is padded at the bottom and right to a
  multiple of the model's stride, as the models' own ``PadToMultiple`` does, and
  the output is cropped back; a model whose output is coarser than its input
  (e.g. DeepLab v1's stride-8 score map) has its logits resized bilinearly to the
  padded input first.
- **Sliding window** (``tile=``): windows of ``tile`` pixels overlapping by a
  fraction ``overlap``, the last window of each row and column shifted inside the
  image, overlaps blended with a Gaussian (nnU-Net's sigma = tile / 8) or a
  uniform window.
- **Overlap-tile** (Ronneberger et al. 2015, "U-Net", Fig. 2) for models built
  with unpadded convolutions (``UNet(padding="valid")``), whose output is smaller
  than their input: the image is mirrored at its borders so that the valid output
  covers every pixel, and tiled with a step that is a multiple of the network's
  pooling period, which makes the stitched result equal to one valid prediction
  on the whole mirrored image.
- **Test-time augmentation**: several scales (DeepLab v3 and PSPNet evaluate at
  0.5, 0.75, 1.0, 1.25, 1.5, 1.75) and horizontal flips; the softmax
  probabilities of all views are averaged at the original size.
- **DenseCRF** (DeepLab v1's post-processing) on the averaged probabilities with
  :func:`keras_seg.inference.dense_crf`.

The model's geometry (the multiple its input sides are padded to, and whether its
convolutions are unpadded) is read from its declaration
(:func:`keras_seg.model_base.model_geometry`; every keras-seg builder returns a
:class:`keras_seg.SegmentationModel` that declares it); only a model that declares
nothing (any other ``keras.Model``) has it probed from the graph (see
:class:`Predictor`).

The forward passes run with ``model.predict_on_batch`` (compiled once per input
shape by Keras); everything around them (padding, resizing, blending) is numpy.
"""

import math
import numbers
import weakref
from dataclasses import dataclass

import keras
import numpy as np

from keras_seg import validation
from keras_seg.model_base import inference_model, model_geometry

#: the scales of DeepLab v3 / PSPNet's multi-scale evaluation
TTA_SCALES = (0.5, 0.75, 1.0, 1.25, 1.5, 1.75)

OUTPUTS = ("classes", "probabilities", "logits")
BLENDS = ("gaussian", "mean")
PAD_MODES = ("constant", "reflect")

#: default stride when the model neither declares nor tells its own (the usual deepest stride)
DEFAULT_STRIDE = 32

# the largest output side that the default overlap-tile covers in one tile
_DEFAULT_VALID_OUTPUT = 512

# the dense_crf arguments that crf_options may set (predict passes probabilities and
# returns no energies, so from_logits / return_energy are its own)
_CRF_OPTIONS = ("iterations", "w1", "theta_alpha", "theta_beta", "w2", "theta_gamma",
                "exclude_self", "truncate")


class Predictor:
    """Segments images of any size with a segmentation model and fixed settings.

    The settings are checked once, here; the model's geometry is resolved once
    (see *Geometry* below); then ``predictor(images)`` (or
    ``predictor.predict(images)``) can be called on any number of images. The
    settings and the resolved geometry are attributes, fixed after construction
    (build another ``Predictor`` to change one).

    Scaling contract: the model must see the values its training pipeline gave
    it. By default (``preprocess=None``) a ``uint8`` image is divided by 255 (the
    ``[0, 1]`` range of :class:`keras_seg.data.SegmentationPipeline`'s default
    ``normalize="unit"``) and a float image is used as it is. Pass ``preprocess``
    for anything else (e.g. ImageNet mean/std): it is called on each image as
    given (``(H, W, C)``, its own dtype) and returns the float ``(H, W, C)`` array
    the model expects; padding then fills with zeros of that space.

    Geometry: ``stride`` (the multiple the input sides are padded to) and
    ``valid_padding`` (unpadded convolutions, overlap-tile) come, in this order,
    from the arguments when given; from the model's declaration
    (:func:`keras_seg.model_base.model_geometry`: ``output_stride`` and
    ``padding == "valid"``) for a :class:`keras_seg.SegmentationModel` that declares
    one (every keras-seg builder does; a ``.keras`` file keeps it); and only for a
    model that declares nothing, by probing the graph: the least common multiple
    of its ``PadToMultiple`` layers (else :data:`DEFAULT_STRIDE`), and its output
    shape for two input sizes. A declaration is used as declared, never
    cross-checked against the graph: a declared ``output_stride`` that differs from
    the model's own ``PadToMultiple`` multiple is the multiple padded to here (the
    model's layer then pads the rest itself, as it does for any input; a wrong
    declaration is the builder's to fix, and ``stride=`` overrides it). For an
    unpadded model, declared or not, the overlap-tile margin (pixels lost per
    border) and pooling period are measured by shape inference
    (``compute_output_spec`` at a few input sides; nothing is computed): the
    declaration says that the convolutions are unpadded, not by how much. A model
    built for one input size (static height and width) runs on windows of that
    size, with a stride of 1 and its margin read from its static shapes.

    Args:
        model: a ``keras.Model`` image ``(batch, H, W, C)`` -> logits
            ``(batch, h, w, K)``: full resolution (``h, w = H, W``), coarser
            (``H / h`` = the output stride, resized bilinearly), or smaller by a
            border (unpadded convolutions, see ``valid_padding``). A model with a
            dict of outputs (auxiliary / deep-supervision heads) is reduced to its
            ``"logits"`` output with :func:`keras_seg.inference_model`. ``K = 1``
            is read as one sigmoid logit (binary segmentation), ``K > 1`` as
            softmax logits.
        output: ``"classes"`` (int32 class map ``(H, W)``), ``"probabilities"``
            (float32 ``(H, W, K)``, softmax or sigmoid) or ``"logits"`` (float32
            ``(H, W, K)``; with several TTA views or ``crf=True`` these are the
            log of the averaged / refined probabilities, i.e. valid logits of the
            final distribution).
        batch_size: arrays (images or windows) per forward pass. Consecutive
            images of one size are batched together.
        scales: test-time scales (e.g. :data:`TTA_SCALES`): the image is resized
            bilinearly by each factor, predicted, and the logits resized back.
        flip: also predict the horizontally flipped image (of every scale) and
            flip its logits back. The softmax probabilities of all views are
            averaged.
        tile: None (whole image), or the window side in pixels (int or
            ``(height, width)``) of the model input: images larger than it are
            predicted by a sliding window. Must be at least ``stride``. For an
            unpadded model it is the overlap-tile input side, which must be one
            of the sides the network tiles exactly (e.g. 572 for the paper's
            U-Net; the error lists the nearest ones); default: the smallest such
            side whose output covers the image (up to 512 output pixels).
        overlap: fraction of the window shared by neighbouring windows, in
            ``[0, 1)`` (sliding window only).
        blend: ``"gaussian"`` (each window's logits weighted by a Gaussian of
            sigma = side / 8 centred on the window, as nnU-Net) or ``"mean"``
            (uniform weights).
        pad_mode: how padding fills: ``"constant"`` (zeros) or ``"reflect"``.
            Default None: zeros for the padding to the stride (what the models'
            own padding layer does), mirroring for the overlap-tile borders (as
            the paper).
        stride: the multiple the input sides are padded to. Default None: the
            model's declared ``output_stride``; for a model that declares none, the
            least common multiple of its ``PadToMultiple`` layers when it has
            some, else 32. For an unpadded model it is also the largest pooling
            period looked for (``2**depth`` for U-Net).
        valid_padding: whether the model uses unpadded convolutions (output
            smaller than its input by a border, e.g. ``UNet(padding="valid")``),
            which selects overlap-tile. Default None: the model's declared
            ``padding``; for a model that declares none, detected by probing the
            output shape for two input sizes (shape inference only, nothing is
            computed).
        crf: refine the probabilities with
            :func:`keras_seg.inference.dense_crf` (DeepLab v1). It needs the
            image in ``uint8`` RGB: a ``uint8`` input is used as given; a float
            input in ``[0, 1]`` is scaled by 255, otherwise clipped to
            ``[0, 255]``; a one-channel image is repeated to RGB.
        crf_options: dict of keyword arguments of ``dense_crf`` (iterations, w1,
            theta_alpha, theta_beta, w2, theta_gamma, exclude_self, truncate;
            DeepLab v1's by default), checked here.
        preprocess: callable ``image -> float image`` (see the scaling contract
            above), or None.

    Attributes:
        model: the model as given.
        net: the single-output model that runs (``model`` itself, or its
            ``"logits"`` output).
        geometry: the resolved :class:`Geometry` (channels, classes, stride,
            static size, unpadded convolutions and their margin / period, and
            whether the model declared it).
        channels: ``C``, the channels the model takes.
        num_classes: ``K``, the logits the model returns (1: one sigmoid logit).
        stride: the resolved padding multiple (1 for a model of one input size).
        valid_padding: the resolved ``valid_padding`` (bool).
        output, batch_size, scales, flip, tile, overlap, blend, pad_mode, crf,
        crf_options, preprocess: the checked settings (``batch_size`` an int,
            ``scales`` a tuple of floats, ``tile`` None or ``(height, width)``,
            ``flip`` / ``crf`` bools).

    Raises:
        ValueError: ``model`` is not a one-input ``keras.Model`` to
            ``(batch, h, w, K)`` logits; a tile smaller than the stride or not
            tiling an unpadded model; an unknown ``output`` / ``blend`` /
            ``pad_mode``; bad ``overlap``, ``batch_size``, ``scales``, ``stride``,
            ``valid_padding``, ``crf_options`` or ``preprocess``.

    Example::

        predictor = Predictor(model, scales=TTA_SCALES, flip=True, tile=512)
        masks = predictor([image_a, image_b])     # two int32 (H, W) class maps
    """

    def __init__(self, model, *, output="classes", batch_size=1, scales=(1.0,), flip=False,
                 tile=None, overlap=1 / 3, blend="gaussian", pad_mode=None, stride=None,
                 valid_padding=None, crf=False, crf_options=None, preprocess=None):
        if output not in OUTPUTS:
            raise ValueError(f"output must be one of {OUTPUTS}, got {output!r}.")
        if blend not in BLENDS:
            raise ValueError(f"blend must be one of {BLENDS}, got {blend!r}.")
        if pad_mode is not None and pad_mode not in PAD_MODES:
            raise ValueError(f"pad_mode must be one of {PAD_MODES} or None, got {pad_mode!r}.")
        if not isinstance(overlap, numbers.Real) or not 0 <= overlap < 1:
            raise ValueError(f"overlap must be a fraction in [0, 1), got {overlap!r}.")
        batch_size = validation.positive_int("predict", "batch_size", batch_size)
        scales = _check_scales(scales)
        crf_options = _check_crf_options(crf_options)
        if preprocess is not None and not callable(preprocess):
            raise ValueError(f"preprocess must be a callable image -> image, got {preprocess!r}.")
        net = _inference(model)
        geometry = _resolve_geometry(net, stride, valid_padding)
        tile = _check_tile(tile, geometry)
        if tile is not None and geometry.valid and geometry.static is None:
            _check_valid_tile(net, geometry, tile[0])
            _valid_step(geometry, tile[0])
        self.model = model
        self.net = net
        self.geometry = geometry
        self.output = output
        self.batch_size = batch_size
        self.scales = scales
        self.flip = bool(flip)
        self.tile = tile
        self.overlap = overlap
        self.blend = blend
        self.pad_mode = pad_mode
        self.crf = bool(crf)
        self.crf_options = crf_options
        self.preprocess = preprocess
        self._default_tiles = {}  # overlap-tile: target output side -> input side
        self._frozen = True

    def __setattr__(self, name, value):
        if getattr(self, "_frozen", False):
            raise AttributeError(
                f"Predictor settings are fixed once checked; build a new Predictor to change "
                f"{name!r} (e.g. Predictor(predictor.model, ...)).")
        super().__setattr__(name, value)

    @property
    def channels(self):
        """``C``, the number of channels the model takes."""
        return self.geometry.channels

    @property
    def num_classes(self):
        """``K``, the number of logits the model returns per pixel (1: one sigmoid logit)."""
        return self.geometry.num_classes

    @property
    def stride(self):
        """The multiple the input sides are padded to (1 for a model of one input size)."""
        return self.geometry.stride

    @property
    def valid_padding(self):
        """Whether the model has unpadded convolutions (predicted by overlap-tile)."""
        return self.geometry.valid

    def __repr__(self):
        settings = ", ".join(f"{key}={getattr(self, key)!r}" for key in (
            "output", "batch_size", "scales", "flip", "tile", "overlap", "blend", "pad_mode",
            "stride", "valid_padding", "crf"))
        return f"Predictor(model={self.model.name!r}, {settings})"

    def __call__(self, images):
        """Same as :meth:`predict`."""
        return self.predict(images)

    def predict(self, images):
        """Segment images with the model and this predictor's settings.

        Args:
            images: one image ``(H, W, C)``, a batch ``(B, H, W, C)``, or a list of
                ``(H, W, C)`` images of different sizes; ``uint8`` or float (see the
                scaling contract of the class). ``(H, W)`` is accepted for a
                one-channel model.

        Returns:
            For one image, its result; for a batch array, the stacked results
            ``(B, H, W)`` / ``(B, H, W, K)``; for a list, a list. Class maps are
            int32 ``(H, W)``; probabilities and logits float32 ``(H, W, K)``; always
            at the image's own size.

        Raises:
            ValueError: an image of the wrong rank, channel count or dtype, with NaN
                or infinite values, or empty; an empty list or batch (checked before
                the model runs).
            RuntimeError: on JAX, the model lost its weights to an earlier failed
                ``model.predict`` call (a Keras 3.15 issue, see ``_forward``).
        """
        raw, form = _as_image_list(images, self.channels)
        arrays = [_preprocess(image, i, self.preprocess, self.channels)
                  for i, image in enumerate(raw)]
        results = []
        for start, stop in _same_size_runs(arrays, self.batch_size):
            results.extend(self._predict_chunk(np.stack(arrays[start:stop]), raw[start:stop]))
        if form == "single":
            return results[0]
        if form == "batch":
            return np.stack(results)
        return results

    # -------------------------------------------------------------------- the passes

    def _predict_chunk(self, x, raw):
        """Results for images of one size over all TTA views.

        Args:
            x: float32 ``(n, H, W, C)``, the preprocessed images.
            raw: the ``n`` images as given (the CRF's colours).

        Returns:
            A list of ``n`` results: int32 ``(H, W)`` or float32 ``(H, W, K)``.
        """
        n, h, w = x.shape[:3]
        views = len(self.scales) * (2 if self.flip else 1)
        probs = logits = None
        for scale in self.scales:
            size = (max(1, round(h * scale)), max(1, round(w * scale)))
            xs = resize_bilinear(x, size) if size != (h, w) else x
            if self.flip:  # the flipped copies run in the same batches
                xs = np.concatenate([xs, xs[:, :, ::-1]])
            ls = self._predict_view(np.ascontiguousarray(xs))
            if self.flip:
                ls = np.concatenate([ls[:n], ls[n:, :, ::-1]])
            if size != (h, w):
                ls = resize_bilinear(ls, (h, w))
            if views == 1:
                logits = ls
                continue
            p = _probabilities(ls)
            p = p[:n] + p[n:] if self.flip else p
            probs = p if probs is None else probs + p
        if probs is not None:
            probs /= views
        if self.crf:
            probs = _dense_crf(raw, _probabilities(logits) if probs is None else probs,
                               self.crf_options)
        num_classes = self.num_classes
        results = []
        for i in range(n):
            if self.output == "classes":
                source = logits[i] if probs is None else probs[i]
                if num_classes == 1:
                    threshold = 0.0 if probs is None else 0.5
                    results.append((source[..., 0] > threshold).astype(np.int32))
                else:
                    results.append(np.argmax(source, axis=-1).astype(np.int32))
            elif self.output == "probabilities":
                p = _probabilities(logits[i]) if probs is None else probs[i]
                results.append(np.asarray(p, dtype=np.float32))
            else:
                lg = logits[i] if probs is None else _logits_of(probs[i], num_classes)
                results.append(np.asarray(lg, dtype=np.float32))
        return results

    def _predict_view(self, x):
        """Logits ``(n, H, W, K)`` of one view ``x`` ``(n, H, W, C)``."""
        if self.geometry.valid:
            return self._overlap_tile(x)
        static = self.geometry.static
        if static is None:
            return self._windows(x, self.tile)
        h, w = x.shape[1:3]
        ph, pw = max(0, static[0] - h), max(0, static[1] - w)
        if ph or pw:  # smaller than the model's fixed size: pad, predict, crop
            x = _pad(x, (0, ph), (0, pw), self.pad_mode or "constant")
            return self._windows(x, static)[:, :h, :w]
        return self._windows(x, static)

    def _windows(self, x, tile):
        """Logits ``(n, H, W, K)`` of ``x`` ``(n, H, W, C)``, by sliding ``tile`` windows.

        ``tile`` is ``(height, width)`` or None (one pass on the whole image); an
        image within one window is predicted whole.
        """
        n, h, w = x.shape[:3]
        if tile is None or (h <= tile[0] and w <= tile[1]):
            return self._forward_padded(x)
        th, tw = min(tile[0], h), min(tile[1], w)
        boxes = [(y, xx) for y in sliding_window_starts(h, th, self.overlap)
                 for xx in sliding_window_starts(w, tw, self.overlap)]
        weight = (gaussian_window(th, tw) if self.blend == "gaussian"
                  else np.ones((th, tw), np.float32))
        windows = np.stack([x[:, y:y + th, xx:xx + tw] for y, xx in boxes], axis=1)
        out = self._forward_padded(windows.reshape(-1, th, tw, x.shape[-1]))
        out = out.reshape(n, len(boxes), th, tw, -1)
        total = np.zeros((n, h, w, out.shape[-1]), np.float32)
        norm = np.zeros((h, w, 1), np.float32)
        for k, (y, xx) in enumerate(boxes):
            total[:, y:y + th, xx:xx + tw] += out[:, k] * weight[..., None]
            norm[y:y + th, xx:xx + tw] += weight[..., None]
        return total / norm

    def _forward_padded(self, x):
        """Pad ``x`` ``(n, H, W, C)`` to the stride, run the model, resize coarse
        logits, crop back: logits ``(n, H, W, K)``."""
        h, w = x.shape[1:3]
        s = self.geometry.stride
        hp, wp = -(-h // s) * s, -(-w // s) * s
        if (hp, wp) != (h, w):
            x = _pad(x, (0, hp - h), (0, wp - w), self.pad_mode or "constant")
        out = _forward(self.net, x, self.batch_size)
        if out.shape[1:3] != (hp, wp):
            out = resize_bilinear(out, (hp, wp))
        return out[:, :h, :w]

    def _overlap_tile(self, x):
        """U-Net's overlap-tile strategy (Ronneberger et al. 2015, Fig. 2).

        Args:
            x: float32 ``(n, H, W, C)``.

        Returns:
            float32 logits ``(n, H, W, K)``.
        """
        n, h, w = x.shape[:3]
        geom = self.geometry
        m = geom.margin
        if geom.static is not None:
            t = geom.static[0]
            step = out_side = t - 2 * m
            step_w, t_w = geom.static[1] - 2 * m, geom.static[1]
        else:
            t = self.tile[0] if self.tile is not None else self._default_valid_tile(h, w)
            out_side = t - 2 * m
            step = _valid_step(geom, t)
            step_w, t_w = step, t
        out_w = t_w - 2 * m
        ys = _tile_starts(h, out_side, step)
        xs = _tile_starts(w, out_w, step_w)
        hc, wc = ys[-1] + out_side, xs[-1] + out_w
        xp = _pad(x, (m, hc - h + m), (m, wc - w + m), self.pad_mode or "reflect")
        windows = np.stack([xp[:, y:y + t, xx:xx + t_w] for y in ys for xx in xs], axis=1)
        out = _forward(self.net, windows.reshape(-1, t, t_w, x.shape[-1]), self.batch_size)
        if out.shape[1:3] != (out_side, out_w):
            raise ValueError(f"Model {self.net.name!r} mapped a {t}x{t_w} tile to "
                             f"{out.shape[1:3]}, expected {(out_side, out_w)}; pass "
                             "valid_padding=False if it is not an unpadded (valid-convolution) "
                             "network.")
        out = out.reshape(n, len(ys) * len(xs), out_side, out_w, -1)
        canvas = np.zeros((n, hc, wc, out.shape[-1]), np.float32)
        for k, (y, xx) in enumerate((y, xx) for y in ys for xx in xs):
            canvas[:, y:y + out_side, xx:xx + out_w] = out[:, k]
        return canvas[:, :h, :w]

    def _default_valid_tile(self, h, w):
        """The smallest tiling input side whose output covers ``h x w`` (capped at 512)."""
        geom = self.geometry
        target = min(max(h, w), _DEFAULT_VALID_OUTPUT)
        if target not in self._default_tiles:
            t = 2 * geom.margin + target
            t += (geom.residue - t) % geom.period
            while _output_side(self.net, t, geom.channels) != t - 2 * geom.margin:
                t += geom.period
            self._default_tiles[target] = t
        return self._default_tiles[target]


def predict(
    model,
    images,
    *,
    output="classes",
    batch_size=1,
    tile=None,
    overlap=1 / 3,
    blend="gaussian",
    scales=(1.0,),
    flip=False,
    crf=False,
    crf_options=None,
    pad_mode=None,
    preprocess=None,
    stride=None,
    valid_padding=None,
):
    """Segment images of any size with a segmentation model.

    ``Predictor(model, **settings).predict(images)`` in one call; build a
    :class:`Predictor` to predict several times with the same settings (they are
    checked, and the model's geometry resolved, once). The class documents the
    scaling contract (``uint8`` divided by 255, float as is, or ``preprocess``),
    how the model's geometry is read (declared, else probed), and each setting in
    full.

    Args:
        model: a ``keras.Model`` image ``(batch, H, W, C)`` -> logits
            ``(batch, h, w, K)`` (full resolution, coarser, or smaller by a
            border); a dict-output model is reduced to its ``"logits"`` output.
        images: one image ``(H, W, C)``, a batch ``(B, H, W, C)``, or a list of
            ``(H, W, C)`` images of different sizes; ``uint8`` or float. ``(H, W)``
            is accepted for a one-channel model.
        output: ``"classes"``, ``"probabilities"`` or ``"logits"``.
        batch_size: arrays (images or windows) per forward pass.
        tile: None, or the sliding-window (overlap-tile) input side(s).
        overlap: fraction of the window shared by neighbouring windows.
        blend: ``"gaussian"`` or ``"mean"`` weights of overlapping windows.
        scales: test-time scales (e.g. :data:`TTA_SCALES`).
        flip: also predict the horizontally flipped images.
        crf: refine the probabilities with DenseCRF (DeepLab v1).
        crf_options: dict of ``dense_crf`` keyword arguments.
        pad_mode: ``"constant"``, ``"reflect"`` or None (zeros to the stride,
            mirroring at overlap-tile borders).
        preprocess: callable ``image -> float image``, or None.
        stride: the multiple the input sides are padded to (None: declared, else
            probed).
        valid_padding: whether the model has unpadded convolutions (None:
            declared, else probed).

    Returns:
        For one image, its result; for a batch array, the stacked results
        ``(B, H, W)`` / ``(B, H, W, K)``; for a list, a list. Class maps are int32
        ``(H, W)``; probabilities and logits float32 ``(H, W, K)``; always at the
        image's own size.

    Raises:
        ValueError: an image of the wrong rank, channel count or dtype, with NaN
            or infinite values, or empty; a tile smaller than the stride or not
            tiling an unpadded model; an unknown ``output`` / ``blend`` /
            ``pad_mode``; bad ``overlap`` or ``scales`` (see :class:`Predictor`).
    """
    return Predictor(model, output=output, batch_size=batch_size, scales=scales, flip=flip,
                     tile=tile, overlap=overlap, blend=blend, pad_mode=pad_mode, stride=stride,
                     valid_padding=valid_padding, crf=crf, crf_options=crf_options,
                     preprocess=preprocess).predict(images)


def sliding_window_starts(size, tile, overlap):
    """Start offsets of the windows covering ``size`` pixels along one axis.

    Windows of ``tile`` pixels advance by ``ceil(tile * (1 - overlap))``; the last
    one is shifted back inside (it ends at ``size``), so every window lies within
    the image and together they cover it. ``size <= tile`` gives ``[0]``.

    Args:
        size: length of the axis (pixels).
        tile: window length (pixels).
        overlap: fraction of a window shared with the next one, in ``[0, 1)``.

    Returns:
        A sorted list of distinct int offsets.
    """
    size, tile = int(size), int(tile)
    if size <= tile:
        return [0]
    step = max(1, math.ceil(tile * (1 - overlap)))
    count = math.ceil((size - tile) / step) + 1
    return sorted({min(i * step, size - tile) for i in range(count)})


def gaussian_window(height, width):
    """Blending weights of one window: a separable Gaussian of sigma = side / 8.

    nnU-Net's importance map (Isensee et al. 2021): the centre of a window, which
    sees the most context, dominates where windows overlap. Normalized to a
    maximum of 1; the corners keep a weight of about ``exp(-16)``, never 0.

    Returns:
        float32 array ``(height, width)``.
    """
    def axis(n):
        c = (n - 1) / 2
        sigma = max(n / 8, 1e-3)
        return np.exp(-((np.arange(n) - c) ** 2) / (2 * sigma**2))

    w = np.outer(axis(height), axis(width))
    return (w / w.max()).astype(np.float32)


def resize_bilinear(x, size):
    """Bilinear resize of ``(..., H, W, C)`` arrays to ``size = (h, w)``.

    Half-pixel centres without antialiasing, i.e. ``tf.image.resize(...,
    "bilinear")``, ``torch.nn.functional.interpolate(..., align_corners=False)``
    and ``keras.ops.image.resize(..., antialias=False)``: output pixel ``i`` samples
    input position ``(i + 0.5) * H / h - 0.5``, clamped to the image.

    Args:
        x: float array ``(H, W, C)`` or ``(B, H, W, C)``.
        size: ``(h, w)`` target height and width.

    Returns:
        float32 array ``(h, w, C)`` or ``(B, h, w, C)``.
    """
    x = np.asarray(x, dtype=np.float32)
    h, w = int(size[0]), int(size[1])
    in_h, in_w = x.shape[-3], x.shape[-2]
    if (h, w) == (in_h, in_w):
        return x
    lo, hi, frac = _bilinear_taps(in_h, h)
    x = x[..., lo, :, :] * (1 - frac)[:, None, None] + x[..., hi, :, :] * frac[:, None, None]
    lo, hi, frac = _bilinear_taps(in_w, w)
    return x[..., lo, :] * (1 - frac)[:, None] + x[..., hi, :] * frac[:, None]


def _bilinear_taps(n_in, n_out):
    """Source rows (low, high) and the weight of the high one, per output row."""
    pos = np.clip((np.arange(n_out) + 0.5) * (n_in / n_out) - 0.5, 0, n_in - 1)
    lo = np.floor(pos).astype(np.int64)
    hi = np.minimum(lo + 1, n_in - 1)
    return lo, hi, (pos - lo).astype(np.float32)


# ----------------------------------------------------------------------- model geometry


@dataclass(frozen=True)
class Geometry:
    """What a :class:`Predictor` knows of its model's shapes, resolved once.

    Attributes:
        channels: ``C``, the input channels.
        num_classes: ``K``, the logits per pixel.
        stride: the multiple the input sides are padded to (1 for a model built
            for one input size).
        static: ``(H, W)`` of a model built for one input size, else None.
        valid: unpadded convolutions (output smaller than the input): overlap-tile.
        margin: (valid) the border lost on each side: output pixel ``i`` comes from
            input pixel ``i + margin``.
        period: (valid) the input sides that tile exactly differ by multiples of
            this (the pooling period).
        residue: (valid) those sides are congruent to this modulo ``period``.
        declared: whether the model declares its geometry
            (:func:`keras_seg.model_base.model_geometry`); False: probed (explicit
            ``stride`` / ``valid_padding`` arguments override either).
    """

    channels: int
    num_classes: int
    stride: int
    static: tuple = None
    valid: bool = False
    margin: int = 0
    period: int = None
    residue: int = None
    declared: bool = False


_INFERENCE_MODELS = weakref.WeakKeyDictionary()
_PROBES = weakref.WeakKeyDictionary()  # net -> {probe key: result}


def _inference(model):
    """The single-output model that runs, checked to be a segmentation model."""
    if not isinstance(model, keras.Model):
        raise ValueError(f"model must be a keras.Model, got {type(model).__name__}.")
    net = _INFERENCE_MODELS.get(model)
    if net is not None:
        return net
    if not getattr(model, "inputs", None) or not getattr(model, "outputs", None):
        raise ValueError(
            f"Model {model.name!r} has no defined inputs/outputs (a subclassed or never-built "
            "model); build it functionally from keras.Input((None, None, channels)).")
    if isinstance(model, keras.Sequential):  # single output; has no `.output` on some backends
        net = model
    else:
        net = inference_model(model)
    if len(net.inputs) != 1:
        raise ValueError(f"Model {model.name!r} has {len(net.inputs)} inputs; a segmentation "
                         "model takes one image batch (batch, H, W, C).")
    for what, shape in (("input", net.inputs[0].shape), ("output", net.outputs[0].shape)):
        if len(shape) != 4 or shape[-1] is None:
            raise ValueError(
                f"Model {model.name!r} is not a segmentation model: its {what} shape is "
                f"{tuple(shape)}, expected (batch, height, width, channels) with known "
                "channels.")
    _INFERENCE_MODELS[model] = net
    return net


def _resolve_geometry(net, stride, valid_padding):
    """The :class:`Geometry` of ``net``: explicit arguments, else declared, else probed."""
    if stride is not None:
        stride = validation.positive_int("predict", "stride", stride)
    if valid_padding not in (None, True, False):
        raise ValueError(f"valid_padding must be None, True or False, got {valid_padding!r}.")
    in_shape = tuple(net.inputs[0].shape)
    channels, num_classes = int(in_shape[-1]), int(net.outputs[0].shape[-1])
    declared = model_geometry(net)
    if declared is not None:
        if stride is None:
            stride = declared["output_stride"]
        if valid_padding is None:
            valid_padding = declared["padding"] == "valid"
    static = in_shape[1:3]
    if any(d is not None for d in static):
        if any(d is None for d in static):
            raise ValueError(f"Model {net.name!r} has input shape {in_shape}: build it with "
                             "both spatial sizes fixed or both None, e.g. (None, None, C).")
        out = tuple(net.outputs[0].shape[1:3])
        valid = valid_padding
        if valid is None:
            valid = out != static and any(s % o for s, o in zip(static, out, strict=True))
        margin = (static[0] - out[0]) // 2 if valid else 0
        return Geometry(channels, num_classes, 1, static=tuple(static), valid=bool(valid),
                        margin=margin, declared=declared is not None)
    if stride is None:
        stride = _probed(net, ("stride",), _model_stride) or DEFAULT_STRIDE
    if valid_padding is None:
        valid_padding = _probed(net, ("valid", stride), _probe_valid_padding, stride, channels)
    if not valid_padding:
        return Geometry(channels, num_classes, stride, declared=declared is not None)
    margin, period, residue = _probed(net, ("tiling", stride), _probe_valid, stride, channels)
    return Geometry(channels, num_classes, stride, valid=True, margin=margin, period=period,
                    residue=residue, declared=declared is not None)


def _probed(net, key, probe, *args):
    """``probe(net, *args)``, computed once per model and key."""
    cache = _PROBES.setdefault(net, {})
    if key not in cache:
        cache[key] = probe(net, *args)
    return cache[key]


def _probe_valid_padding(net, stride, channels):
    """Whether ``net`` (declaring nothing) loses a border: its output sides for two inputs.

    A padded model maps sides proportionally (1:1, or 1:output stride); an unpadded
    one loses a fixed border. Shapes it cannot infer: treated as padded.
    """
    a, b = 8 * stride, 12 * stride
    oa, ob = _output_side(net, a, channels), _output_side(net, b, channels)
    return oa is not None and ob is not None and oa < a and oa * b != ob * a


def _probe_valid(net, stride, channels):
    """Margin and tiling period of an unpadded network from its output sizes.

    For input side ``s`` the output side is ``s - 2 * margin`` exactly when every
    pooling sees an even size, and smaller otherwise (the poolings floor); the
    tiling sides are those that reach the largest output, and repeat with the
    pooling period (at most ``stride``).
    """
    start = 8 * stride
    while start <= 64 * stride:
        sides = range(start, start + stride + 1)  # holds two tiling sides if period < stride
        lost = {}
        for s in sides:
            o = _output_side(net, s, channels)
            if o is not None and 0 < o <= s:
                lost[s] = s - o
        if lost:
            least = min(lost.values())
            tiling = [s for s in sides if lost.get(s) == least]
            period = tiling[1] - tiling[0] if len(tiling) > 1 else stride
            if least % 2:
                raise ValueError(
                    f"Model {net.name!r} loses {least} pixels per side pair: an odd border "
                    "cannot be centred; overlap-tile needs a symmetric valid network.")
            return least // 2, period, tiling[0] % period
        start *= 2
    raise ValueError(f"Model {net.name!r}: could not find an input size with a valid output "
                     f"between {8 * stride} and {65 * stride} pixels; pass valid_padding=False "
                     "if the model pads its convolutions.")


def _output_side(net, side, channels):
    """Output height of ``net`` for a ``side x side`` input (shape inference only)."""
    try:
        spec = net.compute_output_spec(keras.KerasTensor((1, side, side, channels)))
    except Exception:  # a size the network cannot take (e.g. a non-positive size inside)
        return None
    h = spec.shape[1]
    return None if h is None else int(h)


def _model_stride(net):
    """Least common multiple of the model's PadToMultiple layers, or None."""
    from keras_seg.layers import PadToMultiple

    multiples = []

    def walk(layer):
        if isinstance(layer, PadToMultiple):
            multiples.append(layer.multiple)
        for sub in getattr(layer, "layers", []):
            walk(sub)

    walk(net)
    return math.lcm(*multiples) if multiples else None



def _check_valid_tile(net, geom, tile):
    """Raise unless ``tile`` is an input side that the unpadded ``net`` tiles exactly."""
    def tiles(t):
        return (t - geom.residue) % geom.period == 0 and t > 2 * geom.margin and \
            _output_side(net, t, geom.channels) == t - 2 * geom.margin

    if not tiles(tile):
        near = [t for t in range(max(1, tile - 4 * geom.period), tile + 4 * geom.period + 1)
                if (t - geom.residue) % geom.period == 0 and t > 2 * geom.margin]
        near = sorted(near, key=lambda t: abs(t - tile))[:4]
        raise ValueError(
            f"tile={tile} is not an input side that model {net.name!r} (unpadded "
            f"convolutions, {geom.margin} pixels lost per border) tiles exactly. Nearest "
            f"sides that do: {sorted(near)} (sides = {geom.residue} mod {geom.period}).")


def _valid_step(geom, tile):
    """The overlap-tile step of an input side ``tile``: its output side floored to the
    pooling period (every tile on the same pooling grid: overlapping outputs agree and
    the stitched map equals one pass)."""
    out_side = tile - 2 * geom.margin
    step = out_side // geom.period * geom.period
    if step < 1:
        raise ValueError(f"tile={tile} gives {out_side} output pixels, fewer than the "
                         f"network's pooling period {geom.period}; use a larger tile.")
    return step


# ------------------------------------------------------------------------- the input


def _as_image_list(images, channels):
    """Images as a list of arrays, and the form to return: single, batch or list."""
    if isinstance(images, (list, tuple)):
        if not images:
            raise ValueError("images is an empty list; pass at least one image.")
        arrays = [np.asarray(im) for im in images]
        for i, im in enumerate(arrays):
            if im.ndim == 2 and channels == 1:
                arrays[i] = im[..., None]
            elif im.ndim != 3:
                raise ValueError(
                    f"Image {i} of the list has shape {im.shape}: each image must be "
                    f"(height, width, {channels})" + _rank_hint(channels))
        return arrays, "list"
    x = np.asarray(images)
    if x.ndim == 2 and channels == 1:
        return [x[..., None]], "single"
    if x.ndim == 3:
        return [x], "single"
    if x.ndim == 4:
        if x.shape[0] == 0:
            raise ValueError("images is an empty batch (0, H, W, C); pass at least one image.")
        return list(x), "batch"
    raise ValueError(f"images has shape {x.shape}: expected one image (height, width, "
                     f"{channels}), a batch (batch, height, width, {channels}) or a list of "
                     "images" + _rank_hint(channels))


def _rank_hint(channels):
    return (" ((height, width) for a one-channel model)." if channels == 1 else
            f"; add a channel axis to a grayscale image for a {channels}-channel model "
            "(e.g. np.repeat(image[..., None], 3, -1)).")


def _preprocess(image, index, preprocess, channels):
    if image.shape[-1] != channels:
        raise ValueError(
            f"Image {index} has {image.shape[-1]} channels (shape {image.shape}) but the model "
            f"takes {channels}; convert it (e.g. PIL's image.convert('RGB') for 3 channels, "
            "'L' for 1).")
    if image.shape[0] == 0 or image.shape[1] == 0:
        raise ValueError(f"Image {index} is empty (shape {image.shape}).")
    if preprocess is None:
        if image.dtype == np.uint8:
            x = image.astype(np.float32) / 255.0
        elif np.issubdtype(image.dtype, np.floating):
            x = image.astype(np.float32)
        else:
            raise ValueError(
                f"Image {index} has dtype {image.dtype}: without preprocess, images are uint8 "
                "(divided by 255) or float (used as is). Pass preprocess=... to scale other "
                "types the way the model was trained.")
    else:
        x = np.asarray(preprocess(image), dtype=np.float32)
        if x.shape != image.shape:
            raise ValueError(f"preprocess changed image {index}'s shape from {image.shape} to "
                             f"{x.shape}; it must return an array of the same shape.")
    if not np.all(np.isfinite(x)):
        raise ValueError(f"Image {index} contains NaN or infinite values "
                         f"({int(np.sum(~np.isfinite(x)))} of {x.size}); clean the input.")
    return x


def _same_size_runs(arrays, batch_size):
    """(start, stop) of runs of at most batch_size consecutive same-shape images."""
    start = 0
    for i in range(1, len(arrays) + 1):
        if i == len(arrays) or arrays[i].shape != arrays[start].shape or i - start == batch_size:
            yield start, i
            start = i


def _check_scales(scales):
    try:
        scales = tuple(float(s) for s in scales)
    except (TypeError, ValueError):
        raise ValueError(f"scales must be a sequence of positive numbers, e.g. (0.5, 1.0, "
                         f"1.5), got {scales!r}.") from None
    if not scales or any(not (s > 0 and math.isfinite(s)) for s in scales):
        raise ValueError(f"scales must be a non-empty sequence of positive numbers, got "
                         f"{scales!r}.")
    return scales


def _check_crf_options(options):
    """``options`` as a dict of checked ``dense_crf`` arguments, or None."""
    if options is None:
        return None
    if not isinstance(options, dict):
        raise ValueError(f"crf_options must be a dict of dense_crf arguments, got "
                         f"{type(options).__name__}.")
    unknown = sorted(str(key) for key in options if key not in _CRF_OPTIONS)
    if unknown:
        raise ValueError(f"crf_options names {unknown}, which are not dense_crf arguments "
                         f"that prediction may set; those are {list(_CRF_OPTIONS)}.")
    from keras_seg.inference.crf import DenseCRF

    try:
        DenseCRF(**options)  # checks the values as dense_crf would, before any image
    except ValueError as err:
        raise ValueError(f"crf_options: {err}") from None
    return dict(options)


def _check_tile(tile, geom):
    if tile is None:
        return None
    pair = (tile, tile) if isinstance(tile, (int, np.integer)) else tuple(tile)
    if len(pair) != 2 or any(isinstance(t, bool) or not isinstance(t, (int, np.integer))
                             or t < 1 for t in pair):
        raise ValueError(f"tile must be a positive int or (height, width), got {tile!r}.")
    pair = (int(pair[0]), int(pair[1]))
    if geom.static is not None:
        if pair != geom.static:
            raise ValueError(f"The model takes only {geom.static} inputs; leave tile=None "
                             f"(windows of that size are used) or pass tile={geom.static}.")
        return pair
    if geom.valid:
        if pair[0] != pair[1]:
            raise ValueError(f"Overlap-tile uses square tiles; got tile={tile!r}.")
        return pair
    if min(pair) < geom.stride:
        raise ValueError(
            f"tile={tile!r} is smaller than the model's stride {geom.stride}: every window "
            f"would be mostly padding. Use a tile of at least {geom.stride} pixels (a multiple "
            f"of {geom.stride} wastes nothing), or pass stride= if the model's is smaller.")
    return pair


# ------------------------------------------------------------------------ prediction helpers


def _tile_starts(size, out_side, step):
    count = max(0, math.ceil((size - out_side) / step)) + 1
    return [i * step for i in range(count)]


def _pad(x, pad_h, pad_w, mode):
    """Pad (n, H, W, C) arrays; ``reflect`` mirrors without repeating the edge pixel."""
    return np.pad(x, ((0, 0), pad_h, pad_w, (0, 0)), mode=mode)


def _forward(net, x, batch_size):
    """Logits of ``x`` in batches of ``batch_size``, as float32 numpy.

    Keras 3.15's JAX trainer: ``model.predict`` detaches the model's variables
    (``_purge_model_variables`` sets each value to None) while it runs and reattaches
    them only when it finishes; when the call fails (e.g. an image with the wrong
    channel count) they stay detached and every later call of that model fails with
    ``TypeError: 'NoneType' object is not callable``. Resetting
    ``model.predict_function = None`` does not bring them back; only assigning the
    values again does. So keras-seg (1) checks the images before any call
    (:meth:`Predictor.predict`), (2) runs ``predict_on_batch``, which keeps the
    variables attached (a failed call leaves the model usable), and (3) names the
    cause when the model was already broken by such a ``model.predict``.
    """
    try:
        outs = [np.asarray(net.predict_on_batch(x[i:i + batch_size]), dtype=np.float32)
                for i in range(0, len(x), batch_size)]
    except TypeError as err:
        if _detached_variables(net):
            raise RuntimeError(
                f"Model {net.name!r} has lost its weights: an earlier model.predict call on "
                "it failed on the JAX backend, and Keras 3.15 then leaves the model's "
                "variables detached (every later call fails). Reload or rebuild the model; "
                "keras_seg.inference.predict checks inputs before calling the model and "
                "never triggers this.") from err
        raise
    return np.concatenate(outs) if len(outs) > 1 else outs[0]


def _detached_variables(net):
    """Whether a failed JAX ``model.predict`` left ``net``'s variables without values."""
    if keras.backend.backend() != "jax":
        return False
    return any(getattr(v, "_value", 0) is None for v in net.variables)


# ------------------------------------------------------------------------ post-processing


def _probabilities(logits):
    logits = np.asarray(logits, dtype=np.float32)
    if logits.shape[-1] == 1:
        return 1.0 / (1.0 + np.exp(-logits))
    z = logits - logits.max(axis=-1, keepdims=True)
    e = np.exp(z)
    return e / e.sum(axis=-1, keepdims=True)


def _logits_of(probs, num_classes):
    p = np.clip(probs, 1e-12, 1.0)
    if num_classes == 1:
        q = np.clip(1.0 - probs, 1e-12, 1.0)
        return np.log(p) - np.log(q)
    return np.log(p)


def _crf_image(image):
    image = np.asarray(image)
    if image.dtype != np.uint8:
        image = image.astype(np.float32)
        scale = 255.0 if image.size and image.min() >= 0 and image.max() <= 1 else 1.0
        image = np.clip(np.round(image * scale), 0, 255).astype(np.uint8)
    if image.shape[-1] == 1:
        image = np.repeat(image, 3, axis=-1)
    if image.shape[-1] != 3:
        raise ValueError(f"crf=True needs an RGB (or one-channel) image, got shape "
                         f"{image.shape}.")
    return image


def _dense_crf(raw, probs, options):
    from keras_seg.inference.crf import dense_crf

    out = []
    for image, p in zip(raw, probs, strict=True):
        binary = p.shape[-1] == 1
        q = np.concatenate([1 - p, p], axis=-1) if binary else p
        r = np.asarray(dense_crf(_crf_image(image), q, **(options or {})), dtype=np.float32)
        out.append(r[..., 1:] if binary else r)
    return np.stack(out)

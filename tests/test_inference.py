"""keras_seg.inference: padding to the stride, sliding window, overlap-tile, TTA, errors.

The models are tiny and fully convolutional; references are computed independently
(direct model calls, keras.ops.image.resize, numpy mirroring).
"""

import keras
import numpy as np
import pytest

import keras_seg
from keras_seg import inference
from keras_seg.applications import UNet, unet_valid_output_side


def _fcn(classes=3, channels=3, input_shape=(None, None), name="fcn"):
    """Two bias-free 3x3 convs: receptive radius 2; zero padding = the convs' own."""
    inputs = keras.Input((*input_shape, channels))
    x = keras.layers.Conv2D(4, 3, padding="same", use_bias=False, activation="relu")(inputs)
    x = keras.layers.Conv2D(classes, 3, padding="same", use_bias=False)(x)
    return keras.Model(inputs, x, name=name)


def _coarse(classes=3):
    """Output at stride 4 (ceil): the logits need the bilinear resize back."""
    inputs = keras.Input((None, None, 3))
    x = keras.layers.Conv2D(4, 3, strides=2, padding="same", activation="relu")(inputs)
    x = keras.layers.Conv2D(classes, 3, strides=2, padding="same")(x)
    return keras.Model(inputs, x)


def _call(model, x):
    """One direct forward pass (compiled: eager JAX is slow to dispatch)."""
    return np.asarray(model.predict_on_batch(x[None].astype("float32")))[0]


def _softmax(z):
    e = np.exp(z - z.max(-1, keepdims=True))
    return e / e.sum(-1, keepdims=True)


def _rand(*shape, seed=0):
    return np.random.default_rng(seed).uniform(0, 1, shape).astype("float32")


def _safe_mask(shape, tile, overlap, radius):
    """Pixels at least ``radius`` from every inner window edge of every window holding them."""
    safe = []
    for size, t in zip(shape, tile, strict=True):
        ok = np.ones(size, bool)
        for s in inference.sliding_window_starts(size, t, overlap):
            p = np.arange(s, s + t)
            bad = ((s > 0) & (p - s < radius)) | ((s + t < size) & (s + t - 1 - p < radius))
            ok[p[bad]] = False
        safe.append(ok)
    return safe[0][:, None] & safe[1][None, :]


def test_sliding_window_starts_and_gaussian_window():
    assert keras_seg.inference is inference
    assert inference.sliding_window_starts(100, 32, 0.5) == [0, 16, 32, 48, 64, 68]
    assert inference.sliding_window_starts(20, 32, 0.5) == [0]
    starts = inference.sliding_window_starts(77, 24, 1 / 3)
    assert starts[0] == 0 and starts[-1] + 24 == 77
    assert all(b - a <= 16 for a, b in zip(starts, starts[1:], strict=False))
    w = inference.gaussian_window(9, 16)
    assert w.shape == (9, 16) and w.max() == pytest.approx(1.0) and w.min() > 0
    np.testing.assert_allclose(w, w[::-1, ::-1], rtol=1e-6)
    assert w[4, 7] > w[0, 0] * 1e3


def test_resize_bilinear_matches_keras_resize():
    x = _rand(2, 7, 10, 3)
    for size in [(14, 25), (3, 4)]:
        ref = keras.ops.convert_to_numpy(
            keras.ops.image.resize(x, size, interpolation="bilinear", antialias=False))
        np.testing.assert_allclose(inference.resize_bilinear(x, size), ref, atol=1e-5)


def test_tiled_equals_whole_image_away_from_window_edges():
    model = _fcn()
    x = _rand(45, 58, 3)
    whole = inference.predict(model, x, output="logits", stride=1)  # no padding
    radius, tile = 2, (16, 24)
    for blend in ("gaussian", "mean"):
        tiled = inference.predict(model, x, output="logits", stride=1, tile=tile, overlap=0.25,
                                  blend=blend, batch_size=3)
        assert tiled.shape == whole.shape == (45, 58, 3)
        mask = _safe_mask(x.shape[:2], tile, 0.25, radius)
        assert mask.mean() > 0.4
        np.testing.assert_allclose(tiled[mask], whole[mask], atol=1e-5)
        # and the windows did change the pixels near their edges: the check can fail
        assert np.abs(tiled - whole).max() > 1e-3


def test_fixed_size_model_runs_on_windows_of_its_size():
    dynamic = _fcn()
    fixed = _fcn(input_shape=(16, 16))
    fixed.set_weights(dynamic.get_weights())
    x = _rand(13, 40, 3)  # shorter than the model's 16 rows, longer than its 16 columns
    out = inference.predict(fixed, x, output="logits", blend="mean", overlap=0.5)
    ref = inference.predict(dynamic, x, output="logits", stride=1)
    assert out.shape == (13, 40, 3)
    # rows: one window padded from 13 to 16 rows (rows 11-12 see the padding); columns:
    # windows of 16 at steps of 8
    mask = _safe_mask((16, 40), (16, 16), 0.5, 2)[:11]
    assert mask.sum() > 50
    np.testing.assert_allclose(out[:11][mask], ref[:11][mask], atol=1e-5)
    with pytest.raises(ValueError, match="takes only"):
        inference.predict(fixed, x, tile=32)


def test_odd_sizes_coarse_output_padding_and_resize():
    model = _coarse()
    x = _rand(37, 51, 3)
    out = inference.predict(model, x, output="logits")  # default stride 32: padded to 64x64
    assert out.shape == (37, 51, 3) and out.dtype == np.float32
    padded = np.zeros((64, 64, 3), "float32")
    padded[:37, :51] = x
    coarse = _call(model, padded)
    assert coarse.shape == (16, 16, 3)
    ref = keras.ops.convert_to_numpy(keras.ops.image.resize(
        coarse[None], (64, 64), interpolation="bilinear", antialias=False))[0, :37, :51]
    np.testing.assert_allclose(out, ref, atol=1e-5)
    classes = inference.predict(model, x)
    assert classes.shape == (37, 51) and classes.dtype == np.int32
    np.testing.assert_array_equal(classes, np.argmax(ref, -1))
    probs = inference.predict(model, x, output="probabilities")
    np.testing.assert_allclose(probs, _softmax(ref), atol=1e-5)


def test_list_batch_uint8_and_preprocess():
    model = _fcn()
    images = [_rand(20, 24, 3, seed=1), _rand(11, 17, 3, seed=2), _rand(20, 24, 3, seed=3)]
    singles = [inference.predict(model, im, output="logits", stride=1) for im in images]
    listed = inference.predict(model, images, output="logits", stride=1, batch_size=2)
    assert isinstance(listed, list) and [a.shape[:2] for a in listed] == [(20, 24), (11, 17),
                                                                          (20, 24)]
    for a, b in zip(listed, singles, strict=True):
        np.testing.assert_allclose(a, b, atol=1e-6)
    batch = np.stack([images[0], images[2]])
    stacked = inference.predict(model, batch, output="logits", stride=1, batch_size=2)
    assert stacked.shape == (2, 20, 24, 3)
    np.testing.assert_allclose(stacked[1], singles[2], atol=1e-6)
    # uint8 is divided by 255; preprocess replaces that
    as_uint8 = (images[1] * 255).round().astype(np.uint8)
    np.testing.assert_allclose(
        inference.predict(model, as_uint8, output="logits", stride=1),
        _call(model, as_uint8.astype("float32") / 255.0), atol=1e-5)
    np.testing.assert_allclose(
        inference.predict(model, as_uint8, output="logits", stride=1,
                          preprocess=lambda im: im / 127.5 - 1.0),
        _call(model, as_uint8.astype("float32") / 127.5 - 1.0), atol=1e-5)


def test_flip_tta_is_symmetric_on_a_symmetric_input():
    model = _fcn()
    half = _rand(24, 16, 3)
    x = np.concatenate([half, half[:, ::-1]], axis=1)  # mirror-symmetric image
    sym = inference.predict(model, x, output="probabilities", flip=True, stride=1)
    np.testing.assert_allclose(sym, sym[:, ::-1], atol=1e-6)
    plain = inference.predict(model, x, output="probabilities", stride=1)
    assert np.abs(plain - plain[:, ::-1]).max() > 1e-3  # the model itself is not symmetric
    # flip TTA = mean of the softmax of both views, the flipped one flipped back
    y = _rand(24, 32, 3, seed=5)
    ref = 0.5 * (_softmax(_call(model, y)) + _softmax(_call(model, y[:, ::-1]))[:, ::-1])
    np.testing.assert_allclose(
        inference.predict(model, y, output="probabilities", flip=True, stride=1), ref,
        atol=1e-5)


def test_multi_scale_averages_probabilities_at_the_input_size():
    model = _fcn()
    x = _rand(40, 48, 3)
    scales = (0.5, 1.0, 1.5)
    out = inference.predict(model, x, output="probabilities", scales=scales, stride=1)
    assert out.shape == (40, 48, 3)
    ref = 0
    for s in scales:
        xs = keras.ops.convert_to_numpy(keras.ops.image.resize(
            x[None], (int(40 * s), int(48 * s)), interpolation="bilinear", antialias=False))[0]
        logits = keras.ops.convert_to_numpy(keras.ops.image.resize(
            _call(model, xs)[None], (40, 48), interpolation="bilinear", antialias=False))[0]
        ref = ref + _softmax(logits) / len(scales)
    np.testing.assert_allclose(out, ref, atol=1e-5)
    # odd size, TTA scales and flip: still the input's size; logits = log of the average
    y = _rand(37, 51, 3)
    logits = inference.predict(model, y, output="logits", scales=(0.75, 1.25), flip=True,
                               batch_size=2)
    assert logits.shape == (37, 51, 3)
    np.testing.assert_allclose(np.exp(logits).sum(-1), 1.0, atol=1e-4)


def test_overlap_tile_for_valid_unet():
    model = UNet(3, filters=4, depth=2, padding="valid")
    margin = (64 - unet_valid_output_side(64, 2)) // 2  # 20
    x = _rand(37, 51, 3)
    # 24-pixel output tiles, 2 x 3 of them
    tiled = inference.predict(model, x, output="logits", tile=64, batch_size=6)
    one = inference.predict(model, x, output="logits")  # default: one tile covers it
    assert tiled.shape == one.shape == (37, 51, 3)
    # reference: one valid pass on the image mirrored by the margin (Ronneberger Fig. 2),
    # padded at the bottom / right to a (square: the default tile's shape) side that tiles
    side = max(x.shape[:2]) + 2 * margin
    while unet_valid_output_side(side, 2) != side - 2 * margin:
        side += 1
    mirrored = np.pad(x, ((margin, side - 37 - margin), (margin, side - 51 - margin), (0, 0)),
                      mode="reflect")
    ref = _call(model, mirrored)[:37, :51]
    np.testing.assert_allclose(tiled, ref, atol=1e-4)
    np.testing.assert_allclose(one, ref, atol=1e-4)
    with pytest.raises(ValueError, match=r"tiles exactly.*\[60, 64, 68, 72\]"):
        inference.predict(model, x, tile=65)


def test_dict_output_model_uses_its_logits():
    model = UNet(3, filters=4, depth=2, deep_supervision=True, dropout=0)
    x = _rand(37, 51, 3)
    out = inference.predict(model, x, output="logits")
    ref = np.asarray(model.predict_on_batch(x[None])["logits"])[0]
    np.testing.assert_allclose(out, ref, atol=1e-5)


def test_bad_input_raises_clear_errors():
    model = _fcn()
    x = _rand(20, 20, 3)
    with pytest.raises(ValueError, match="4 channels.*takes 3"):
        inference.predict(model, _rand(20, 20, 4))
    with pytest.raises(ValueError, match="expected one image"):
        inference.predict(model, _rand(1, 2, 20, 20, 3))
    with pytest.raises(ValueError, match="expected one image"):
        inference.predict(model, _rand(20, 20))  # grayscale for an RGB model
    with pytest.raises(ValueError, match="Image 1 of the list"):
        inference.predict(model, [x, _rand(20)])
    bad = x.copy()
    bad[3, 4, 1] = np.nan
    with pytest.raises(ValueError, match="NaN"):
        inference.predict(model, [x, bad])
    with pytest.raises(ValueError, match="smaller than the model's stride 32"):
        inference.predict(model, x, tile=16)
    with pytest.raises(ValueError, match="dtype int16"):
        inference.predict(model, x.astype(np.int16))
    with pytest.raises(ValueError, match="empty list"):
        inference.predict(model, [])
    with pytest.raises(ValueError, match="output must be"):
        inference.predict(model, x, output="scores")
    with pytest.raises(ValueError, match="overlap"):
        inference.predict(model, x, overlap=1.0)
    with pytest.raises(ValueError, match="scales"):
        inference.predict(model, x, scales=(1.0, -0.5))
    with pytest.raises(ValueError, match="not a segmentation model"):
        classifier = keras.Sequential([keras.Input((8, 8, 3)), keras.layers.Flatten(),
                                       keras.layers.Dense(2)])  # output (batch, 2)
        inference.predict(classifier, _rand(8, 8, 3))


def test_crf_refines_the_probabilities_with_dense_crf():
    from keras_seg.inference.crf import dense_crf

    model = _fcn()
    image = (_rand(20, 24, 3) * 255).round().astype(np.uint8)
    options = {"iterations": 3, "theta_alpha": 10.0}
    probs = inference.predict(model, image, output="probabilities", stride=1)
    ref = dense_crf(image, probs, **options)
    out = inference.predict(model, image, output="probabilities", stride=1, crf=True,
                            crf_options=options)
    np.testing.assert_allclose(out, ref, atol=1e-5)
    assert np.abs(out - probs).max() > 1e-3  # the CRF changed something
    # a float image in [0, 1] reaches the CRF as the same uint8 colors
    classes = inference.predict(model, image.astype("float32") / 255, stride=1, crf=True,
                                crf_options=options)
    np.testing.assert_array_equal(classes, np.argmax(ref, -1))

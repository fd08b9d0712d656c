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
from keras_seg.inference import predictor as predictor_module
from keras_seg.layers import CropToReference, PadToMultiple

_model_stride = predictor_module._model_stride
_output_side = predictor_module._output_side
_probe_valid = predictor_module._probe_valid


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


# ------------------------------------------------------------------ Predictor and geometry

_PROBES = ("_model_stride", "_probe_valid_padding", "_probe_valid", "_output_side")


def _forbid(monkeypatch, names=_PROBES):
    """Make the graph-probing functions raise: a declared geometry must not need them."""
    def probed(*args, **kwargs):
        raise AssertionError("the graph was probed")

    for name in names:
        monkeypatch.setattr(predictor_module, name, probed)


def _padded(multiple, classes=3, **geometry):
    """PadToMultiple(multiple), two bias-free 3x3 convs, cropped back to the input.

    A :class:`keras_seg.SegmentationModel` declaring ``geometry`` when given, else a
    plain ``keras.Model`` (declares nothing).
    """
    inputs = keras.Input((None, None, 3))
    x = PadToMultiple(multiple)(inputs)
    x = keras.layers.Conv2D(4, 3, padding="same", use_bias=False, activation="relu")(x)
    x = keras.layers.Conv2D(classes, 3, padding="same", use_bias=False)(x)
    x = CropToReference()([x, inputs])
    if geometry:
        return keras_seg.SegmentationModel(inputs, x, **geometry)
    return keras.Model(inputs, x)


def _foreign(model):
    """The same graph and weights as a plain keras.Model, which declares nothing."""
    return keras.Model(model.inputs[0], model.outputs[0])


def test_predictor_equals_predict_and_holds_its_settings():
    model, unet = _fcn(), UNet(3, filters=4, depth=2, padding="valid")
    x = _rand(37, 51, 3)
    images = [_rand(20, 24, 3, seed=1), (_rand(11, 17, 3, seed=2) * 255).astype(np.uint8)]
    cases = [(model, x, dict(output="logits", stride=1, tile=(16, 24), overlap=0.25)),
             (_coarse(), x, dict(output="probabilities", scales=(0.75, 1.25), flip=True,
                                 batch_size=2)),
             (model, images, dict(output="logits", pad_mode="reflect", blend="mean")),
             (unet, x, dict(output="logits", tile=64, batch_size=6)),
             (model, images[1], dict(crf=True, crf_options={"iterations": 2}, stride=1))]
    for net, data, settings in cases:
        predictor = inference.Predictor(net, **settings)
        expected = inference.predict(net, data, **settings)
        for got in (predictor(data), predictor.predict(data), predictor(data)):
            assert type(got) is type(expected)
            for a, b in zip(got if isinstance(got, list) else [got],
                            expected if isinstance(expected, list) else [expected],
                            strict=True):
                assert a.dtype == b.dtype
                np.testing.assert_array_equal(a, b)
    predictor = inference.Predictor(model, scales=[1, 0.5], tile=40, flip=1, batch_size=np.int64(3))
    assert predictor.scales == (1.0, 0.5) and predictor.tile == (40, 40)
    assert predictor.flip is True and predictor.batch_size == 3 and predictor.crf is False
    assert predictor.net is model and predictor.model is model
    assert (predictor.channels, predictor.num_classes) == (3, 3)
    assert predictor.stride == inference.DEFAULT_STRIDE and predictor.valid_padding is False
    assert "tile=(40, 40)" in repr(predictor)
    with pytest.raises(AttributeError, match="build a new Predictor"):
        predictor.tile = 8
    # a dict-output model runs its "logits" output
    assert inference.Predictor(UNet(3, filters=4, depth=2, deep_supervision=True)).net \
        .outputs[0].shape[-1] == 3


def test_settings_are_checked_once_at_construction(monkeypatch):
    model = _fcn()
    bad = [(dict(output="scores"), "output must be"), (dict(blend="max"), "blend must be"),
           (dict(pad_mode="edge"), "pad_mode must be"), (dict(overlap=1.0), "overlap"),
           (dict(batch_size=0), "batch_size must be"), (dict(scales=(1.0, -0.5)), "scales"),
           (dict(scales=()), "scales"), (dict(crf_options=[1]), "crf_options must be a dict"),
           (dict(crf_options={"iteration": 3}), r"names \['iteration'\]"),
           (dict(crf_options={"from_logits": True}), "from_logits"),
           (dict(crf_options={"w1": -1.0}), "crf_options: w1 must be"),
           (dict(preprocess="unit"), "preprocess must be a callable"),
           (dict(stride=0), "stride must be"), (dict(valid_padding="yes"), "valid_padding"),
           (dict(tile=16), "smaller than the model's stride 32"), (dict(tile=(8, 8, 8)), "tile")]
    for settings, message in bad:
        with pytest.raises(ValueError, match=message):
            inference.Predictor(model, **settings)
    with pytest.raises(ValueError, match="not a segmentation model"):
        inference.Predictor(keras.Sequential([keras.Input((8, 8, 3)), keras.layers.Flatten(),
                                              keras.layers.Dense(2)]))
    with pytest.raises(ValueError, match="must be a keras.Model"):
        inference.Predictor("model.keras")
    unet = UNet(3, filters=4, depth=2, padding="valid")
    with pytest.raises(ValueError, match=r"tiles exactly.*\[60, 64, 68, 72\]"):
        inference.Predictor(unet, tile=65)  # before any image
    # once checked, predicting checks no setting again and resolves no geometry again
    predictor = inference.Predictor(model, output="probabilities", tile=32, overlap=0.5,
                                    scales=(1.0, 0.5), crf=True, crf_options={"iterations": 1})
    tiler = inference.Predictor(unet, output="logits", tile=64)
    x = _rand(40, 44, 3)
    expected, expected_tiled = predictor(x), tiler(x)

    def checked_again(*args, **kwargs):
        raise AssertionError("a setting was checked again")

    for name in ("_check_scales", "_check_tile", "_check_crf_options",
                 "_check_valid_tile", "_resolve_geometry", "_inference"):
        monkeypatch.setattr(predictor_module, name, checked_again)
    monkeypatch.setattr(predictor_module.validation, "positive_int", checked_again)
    np.testing.assert_array_equal(predictor(x), expected)
    np.testing.assert_array_equal(tiler(x), expected_tiled)


def test_declared_geometry_is_read_not_probed(monkeypatch):
    declared = _padded(8, output_stride=8, padding="same")
    foreign = _foreign(declared)
    x = _rand(21, 27, 3)
    probed = inference.Predictor(foreign, output="logits", pad_mode="reflect")
    assert probed.stride == 8 and not probed.geometry.declared  # its PadToMultiple(8)
    expected = probed(x)
    unet = UNet(3, filters=4, depth=2, padding="valid")
    unet_declared = keras_seg.SegmentationModel(unet.inputs[0], unet.outputs[0], output_stride=4,
                                                padding="valid")
    unet_probed = inference.Predictor(_foreign(unet), output="logits")
    expected_unet = unet_probed(x)
    _forbid(monkeypatch)
    with pytest.raises(AssertionError, match="probed"):  # the trap is set
        inference.Predictor(_foreign(declared))
    predictor = inference.Predictor(declared, output="logits", pad_mode="reflect")
    assert predictor.geometry.declared and predictor.stride == 8
    assert predictor.valid_padding is False
    np.testing.assert_array_equal(predictor(x), expected)
    # explicit arguments override the declaration
    assert inference.Predictor(declared, stride=4).stride == 4
    assert inference.Predictor(declared, stride=4, valid_padding=False).geometry.declared
    # a dict-output model keeps its declaration in its inference model
    inputs = keras.Input((None, None, 3))
    heads = {"logits": keras.layers.Conv2D(2, 1)(inputs),
             "aux": keras.layers.Conv2D(2, 1, strides=2)(inputs)}
    multi = keras_seg.SegmentationModel(inputs, heads, output_stride=16, padding="same")
    assert inference.Predictor(multi).stride == 16
    # declared unpadded: stride and padding read; margin and period measured by shape
    # inference (the declaration does not say how many pixels the convolutions lose)
    _forbid(monkeypatch, ("_model_stride", "_probe_valid_padding"))
    monkeypatch.setattr(predictor_module, "_probe_valid", _probe_valid)
    monkeypatch.setattr(predictor_module, "_output_side", _output_side)
    valid = inference.Predictor(unet_declared, output="logits")
    assert valid.valid_padding and valid.geometry.declared and valid.stride == 4
    assert (valid.geometry.margin, valid.geometry.period) == (
        unet_probed.geometry.margin, unet_probed.geometry.period) == (20, 4)
    np.testing.assert_array_equal(valid(x), expected_unet)


def test_declared_geometry_survives_keras_save_and_load(tmp_path, monkeypatch):
    model = _padded(8, output_stride=8, padding="same")
    path = str(tmp_path / "declared.keras")
    model.save(path)
    loaded = keras.saving.load_model(path)
    assert isinstance(loaded, keras_seg.SegmentationModel)
    x = _rand(13, 30, 3)
    expected = inference.predict(model, x, output="logits", pad_mode="reflect")
    _forbid(monkeypatch)
    predictor = inference.Predictor(loaded, output="logits", pad_mode="reflect")
    assert predictor.geometry.declared and predictor.stride == 8
    np.testing.assert_allclose(predictor(x), expected, atol=1e-6)


def test_foreign_model_is_still_probed(monkeypatch):
    calls = []

    def counting(net):
        calls.append(net.name)
        return _model_stride(net)

    monkeypatch.setattr(predictor_module, "_model_stride", counting)
    plain = inference.Predictor(_fcn(name="plain"))
    assert plain.stride == inference.DEFAULT_STRIDE and not plain.geometry.declared
    padded = _padded(16)
    predictor = inference.Predictor(padded, output="logits")
    assert predictor.stride == 16 and not predictor.geometry.declared
    assert calls == ["plain", padded.name]
    x = _rand(21, 27, 3)
    # reference: zero-padded to 32 x 32 by hand, one direct pass, cropped
    padded_x = np.zeros((32, 32, 3), "float32")
    padded_x[:21, :27] = x
    np.testing.assert_allclose(predictor(x), _call(padded, padded_x)[:21, :27], atol=1e-5)
    inference.Predictor(padded)  # probed once per model, not once per Predictor
    assert calls == ["plain", padded.name]
    unet = _foreign(UNet(3, filters=4, depth=2, padding="valid"))
    valid = inference.Predictor(unet)
    assert valid.valid_padding and not valid.geometry.declared
    assert (valid.geometry.margin, valid.geometry.period) == (20, 4)


def test_declared_stride_is_used_as_declared():
    """A declared output_stride wins over the graph's own PadToMultiple (nothing walks the
    graph to second-guess a declaration); the model's layer pads the rest itself."""
    declared = _padded(16, output_stride=8, padding="same")  # PadToMultiple(16) inside
    foreign = _foreign(declared)
    x = _rand(23, 31, 3)  # 24 x 32 at stride 8; 32 x 32 at 16
    predictor = inference.Predictor(declared, output="logits", pad_mode="reflect")
    assert predictor.stride == 8
    got = predictor(x)
    np.testing.assert_array_equal(
        got, inference.predict(foreign, x, output="logits", pad_mode="reflect", stride=8))
    # reflect-padding to 24 rows (then zeros from the model's own layer) is not reflect-
    # padding to 32 rows: the probed stride 16 gives other numbers near the bottom edge
    probed = inference.predict(foreign, x, output="logits", pad_mode="reflect")
    assert inference.Predictor(foreign).stride == 16
    assert np.abs(got - probed).max() > 1e-4
    np.testing.assert_allclose(got[:20], probed[:20], atol=1e-5)

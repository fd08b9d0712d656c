"""The shared model test harness: ``check_model`` runs once per case of ``tiny_models.py``
(``tests/models/test_all_models.py``).

In the spirit of segmentation_models.pytorch's ``BaseModelTester``: one helper
that checks, at a small width and an odd input size, that a builder gives
float32 logits of the right shape and declares its geometry (output stride,
padding), trains (``fit`` lowers the loss on a fixed tiny batch), survives a
``.keras`` round trip with identical outputs, the same declared geometry and no
``custom_objects``, has the expected number of trainable parameters, and works
under a mixed-precision policy.
"""

import os

import keras
import numpy as np

from keras_seg.losses import SegmentationCrossEntropy
from keras_seg.model_base import SegmentationModel, model_geometry

MIXED_POLICY = "mixed_bfloat16"


def trainable_params(model):
    return int(sum(np.prod(w.shape) for w in model.trainable_weights))


def main_output(outputs):
    """The main output of a model: the tensor itself, or the ``"logits"`` entry of a
    dict of named outputs (auxiliary / deep-supervision heads)."""
    if isinstance(outputs, dict):
        return outputs["logits"]
    return outputs


def check_geometry(geometry, *, output_stride=None, padding="same"):
    """``geometry`` (from ``model_geometry``) declares a positive int stride and ``padding``."""
    assert isinstance(geometry, dict), f"the model declares no geometry: {geometry!r}"
    stride = geometry["output_stride"]
    assert isinstance(stride, int) and not isinstance(stride, bool) and stride >= 1, (
        f"declared output_stride {stride!r} is not a positive int")
    if output_stride is not None:
        assert stride == output_stride, f"declared output_stride {stride} != {output_stride}"
    assert geometry["padding"] == padding, (
        f"declared padding {geometry['padding']!r} != {padding!r}")


def check_model(
    build,
    *,
    num_classes,
    tmp_path,
    input_size=(97, 75),
    channels=3,
    batch=2,
    expected_trainable_params=None,
    output_size=None,
    fit_epochs=4,
    learning_rate=1e-2,
    check_mixed_precision=True,
    output_stride=None,
    padding="same",
):
    """Run the shared checks on ``build() -> keras.Model``.

    Args:
        build: zero-argument callable returning a fresh model (called again under
            the mixed-precision policy).
        num_classes: the number of classes the model was built for.
        tmp_path: a directory for the ``.keras`` file.
        input_size: ``(H, W)`` of the test batch; odd by default.
        channels: input channels.
        batch: batch size.
        expected_trainable_params: if given, the exact trainable parameter count.
        output_size: expected ``(H', W')`` of the logits (default: ``input_size``).
        fit_epochs: epochs of ``fit`` on the fixed batch (one step each).
        learning_rate: SGD (momentum 0.9) learning rate for the fit check. SGD
            rather than Adam because tracing Adam's update costs TensorFlow 40% more
            time on 2 CPU cores; the point is a compiled ``fit`` that learns.
        check_mixed_precision: also build and run under ``MIXED_POLICY``.
        output_stride: if given, the ``output_stride`` the model must declare (it must
            declare a positive int in any case).
        padding: the ``padding`` the model must declare ("valid": unpadded convolutions).

    Returns:
        The model built in float32 (for further checks by the caller).
    """
    h, w = input_size
    out_h, out_w = output_size or input_size
    rng = np.random.default_rng(0)
    x = rng.uniform(0, 1, (batch, h, w, channels)).astype("float32")
    # labels that depend on the image, so there is something to learn
    y = (x[..., 0] * num_classes).astype("int32").clip(0, num_classes - 1)
    if (out_h, out_w) != (h, w):
        top, left = (h - out_h) // 2, (w - out_w) // 2
        y = y[:, top : top + out_h, left : left + out_w]

    model = build()

    # 0. declared geometry (keras_seg.model_base.model_geometry)
    geometry = model_geometry(model)
    check_geometry(geometry, output_stride=output_stride, padding=padding)

    # 1. forward (compiled, as users predict): float32 logits of the right shape
    predictions = model.predict(x, verbose=0)
    logits = main_output(predictions)
    assert tuple(logits.shape) == (batch, out_h, out_w, num_classes), (
        f"logits shape {tuple(logits.shape)} != {(batch, out_h, out_w, num_classes)}"
    )
    assert logits.dtype == np.float32
    assert np.isfinite(logits).all()

    # 2. trainable parameter count
    if expected_trainable_params is not None:
        assert trainable_params(model) == expected_trainable_params, (
            f"trainable params {trainable_params(model)} != {expected_trainable_params}"
        )

    # 3. fit lowers the loss on a fixed tiny batch
    loss = keras.losses.SparseCategoricalCrossentropy(from_logits=True)
    if isinstance(predictions, dict):
        # deep supervision: a SegmentationModel trains every named head on the one label
        # map (resized by nearest neighbour to each head), weighted as the paper says
        for key, pred in predictions.items():
            assert pred.dtype == np.float32, f"output {key!r} is {pred.dtype}, not float32"
        assert isinstance(model, SegmentationModel), type(model)
        loss = SegmentationCrossEntropy()
    model.compile(optimizer=keras.optimizers.SGD(learning_rate, momentum=0.9), loss=loss)
    history = model.fit(x, y, batch_size=batch, epochs=fit_epochs, verbose=0, shuffle=False)
    losses = history.history["loss"]
    assert np.isfinite(losses).all(), f"non-finite loss: {losses}"
    assert losses[-1] < losses[0], f"loss did not decrease: {losses}"

    # 4. .keras round trip: identical outputs, no custom_objects
    path = os.path.join(str(tmp_path), "model.keras")
    model.save(path)
    reloaded = keras.saving.load_model(path)
    assert model_geometry(reloaded) == geometry, (
        f"reloaded geometry {model_geometry(reloaded)} != {geometry}")
    before = main_output(model.predict(x, verbose=0))
    after = main_output(reloaded.predict(x, verbose=0))
    np.testing.assert_allclose(after, before, rtol=1e-5, atol=1e-5)

    # 5. mixed precision: still float32 logits, finite
    if check_mixed_precision:
        keras.config.set_dtype_policy(MIXED_POLICY)
        try:
            mixed = build()
            assert model_geometry(mixed) == geometry
            out = main_output(mixed.predict(x, verbose=0))
            assert out.dtype == np.float32
            assert tuple(out.shape) == (batch, out_h, out_w, num_classes)
            assert np.isfinite(out).all()
        finally:
            keras.config.set_dtype_policy("float32")
    return model

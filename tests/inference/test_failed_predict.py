"""A failed prediction never leaves a model unusable (Keras 3.15's JAX ``predict`` does)."""

import keras
import numpy as np
import pytest

from keras_seg import inference
from keras_seg.applications import UNet
from keras_seg.inference.predictor import _forward

GOOD = np.random.default_rng(0).uniform(0, 1, (1, 24, 20, 3)).astype("float32")
WRONG_CHANNELS = np.zeros((1, 24, 20, 4), "float32")


def _model():
    return UNet(2, filters=4, depth=2)


def test_bad_input_is_refused_before_the_model_runs_and_the_model_still_works():
    model = _model()
    expected = keras.ops.convert_to_numpy(model(GOOD))[0].argmax(-1)
    predictor = inference.Predictor(model)
    for call in (lambda x: inference.predict(model, x), predictor.predict):
        with pytest.raises(ValueError, match="has 4 channels .* but the model takes 3"):
            call(WRONG_CHANNELS[0])
        np.testing.assert_array_equal(call(GOOD[0]), expected)


def test_a_failing_forward_pass_leaves_the_model_usable():
    # keras-seg's own forward pass: a call that fails inside the model must not detach
    # the weights (on JAX, Keras 3.15's model.predict does; predict_on_batch does not)
    model = _model()
    with pytest.raises(ValueError):
        _forward(model, WRONG_CHANNELS, 1)
    np.testing.assert_allclose(_forward(model, GOOD, 1),
                               keras.ops.convert_to_numpy(model(GOOD)), rtol=1e-5, atol=1e-6)


@pytest.mark.skipif(keras.backend.backend() != "jax",
                    reason="the detached-weights failure is the JAX trainer's")
def test_model_broken_by_a_failed_keras_predict_gets_a_clear_error():
    model = _model()
    with pytest.raises(ValueError):
        model.predict(WRONG_CHANNELS, verbose=0)  # Keras 3.15 JAX: weights now detached
    with pytest.raises(RuntimeError, match="lost its weights: an earlier model.predict"):
        inference.predict(model, GOOD[0])

"""Helper for the tests that build paper-size models only to count their parameters."""

import keras

_RANDOM = ("VarianceScaling", "RandomNormal", "RandomUniform", "TruncatedNormal")


def zero_init(monkeypatch):
    """Make the random initializers return zeros for the rest of the test.

    Parameter counts do not depend on the initial values, and drawing ~10^8 random
    numbers eagerly costs JAX (with the test suite's XLA flags) half a minute.
    """

    def zeros(self, shape, dtype=None):
        return keras.ops.zeros(shape, dtype=dtype or keras.backend.floatx())

    for name in _RANDOM:
        monkeypatch.setattr(getattr(keras.initializers, name), "__call__", zeros)

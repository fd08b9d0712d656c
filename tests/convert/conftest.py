"""The conversion tests build full-size networks (ResNet-50 / 101 on both the Keras and the
PyTorch side); each test releases what it built, so that a backend's test process does not
grow by gigabytes (an earlier run was killed for memory at 14 GB with two backends in
parallel)."""

import gc

import keras
import pytest


@pytest.fixture(autouse=True)
def _release_models():
    yield
    keras.backend.clear_session(free_memory=True)
    gc.collect()

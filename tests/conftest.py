import os

os.environ.setdefault("KERAS_BACKEND", "tensorflow")
# Tests compile many small models once each: on JAX, XLA's LLVM optimisation
# dominates (2.6x the test time on 2 cores). Level 0 compiles fast and computes
# the same numbers; it is for the test suite only, never set by the package.
os.environ.setdefault(
    "XLA_FLAGS", "--xla_backend_optimization_level=0 --xla_llvm_disable_expensive_passes=true"
)
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

import keras  # noqa: E402
import pytest  # noqa: E402


@pytest.fixture(autouse=True)
def _fresh_keras_state():
    """Every test starts from the float32 policy, a cleared session and a fixed seed."""
    keras.config.set_dtype_policy("float32")
    # No forced full garbage collection (free_memory=True): its cost grows with every
    # model traced before (TensorFlow keeps ~20-60k objects per compiled fit alive), up
    # to ~1 s per test late in a run; Python's own collector frees the rest.
    keras.backend.clear_session(free_memory=False)
    keras.utils.set_random_seed(0)
    yield
    keras.config.set_dtype_policy("float32")


def pytest_report_header(config):
    return f"keras {keras.__version__}, backend {keras.backend.backend()}"

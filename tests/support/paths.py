"""Where the repository's runnable scripts are, for the tests that run them."""

import os

#: the repository root (tests/support/ -> tests/ -> root)
REPO_ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
TUTORIALS = os.path.join(REPO_ROOT, "tutorials")
BENCHMARKS = os.path.join(REPO_ROOT, "benchmarks")


def load_script(path, name):
    """The module of the script at ``path`` (a tutorial or a benchmark), imported under
    ``name`` without running its ``__main__`` block."""
    import importlib.util

    spec = importlib.util.spec_from_file_location(name, path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module

"""Where the repository's runnable scripts are, for the tests that run them."""

import os

#: the repository root (tests/support/ -> tests/ -> root)
REPO_ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
TUTORIALS = os.path.join(REPO_ROOT, "tutorials")
BENCHMARKS = os.path.join(REPO_ROOT, "benchmarks")

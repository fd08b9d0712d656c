"""Helpers shared by the tests (not tests): imported as ``from support.harness import ...``
(``pythonpath = ["tests"]`` in pyproject.toml)."""

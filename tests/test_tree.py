"""The layout of tests/ (tests/README.md): folders that mirror the package, helpers in
support/, and no test module that imports another (a shared helper belongs in support/)."""

import ast
import os
import re

TESTS = os.path.dirname(os.path.abspath(__file__))
#: test modules that may sit at the top (the rest sit in the folders of tests/README.md)
TOP_LEVEL_TESTS = {"test_tree.py"}


def _folders():
    return sorted(d for d in os.listdir(TESTS)
                  if os.path.isdir(os.path.join(TESTS, d)) and not d.startswith((".", "__")))


def _python_files():
    for root, dirs, files in os.walk(TESTS):
        dirs[:] = [d for d in dirs if not d.startswith((".", "__"))]
        for name in files:
            if name.endswith(".py"):
                yield os.path.join(root, name)


def _imported_modules(path):
    with open(path) as f:
        tree = ast.parse(f.read(), path)
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            yield from (alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom):
            yield "." * node.level + (node.module or "")


def test_no_test_module_imports_another():
    test_packages = set(_folders()) - {"support"}
    offenders = []
    for path in _python_files():
        for module in _imported_modules(path):
            parts = module.split(".")
            if module.startswith(".") and os.path.basename(os.path.dirname(path)) == "support":
                continue  # support/'s own modules import each other relatively
            if (module.startswith(".") or parts[0] in test_packages or parts[0] == "conftest"
                    or any(p.startswith("test_") for p in parts)):
                offenders.append(f"{os.path.relpath(path, TESTS)} imports {module}")
    assert not offenders, "move what they share into tests/support/:\n" + "\n".join(offenders)


def test_support_holds_helpers_only():
    names = os.listdir(os.path.join(TESTS, "support"))
    assert not [n for n in names if n.startswith("test_")], names


def test_every_test_module_sits_in_a_folder():
    top = {n for n in os.listdir(TESTS) if n.startswith("test_") and n.endswith(".py")}
    assert top <= TOP_LEVEL_TESTS, sorted(top - TOP_LEVEL_TESTS)


def test_readme_lists_every_folder():
    with open(os.path.join(TESTS, "README.md")) as f:
        listed = set(re.findall(r"^\| `([a-z_]+)/` \|", f.read(), flags=re.M))
    assert listed == set(_folders()), (sorted(set(_folders()) - listed),
                                       sorted(listed - set(_folders())))

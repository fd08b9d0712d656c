"""Run the test suite once per Keras backend (TensorFlow, JAX, PyTorch).

Usage: ``python tests/run_all_backends.py [--backends tensorflow,jax,torch] [pytest args]``.
Each backend runs in its own process (``KERAS_BACKEND`` is read at import time).
Exits non-zero if any backend has a failure or an error, or ran no test.
"""

import argparse
import os
import subprocess
import sys
import tempfile
import time
import xml.etree.ElementTree as ET

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(HERE)


def run_backend(backend, pytest_args):
    with tempfile.TemporaryDirectory() as tmp:
        report = os.path.join(tmp, "report.xml")
        env = dict(os.environ, KERAS_BACKEND=backend)
        cmd = [sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider",
               f"--junitxml={report}", "--durations=10", *pytest_args]
        print(f"\n===== KERAS_BACKEND={backend}: {' '.join(cmd)}", flush=True)
        start = time.time()
        code = subprocess.call(cmd, cwd=ROOT, env=env)
        elapsed = time.time() - start
        counts = {"tests": 0, "failures": 0, "errors": 0, "skipped": 0}
        if os.path.exists(report):
            root = ET.parse(report).getroot()
            suites = [root] if root.tag == "testsuite" else list(root)
            for suite in suites:
                for key in counts:
                    counts[key] += int(suite.get(key, 0))
    return code, counts, elapsed


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--backends", default="tensorflow,jax,torch")
    args, pytest_args = parser.parse_known_args()
    results = {}
    for backend in args.backends.split(","):
        results[backend] = run_backend(backend, pytest_args or ["tests"])
    print("\n===== summary")
    passed = failed = skipped = 0
    ok = True
    for backend, (code, c, elapsed) in results.items():
        bad = c["failures"] + c["errors"]
        good = c["tests"] - bad - c["skipped"]
        passed, failed, skipped = passed + good, failed + bad, skipped + c["skipped"]
        status = "ok" if code == 0 and c["tests"] > 0 else "FAILED"
        ok &= status == "ok"
        print(f"{backend:<11} {status:<7} {good} passed, {bad} failed, {c['skipped']} skipped "
              f"in {elapsed:.0f} s (pytest exit code {code})")
    print(f"{passed} passed, {failed} failed, {skipped} skipped")
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())

"""Run the test suite once per Keras backend (TensorFlow, JAX, PyTorch).

Usage: ``python tests/run_all_backends.py [--backends tensorflow,jax,torch] [--parallel N]
[pytest args]``. Each backend runs in its own process (``KERAS_BACKEND`` is read at import
time). With ``--parallel N`` up to N backends run at once: most of the suite's time is
single-threaded tracing and compiling, so two processes on two cores finish much sooner. The
default is 2 on a machine with at least 40 GiB of memory and 1 otherwise: one backend's
process peaks at about 15 GB (the README's example exports a full-size DeepLab v3 to ONNX,
and tf2onnx takes about 10 GB for it), and two such processes on a 24 GiB machine were
killed for memory.
Parallel runs get one math thread each (``OMP_NUM_THREADS=1``): oversubscribed OpenMP /
BLAS threads made PyTorch steps 10-25x slower here. Each backend's output is printed when it
ends.
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


def run_backend(backend, pytest_args, capture=False, single_thread=False):
    with tempfile.TemporaryDirectory() as tmp:
        report = os.path.join(tmp, "report.xml")
        env = dict(os.environ, KERAS_BACKEND=backend)
        if single_thread:
            env.update(OMP_NUM_THREADS="1", OPENBLAS_NUM_THREADS="1", MKL_NUM_THREADS="1")
        cmd = [sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider",
               f"--junitxml={report}", "--durations=10", *pytest_args]
        print(f"\n===== KERAS_BACKEND={backend}: {' '.join(cmd)}", flush=True)
        start = time.time()
        if capture:
            log_path = os.path.join(tmp, "log.txt")
            with open(log_path, "w") as log:
                code = subprocess.call(cmd, cwd=ROOT, env=env, stdout=log,
                                       stderr=subprocess.STDOUT)
            with open(log_path) as log:
                print(f"\n===== output of KERAS_BACKEND={backend}\n{log.read()}", flush=True)
        else:
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


#: memory a machine needs for two backends at once (each process peaks at about 15 GB)
PARALLEL_MEMORY_GIB = 40


def _default_parallel():
    try:
        with open("/proc/meminfo") as f:
            total_kib = int(next(line for line in f if line.startswith("MemTotal")).split()[1])
    except (OSError, StopIteration, ValueError):
        return 1
    return 2 if total_kib >= PARALLEL_MEMORY_GIB * 2**20 else 1


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--backends", default="tensorflow,jax,torch")
    parser.add_argument("--parallel", type=int, default=_default_parallel(),
                        help="backends run at once (1: one after the other; default 2 with at "
                        f"least {PARALLEL_MEMORY_GIB} GiB of memory, else 1)")
    args, pytest_args = parser.parse_known_args()
    backends = args.backends.split(",")
    start = time.time()
    if args.parallel <= 1:
        results = {b: run_backend(b, pytest_args or ["tests"]) for b in backends}
    else:
        from concurrent.futures import ThreadPoolExecutor

        with ThreadPoolExecutor(args.parallel) as pool:
            futures = {b: pool.submit(run_backend, b, pytest_args or ["tests"], True, True)
                       for b in backends}
            results = {b: f.result() for b, f in futures.items()}
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
    print(f"{passed} passed, {failed} failed, {skipped} skipped in {time.time() - start:.0f} s")
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())

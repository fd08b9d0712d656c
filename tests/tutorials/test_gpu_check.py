"""benchmarks/gpu_check.py: its CPU smoke runs the GPU check's whole path (a worker
process per side and backend, ``model.fit`` on the torch backend with TensorFlow hidden,
the table, the atomic write), and its pieces compute what they claim: the native torch
loop of the smp rows, the per-step losses, the budget guard, the wheel list."""

import importlib.metadata
import importlib.util
import math
import os
import subprocess
import sys

import pytest
from support.paths import BENCHMARKS, load_script

PATH = os.path.join(BENCHMARKS, "gpu_check.py")
GPU_MD = os.path.join(BENCHMARKS, "gpu.md")


@pytest.fixture(scope="module")
def gpu_check():
    return load_script(PATH, "benchmark_gpu_check")


def _gpu_md_state():
    return os.stat(GPU_MD).st_mtime_ns if os.path.exists(GPU_MD) else None


@pytest.fixture(scope="module")
def smoke(tmp_path_factory):
    """``--cpu-smoke`` run as a script, the way a person runs it: (process, out file).

    Its workers use the torch backend whatever the suite's backend is, so it runs in the
    torch pass of ``tests/run_all_backends.py`` only."""
    import keras

    if keras.backend.backend() != "torch":
        pytest.skip("the smoke's workers run the torch backend: run in the torch pass only")
    folder = tmp_path_factory.mktemp("gpu_check")
    out = folder / "gpu_smoke.md"
    before = _gpu_md_state()
    done = subprocess.run([sys.executable, PATH, "--cpu-smoke", "--out", str(out)],
                          capture_output=True, text=True, timeout=600)
    assert _gpu_md_state() == before, "the smoke touched benchmarks/gpu.md"
    return done, out


def _rows(text):
    """The table's data rows as lists of cells."""
    return [[c.strip() for c in line.strip().strip("|").split("|")]
            for line in text.splitlines()
            if line.startswith("| ") and not line.startswith("| model |")]


def test_cpu_smoke_prints_and_writes_the_table(smoke, gpu_check):
    done, out = smoke
    assert done.returncode == 0, done.stdout + done.stderr
    rows = _rows(done.stdout)
    titles = [m["title"] for m in gpu_check.MODELS.values()]
    # 3 models x 2 precisions x (keras-seg torch, smp), model-major
    assert [r[0] for r in rows] == [t for t in titles for _ in range(4)]
    keras_rows = [r for r in rows if r[1] == "keras-seg torch (eager)"]
    peer_rows = [r for r in rows if r[1] == "smp (native torch, eager)"]
    assert len(keras_rows) == 6 and len(peer_rows) == 6
    assert [r[2] for r in keras_rows] == ["mixed_bfloat16", "float32"] * 3

    import keras

    import keras_seg

    expected_params = {}
    for spec in gpu_check.MODELS.values():
        kwargs = dict(spec["kwargs"], **spec["smoke_kwargs"])
        model = getattr(keras_seg.applications, spec["builder"])(21, **kwargs)
        expected_params[spec["title"]] = sum(math.prod(w.shape) for w in model.trainable_weights)
        keras.backend.clear_session()
    for row in keras_rows:
        images_s, memory, first, loss, params = row[3], row[4], row[5], row[6], row[7]
        assert float(images_s) > 0 and float(first) > 0
        assert memory == "n/a"  # no GPU here
        first_loss, last_loss = (float(v) for v in loss.split(" (N=3)")[0].split(" -> "))
        # 21 classes at initialization: about ln 21 = 3.04; one batch memorized after
        assert 2.0 < first_loss < 5.0 and 0.0 < last_loss < 5.0, row
        assert params == f"{expected_params[row[0]] / 1e6:.2f} M", row
    if importlib.util.find_spec("segmentation_models_pytorch") is None:
        assert all(r[3].startswith("not installed: ") for r in peer_rows), peer_rows
    else:  # smp and its torchvision import here: the peer rows are measured too
        assert all(float(r[3]) > 0 for r in peer_rows), peer_rows

    with open(out) as f:
        text = f.read()
    assert text.startswith("# GPU check (CPU smoke: meaningless numbers)\n")
    assert f"- command: `python benchmarks/gpu_check.py --cpu-smoke --out {out}`" in text
    assert f"keras {keras.__version__}" in text and "torch " in text
    assert "batch 2, 64x64, 21 classes" in text
    assert _rows(text) == rows  # the file holds the printed table
    assert os.listdir(out.parent) == [out.name]  # no temporary left beside it
    assert f"wrote {out}" in done.stdout


def test_native_torch_loop(gpu_check):
    """The smp rows' loop: its first loss is cross-entropy of the untrained model on the
    batch (NHWC -> NCHW right), it learns, and it counts only parameters that train."""
    torch = pytest.importorskip("torch")
    import torch.nn.functional as F

    class Net(torch.nn.Module):
        def __init__(self):
            super().__init__()
            self.conv = torch.nn.Conv2d(3, 5, 1)
            self.unused = torch.nn.Linear(4, 4)  # as smp's PSPNet keeps layer3 / layer4

        def forward(self, x):
            return self.conv(x)

    torch.manual_seed(0)
    model = Net()
    images, labels = gpu_check.make_batch(2, 8, 5, seed=0)
    assert images.shape == (2, 8, 8, 3) and labels.shape == (2, 8, 8) and labels.max() < 5
    with torch.no_grad():
        expected = F.cross_entropy(model(torch.from_numpy(images).permute(0, 3, 1, 2)),
                                   torch.from_numpy(labels).long()).item()
    out = gpu_check.train_torch_native(model, images, labels, 4, 1.0, "float32",
                                       torch.device("cpu"))
    assert len(out["times"]) == 4 and all(t > 0 for t in out["times"])
    assert out["losses"][0] == pytest.approx(expected, rel=1e-6)
    assert out["losses"][-1] < out["losses"][0]
    assert out["params_used"] == 3 * 5 + 5
    bf16 = gpu_check.train_torch_native(Net(), images, labels, 2, 0.1, "mixed_bfloat16",
                                        torch.device("cpu"))
    assert all(math.isfinite(v) for v in bf16["losses"])


def test_per_step_losses_from_running_means(gpu_check):
    # steps 3, 2, 1: Keras reports the running means 3, 2.5, 2
    assert gpu_check.per_step_losses([3.0, 2.5, 2.0]) == pytest.approx([3.0, 2.0, 1.0])


def test_plan_puts_mixed_precision_first(gpu_check):
    cfg = dict(gpu_check.MODES["gpu"], models=("unet", "pspnet"), peer=True)
    keys = [r["key"] for r in gpu_check.plan_runs(cfg)]
    assert keys[:3] == ["unet/keras-seg/jax/mixed_bfloat16", "unet/keras-seg/torch/mixed_bfloat16",
                        "unet/smp/torch/mixed_bfloat16"]
    assert len(keys) == 12 and keys[6] == "unet/keras-seg/jax/float32"


def test_budget_guard_skips_and_writes_nothing(gpu_check, tmp_path, capsys):
    out = tmp_path / "never.md"
    status = gpu_check.main(["--cpu-smoke", "--budget-s", "0", "--no-peer", "--out", str(out)])
    printed = capsys.readouterr().out
    assert status == 1 and not out.exists()
    assert "skipped for the budget (6): unet/keras-seg/torch/mixed_bfloat16" in printed
    needed = 6 * gpu_check.ESTIMATE_S["smoke"]["torch"]  # one process for the 6 runs
    assert printed.count(f"| skipped (budget): 0 s spent, about {needed:.0f} s needed, "
                         "budget 0 s |") == 6
    assert "no run measured" in printed


def test_smoke_never_writes_gpu_md(gpu_check):
    for argv in (["--cpu-smoke"], ["--cpu-smoke", "--out", GPU_MD]):
        with pytest.raises(SystemExit) as error:
            gpu_check.main(argv)
        assert error.value.code == 2


def test_list_wheels_from_installed_metadata(gpu_check, capsys):
    """The keras side is read from this environment's metadata: keras pinned to the
    installed version, what keras needs beyond torch + jax pinned too, the torch / jax
    stack left out; then smp's side and the keras-seg wheel."""
    assert gpu_check.main(["--list-wheels", "--python-version", "3.12"]) == 0
    text = capsys.readouterr().out
    download = next(line for line in text.splitlines() if "pip download" in line)
    assert "--no-deps --only-binary=:all:" in download and "--python-version 3.12" in download
    pins = dict(p.split("==") for p in text.split() if "==" in p)
    assert pins["keras"] == importlib.metadata.version("keras")
    for name in ("namex", "optree", "h5py", "rich", "absl-py", "markdown-it-py", "mdurl",
                 "pygments", "packaging", "matplotlib", "pillow"):
        assert pins[name] == importlib.metadata.version(name), name
    for name in ("torch", "jax", "jaxlib", "numpy", "scipy", "ml-dtypes", "typing-extensions",
                 "tensorflow", "keras-seg"):
        assert name not in pins, name  # brought by torch / jax, or built from the checkout
    assert pins["segmentation-models-pytorch"] == "0.6.0" and "timm" in pins
    assert "torchvision" not in pins
    assert "pip wheel --no-deps -w wheels" in text and "--no-index --find-links wheels/" in text

    # what the target has is left out: the lent H200's list leaves the keras wheels only
    have = "absl-py,h5py,rich,markdown-it-py,mdurl,pygments,packaging,pillow,matplotlib," \
           "contourpy,cycler,fonttools,kiwisolver,pyparsing,python-dateutil,tzdata," + \
           ",".join(n for n, _ in gpu_check.PEER_WHEELS[1:])
    wheels = gpu_check.wheel_list("3.12", gpu_check._read_have(have))
    assert [n for n, _ in wheels] == ["keras", "namex", "optree", "segmentation-models-pytorch"]

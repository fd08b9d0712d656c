"""GPU check: keras-seg trained with ``model.fit`` on JAX and PyTorch, beside smp.

One prepared run for one GPU (planned for an NVIDIA H200: at most 8 minutes of wall
time) that trains, on random data (21 classes, batch 8, 512x512, SGD with momentum 0.9,
:class:`keras_seg.losses.SegmentationCrossEntropy`):

* U-Net with a ResNet-34 encoder: ``keras_seg.applications.UNet(21, backbone="resnet34")``;
* DeepLab v3+ on ResNet-50 at output stride 16:
  ``DeepLabV3Plus(21, backbone="resnet50", output_stride=16)``;
* PSPNet on ResNet-50: ``PSPNet(21, backbone="resnet50")`` (the paper's dilated
  ResNet at output stride 8);

with ``model.fit`` on the JAX (XLA-compiled) and PyTorch (eager) Keras backends, in
float32 and ``mixed_bfloat16``, and beside them segmentation_models.pytorch's matching
models (``smp.Unet("resnet34")``, ``smp.DeepLabV3Plus("resnet50",
encoder_output_stride=16)``, ``smp.PSPNet("resnet50")``) in a native PyTorch loop
(``torch.nn.functional.cross_entropy``, ``torch.optim.SGD``; ``torch.autocast``
bfloat16 for the mixed rows) on the same GPU, batch, size, optimizer and loss. On the
GPU every run has a process of its own (``KERAS_BACKEND`` is read when Keras is imported, and
JAX's peak-memory counter cannot be reset). It prints, and writes to
``benchmarks/gpu.md`` (atomically), one table: model, side and backend, precision,
images/s, peak GPU memory, compile / first-step time, the loss at the first and the
last step, trainable parameters, and the run's wall time; above it the date, the
command, the GPU, the versions and the settings. ``benchmarks/gpu.md`` exists only once
a GPU run has written it; ``--cpu-smoke`` never writes it.

What the columns measure
------------------------
* **images/s**: batch size / the median wall time of the timed steps (``--steps``),
  after ``--warmup`` untimed steps (the first of which compiles). A step is timed from
  Keras' ``on_train_batch_begin`` to ``on_train_batch_end`` once the step's loss has
  been read back to the host (the host-to-device copy of the batch included, except
  that Keras' JAX iterator on a GPU starts each copy one batch ahead;
  ``torch.cuda.synchronize()`` on the torch side), in the native loop from the
  batch's host-to-device copy (pinned memory, non-blocking) to the loss read back.
* **compile / first step (s)**: the wall time of the first training step. On JAX it
  is tracing plus XLA compilation (with autotuning) plus one step; on the eager torch
  sides, CUDA / cuDNN / cuBLAS initialization (and cuDNN autotuning with
  ``--cudnn-benchmark``). Model building is not in it (it is in the wall time).
* **peak GPU memory**: JAX: ``jax.devices()[0].memory_stats()["peak_bytes_in_use"]``,
  the high-water mark of the bytes XLA's allocator handed out since the process
  started (parameters, optimizer state, activations, the compiled program's temporary
  buffers, autotuning scratch); its preallocated pool (75 % of the GPU by default) is
  not counted. torch (both sides): ``torch.cuda.max_memory_allocated()``, the
  high-water mark of the bytes held by tensors through the caching allocator since the
  process started (cuDNN / cuBLAS workspaces included); blocks the allocator cached
  but did not hand out are in ``max_memory_reserved`` (in the JSON and the notes), the
  CUDA context (a few hundred MiB) is in neither.
* **loss step 1 -> N**: the training loss of the first and of the last step
  (``N = --warmup + --steps``): the same fixed random batch every step, so the loss
  falls as the model memorizes it; a sanity check (initializations differ between
  the sides), not an accuracy. Keras reports the running mean of the epoch; the
  per-step loss is recovered from it (``n * mean_n - (n - 1) * mean_(n-1)``).
* **trainable params**: the Keras model's trainable weights, ``p.numel()`` of the
  torch parameters with ``requires_grad``. The architectures differ where the
  libraries differ: smp's PSPNet stops its encoder at stride 8 (``encoder_depth=3``:
  ResNet-50 through layer2, no dilated stages; it keeps layer3 / layer4 as unused
  trainable parameters, hence the "used" count) where keras-seg's runs the whole
  ResNet-50 dilated to stride 8 as the paper does (353 GFLOPs a 512x512 image by
  ``keras_seg.flops``, over ten times smp's);
  smp's DeepLab v3+ has depthwise-separable ASPP and decoder convolutions, ASPP rates
  12, 24, 36 and one 3x3 convolution after the decoder's concatenation, where
  keras-seg's ResNet version has plain convolutions, rates 6, 12, 18 (the paper's at
  stride 16) and the paper's two.

Why bfloat16 and not float16: on the H100 / H200 tensor cores bfloat16 runs at the same
rate as float16 and keeps float32's exponent range, so neither side needs loss
scaling (float16 does: Keras wraps the optimizer in a ``LossScaleOptimizer`` under
``mixed_float16``, PyTorch needs a ``GradScaler``); it is what one would train with on
that GPU. ``--precisions mixed_float16`` adds the float16 rows (``torch.autocast``
float16 with a ``GradScaler`` on the native side) if time allows. float32 rows may use
TF32 tensor cores for convolutions (PyTorch's ``cudnn.allow_tf32`` default, XLA's
default precision); the JSON records the settings.

Budget. The planned order puts the ``mixed_bfloat16`` rows first (per model: keras-seg
on JAX, on torch, then smp), then float32. ``--budget-s`` (default 420) stops
launching runs whose time, estimated from runs already done (else from
:data:`ESTIMATE_S`), would not fit in what is left, names what it skipped, and kills a
run still going ``GRACE_S`` seconds after the budget, so the whole check ends within
about 460 s. Estimated for one H200 (not measured yet: no GPU run has been made), a
run's whole process: keras-seg on JAX 40-70 s (imports and building about 8 s, the
first step's XLA compilation 25-60 s, PSPNet's the longest), keras-seg on torch 12-25 s,
smp 10-15 s; the ``mixed_bfloat16`` block (9 runs) about 4 minutes, float32 as much
again, so the last float32 runs may not fit the default budget. Runs that did not fit
say ``skipped (budget)``: rerun those with ``--models`` / ``--backends`` /
``--precisions`` / ``--no-peer``.

Running it on the offline GPU machine
-------------------------------------
That machine has PyTorch and JAX with CUDA but neither Keras nor TensorFlow, and no
network. On a machine with network access and this checkout (the project's ``.venv``)::

    python benchmarks/gpu_check.py --list-wheels --python-version 3.12 > wheels.sh
    bash wheels.sh           # fills wheels/: pip download --no-deps ... + pip wheel .

``--list-wheels`` prints the ``pip download --no-deps`` command (exact versions, for
that machine's Python and manylinux x86_64) for Keras and what it needs that a torch +
jax install lacks, read from this environment's installed metadata (keras 3.15.1:
absl-py, h5py, namex, optree, packaging, rich, markdown-it-py, mdurl, pygments;
keras-seg's own: pillow, matplotlib and its contourpy, cycler, fonttools, kiwisolver,
pyparsing, python-dateutil (tzdata); numpy, scipy and ml-dtypes come with jax), then
segmentation-models-pytorch 0.6.0 and its requirements (timm, huggingface-hub,
safetensors, tqdm, pyyaml, ... : :data:`PEER_WHEELS`; torchvision is not among them,
it must be the build matching the machine's torch), then ``pip wheel --no-deps -w
wheels .`` for keras-seg itself. ``--have NAME,NAME`` (or ``--have @freeze.txt``, a
``pip freeze`` of the target) leaves out what the target already has; for the lent
H200 (Python 3.12, torch 2.11, torchvision 0.26, timm, huggingface-hub, h5py, rich,
absl-py, matplotlib... already there) only keras, namex, optree,
segmentation-models-pytorch and keras-seg are missing: ``--have`` with its ``pip
freeze`` leaves about 3 MiB of wheels. Copy ``wheels/`` and this checkout over, then::

    python3 -m pip install --no-index --find-links wheels/ keras-seg segmentation-models-pytorch
    python3 benchmarks/gpu_check.py                 # about 7.5 minutes; writes benchmarks/gpu.md

(where site-packages is read-only: ``python3 -m pip install --no-index --no-deps
--target /tmp/site wheels/*.whl`` and ``export PYTHONPATH=/tmp/site``, the dependencies
being there already). Run from a
checkout, the workers put the repository root first on ``sys.path``, so the checkout's
``keras_seg`` is the one measured (the installed wheel brings its dependencies; the
header prints which ``keras_seg`` ran). If segmentation_models_pytorch (or timm /
torchvision under it) cannot be imported, the check says so and runs the keras-seg side
alone: the peer rows say ``not installed`` with the import error. A backend that
cannot be imported or sees no GPU is reported once and its other runs skipped.

CPU smoke (what the test suite runs; numbers meaningless)::

    python benchmarks/gpu_check.py --cpu-smoke --out /tmp/gpu_smoke.md

64x64, batch 2, 1 + 2 steps, ResNet widths x 1/8 and narrow heads, the torch Keras
backend (``--backends torch,jax`` adds JAX), one process per side and backend with one
math thread, no GPU required; ``--out`` is required and may not be
``benchmarks/gpu.md``. TensorFlow is hidden from the Keras workers
(``sys.modules["tensorflow"] = None``) in every mode, so the smoke follows the GPU
machine's path.
"""

import argparse
import datetime
import importlib.metadata
import importlib.util
import json
import math
import os
import platform
import re
import shlex
import signal
import statistics
import subprocess
import sys
import tempfile
import time

HERE = os.path.dirname(os.path.abspath(__file__))
REPO_ROOT = os.path.dirname(HERE)
DEFAULT_OUT = os.path.join(HERE, "gpu.md")
RESULT_MARK = "GPU_CHECK_RESULT "

# === Settings ===

#: the three models: keras-seg builder and arguments, the smoke's narrowing, smp's match
MODELS = {
    "unet": dict(
        title="U-Net ResNet-34",
        builder="UNet", kwargs={"backbone": "resnet34"},
        smoke_kwargs={"backbone_options": {"width_multiplier": 0.125},
                      "decoder_filters": (32, 16, 16, 8, 8)},
        smp_builder="Unet", smp_kwargs={"encoder_name": "resnet34"}),
    "deeplabv3plus": dict(
        title="DeepLab v3+ ResNet-50 OS16",
        builder="DeepLabV3Plus", kwargs={"backbone": "resnet50", "output_stride": 16},
        smoke_kwargs={"backbone_options": {"width_multiplier": 0.125}, "filters": 32,
                      "low_level_filters": 8, "decoder_filters": 32},
        smp_builder="DeepLabV3Plus",
        smp_kwargs={"encoder_name": "resnet50", "encoder_output_stride": 16}),
    "pspnet": dict(
        title="PSPNet ResNet-50",
        builder="PSPNet", kwargs={"backbone": "resnet50"},
        smoke_kwargs={"backbone_options": {"width_multiplier": 0.125}, "filters": 32},
        smp_builder="PSPNet", smp_kwargs={"encoder_name": "resnet50"}),
}
BACKENDS = ("jax", "torch")
PRECISIONS = ("float32", "mixed_bfloat16", "mixed_float16")
#: the two modes' defaults (command-line options override them)
MODES = {
    "gpu": dict(size=512, batch_size=8, steps=20, warmup=5, num_classes=21, lr=0.01,
                backends=("jax", "torch"), precisions=("mixed_bfloat16", "float32"),
                budget_s=420.0),
    "smoke": dict(size=64, batch_size=2, steps=2, warmup=1, num_classes=21, lr=0.01,
                  backends=("torch",), precisions=("mixed_bfloat16", "float32"),
                  budget_s=240.0),
}
#: seconds one run is expected to take before a run of its kind has been timed (a run's
#: whole process: imports, model building, compilation, steps), per mode and kind
ESTIMATE_S = {
    "gpu": {"jax": 75.0, "torch": 30.0, "smp": 20.0},
    "smoke": {"jax": 20.0, "torch": 8.0, "smp": 8.0},
}
#: a run still going this many seconds after the budget is killed
GRACE_S = 40.0

#: segmentation-models-pytorch 0.6.0's requirements, resolved with ``pip install
#: --dry-run --report`` for CPython 3.12 on manylinux x86_64 (read from the wheels'
#: METADATA), less torch, torchvision, triton, the nvidia-* CUDA wheels and torch's own
#: requirements (filelock, fsspec, typing-extensions, sympy, mpmath, networkx, jinja2,
#: markupsafe, setuptools); numpy, pillow and packaging come with the keras side
PEER_WHEELS = (
    ("segmentation-models-pytorch", "0.6.0"), ("timm", "1.0.31"),
    ("huggingface-hub", "2.4.0"), ("safetensors", "0.8.0"), ("tqdm", "4.70.1"),
    ("pyyaml", "6.0.4"), ("hf-xet", "1.8.0"), ("click", "8.5.1"), ("httpx2", "2.16.2"),
    ("httpcore2", "2.16.2"), ("anyio", "4.16.0"), ("h11", "0.16.0"), ("idna", "3.20"),
    ("truststore", "0.10.5"),
)
#: what a torch + jax install brings (their requirement closures are left out)
TORCH_JAX = ("torch", "jax", "jaxlib")
WHEEL_PLATFORMS = ("manylinux_2_28_x86_64", "manylinux_2_27_x86_64",
                   "manylinux_2_17_x86_64", "manylinux2014_x86_64")


# === Wheels for the offline machine ===

def _canonical(name):
    return re.sub(r"[-_.]+", "-", name).lower()


def _requirement_names(dist_name, python_version):
    """Names required by an installed distribution (no extras), markers evaluated for
    ``python_version`` ("3.12") on Linux x86_64."""
    from packaging.requirements import Requirement

    env = {"python_version": python_version, "python_full_version": python_version + ".0",
           "sys_platform": "linux", "platform_system": "Linux",
           "platform_machine": "x86_64", "implementation_name": "cpython",
           "platform_python_implementation": "CPython", "os_name": "posix", "extra": ""}
    names = []
    for text in importlib.metadata.distribution(dist_name).requires or []:
        req = Requirement(text)
        if req.marker is None or req.marker.evaluate(env):
            names.append(_canonical(req.name))
    return names


def requirement_closure(roots, python_version):
    """Every installed distribution ``roots`` need, themselves included (canonical names).

    Raises ``importlib.metadata.PackageNotFoundError`` for one not installed here.
    """
    seen, todo = set(), [_canonical(r) for r in roots]
    while todo:
        name = todo.pop()
        if name in seen:
            continue
        seen.add(name)
        todo.extend(_requirement_names(name, python_version))
    return seen


def wheel_list(python_version, have=()):
    """``[(name, version)]`` for the wheels folder: keras's side, then smp's.

    The keras side is the requirement closure of keras and keras-seg in this
    environment less keras-seg (built from the checkout) and less the closure of
    torch, jax and jaxlib; the smp side is :data:`PEER_WHEELS`. Names in ``have`` are
    left out.
    """
    keras_side = requirement_closure(["keras", "keras-seg"], python_version)
    stack = requirement_closure([n for n in TORCH_JAX if _installed(n)], python_version)
    keras_side -= stack | {"keras-seg"}
    have = {_canonical(n) for n in have}
    first = ["keras"] + sorted(keras_side - {"keras"})
    wheels = [(n, importlib.metadata.version(n)) for n in first if n not in have]
    wheels += [(n, v) for n, v in PEER_WHEELS if _canonical(n) not in have]
    return wheels


def _installed(name):
    try:
        importlib.metadata.version(name)
    except importlib.metadata.PackageNotFoundError:
        return False
    return True


def _read_have(value):
    """``--have``: ``a,b,c`` or ``@FILE`` (``pip freeze`` / ``pip list`` output)."""
    if not value:
        return []
    if value.startswith("@"):
        with open(value[1:]) as f:
            lines = f.read().splitlines()
        names = []
        for line in lines:
            line = line.strip()
            if not line or line.startswith(("#", "-", "Package")):
                continue
            names.append(re.split(r"[=<>!~ @]", line, maxsplit=1)[0])
        return names
    return [n.strip() for n in value.split(",") if n.strip()]


def list_wheels(python_version, have=(), wheel_dir="wheels"):
    """The shell commands (a string) that fill ``wheel_dir`` on a machine with network."""
    wheels = wheel_list(python_version, have)
    platforms = " ".join(f"--platform {p}" for p in WHEEL_PLATFORMS)
    pins = " \\\n    ".join(f"{n}=={v}" for n, v in wheels)
    left_out = sorted({_canonical(n) for n in have})
    lines = [
        "# Wheels for benchmarks/gpu_check.py on an offline machine with torch + jax (CUDA).",
        f"# Generated by: python benchmarks/gpu_check.py --list-wheels --python-version "
        f"{python_version}" + (f" --have {','.join(left_out)}" if left_out else ""),
        "# keras side: the requirement closure of keras and keras-seg in this environment,",
        "# less what torch and jax bring; smp side: segmentation-models-pytorch 0.6.0's",
        "# requirements less torch / torchvision (use the torchvision built for the target's",
        "# torch: it is not in this list).",
        "set -e",
        f"mkdir -p {wheel_dir}",
    ]
    if wheels:
        lines.append(f"python -m pip download --no-deps --only-binary=:all: --implementation cp "
                     f"--python-version {python_version} {platforms} -d {wheel_dir} \\\n    "
                     f"{pins}")
    lines += [
        f"python -m pip wheel --no-deps -w {wheel_dir} {shlex.quote(REPO_ROOT)}",
        "# on the offline machine, from the checkout:",
        f"#   python3 -m pip install --no-index --find-links {wheel_dir}/ keras-seg "
        "segmentation-models-pytorch",
        "#   python3 benchmarks/gpu_check.py",
    ]
    return "\n".join(lines)


# === Worker: one or more runs in this process ===

def make_batch(batch_size, size, num_classes, seed):
    """The fixed random batch: images float32 in [0, 1) ``(B, H, W, 3)``, labels int32."""
    import numpy as np

    rng = np.random.default_rng(seed)
    images = rng.random((batch_size, size, size, 3), dtype=np.float32)
    labels = rng.integers(0, num_classes, (batch_size, size, size), dtype=np.int32)
    return images, labels


def per_step_losses(running_means):
    """Per-step losses from the running means Keras reports (``loss`` of ``fit``'s logs
    is the mean over the epoch so far, every batch the same size)."""
    losses, previous = [], 0.0
    for n, mean in enumerate(running_means, start=1):
        losses.append(n * mean - (n - 1) * previous)
        previous = mean
    return losses


def _hide_tensorflow():
    """Make ``import tensorflow`` fail in this process, as on the GPU machine (no TF)."""
    if "tensorflow" not in sys.modules:
        sys.modules["tensorflow"] = None


class NotAvailable(RuntimeError):
    """A side or backend cannot run here (not installed, no GPU): its other runs are
    skipped."""


def _torch_device(require_gpu):
    import torch

    if torch.cuda.is_available():
        return torch.device("cuda")
    if require_gpu:
        raise NotAvailable(f"torch {torch.__version__} sees no CUDA GPU "
                           f"(torch.version.cuda={torch.version.cuda})")
    return torch.device("cpu")


def _torch_info(device):
    import torch

    info = {"torch": torch.__version__, "torch_cuda": torch.version.cuda,
            "cudnn_allow_tf32": torch.backends.cudnn.allow_tf32,
            "matmul_allow_tf32": torch.backends.cuda.matmul.allow_tf32,
            "cudnn_benchmark": torch.backends.cudnn.benchmark}
    if device.type == "cuda":
        info["device"] = torch.cuda.get_device_name(device)
        info["cudnn"] = torch.backends.cudnn.version()
    else:
        info["device"] = f"CPU ({platform.processor() or platform.machine()})"
    return info


def _torch_memory(device):
    import torch

    if device.type != "cuda":
        return None, None
    return torch.cuda.max_memory_allocated(device), torch.cuda.max_memory_reserved(device)


def train_torch_native(model, images, labels, total_steps, lr, precision, device):
    """The native PyTorch training loop of the peer rows; returns step times and losses.

    ``model`` (an ``nn.Module`` already on ``device``) trains ``total_steps`` steps on
    one fixed batch (``images`` NHWC float32, ``labels`` int, NumPy): each step copies
    the batch from (pinned) host memory, runs the forward pass under ``torch.autocast``
    (bfloat16 / float16 for the mixed precisions; float16 with a ``GradScaler``), takes
    ``torch.nn.functional.cross_entropy`` of the float32 logits (ignore index 255, as
    ``SegmentationCrossEntropy``), and steps ``torch.optim.SGD`` (momentum 0.9). A step
    is timed up to its loss read back (and ``torch.cuda.synchronize()``).

    Returns:
        dict: ``times`` (s per step), ``losses`` (float per step) and ``params_used``
        (elements of the parameters that received a gradient: smp keeps encoder stages
        it never runs, e.g. PSPNet's layer3 / layer4, as trainable parameters).
    """
    import torch
    import torch.nn.functional as F

    cuda = device.type == "cuda"
    x_host = torch.from_numpy(images.transpose(0, 3, 1, 2).copy())
    y_host = torch.from_numpy(labels.astype("int64"))
    if cuda:
        x_host, y_host = x_host.pin_memory(), y_host.pin_memory()
    dtype = {"mixed_bfloat16": torch.bfloat16, "mixed_float16": torch.float16}.get(precision)
    scaler = torch.amp.GradScaler(device.type) if precision == "mixed_float16" else None
    optimizer = torch.optim.SGD(model.parameters(), lr=lr, momentum=0.9)
    model.train()
    times, losses = [], []
    for _ in range(total_steps):
        start = time.perf_counter()
        x = x_host.to(device, non_blocking=True)
        y = y_host.to(device, non_blocking=True)
        with torch.autocast(device.type, dtype=dtype or torch.float32, enabled=dtype is not None):
            logits = model(x)
        loss = F.cross_entropy(logits.float(), y, ignore_index=255)
        optimizer.zero_grad(set_to_none=True)
        if scaler is not None:
            scaler.scale(loss).backward()
            scaler.step(optimizer)
            scaler.update()
        else:
            loss.backward()
            optimizer.step()
        losses.append(loss.item())
        if cuda:
            torch.cuda.synchronize(device)
        times.append(time.perf_counter() - start)
    used = sum(p.numel() for p in model.parameters() if p.grad is not None)
    return {"times": times, "losses": losses, "params_used": used}


def _peer_run(spec):
    """One smp run: the model, the native loop, memory; a result dict."""
    try:
        import torch

        # through keras-seg's one fix for torchvision's compiled ops beside a CPU-only torch
        from keras_seg.convert._torch import import_smp

        smp = import_smp()
    except (ImportError, RuntimeError, OSError) as e:  # torchvision ops vs torch build
        raise NotAvailable(f"not installed: segmentation_models_pytorch cannot be imported "
                           f"({type(e).__name__}: {_first_line(e)})") from e
    device = _torch_device(spec["require_gpu"])
    torch.backends.cudnn.benchmark = spec["cudnn_benchmark"]
    torch.manual_seed(spec["seed"])
    info = _torch_info(device)
    info["smp"] = getattr(smp, "__version__", _version("segmentation-models-pytorch"))
    info["timm"] = _version("timm")
    info["torchvision"] = _version("torchvision")
    start = time.perf_counter()
    m = MODELS[spec["model"]]
    model = getattr(smp, m["smp_builder"])(**m["smp_kwargs"], encoder_weights=None,
                                          classes=spec["num_classes"]).to(device)
    build_s = time.perf_counter() - start
    params = sum(p.numel() for p in model.parameters() if p.requires_grad)
    images, labels = make_batch(spec["batch_size"], spec["size"], spec["num_classes"],
                                spec["seed"])
    out = train_torch_native(model, images, labels, spec["warmup"] + spec["steps"], spec["lr"],
                             spec["precision"], device)
    peak, reserved = _torch_memory(device)
    return dict(params=params, params_used=out["params_used"], build_s=build_s,
                times=out["times"], losses=out["losses"], peak_bytes=peak,
                reserved_bytes=reserved, info=info)


def _keras_run(spec):
    """One keras-seg run with ``model.fit`` on this process's Keras backend."""
    _hide_tensorflow()
    try:
        import keras
    except ImportError as e:
        raise NotAvailable(f"keras cannot be imported ({_first_line(e)}): install the wheels "
                           "(see the module docstring)") from e
    backend = keras.backend.backend()
    if backend == "jax":
        import jax
        import jaxlib

        device = jax.devices()[0]
        if spec["require_gpu"] and device.platform != "gpu":
            raise NotAvailable(f"jax {jax.__version__} sees no GPU (devices: {jax.devices()})")
        info = {"jax": jax.__version__, "jaxlib": jaxlib.__version__,
                "device": getattr(device, "device_kind", str(device)),
                "jax_default_matmul_precision": jax.config.jax_default_matmul_precision}
        torch_device = None
    else:
        import torch

        torch_device = _torch_device(spec["require_gpu"])
        torch.backends.cudnn.benchmark = spec["cudnn_benchmark"]
        info = _torch_info(torch_device)
    import keras_seg

    info.update(keras=keras.__version__, keras_seg=keras_seg.__version__,
                keras_seg_path=os.path.dirname(os.path.abspath(keras_seg.__file__)))
    keras.backend.clear_session()  # a smoke process runs several models in turn
    keras.config.set_dtype_policy(spec["precision"])
    keras.utils.set_random_seed(spec["seed"])
    m = MODELS[spec["model"]]
    kwargs = dict(m["kwargs"], **(m["smoke_kwargs"] if spec["smoke"] else {}))
    start = time.perf_counter()
    model = getattr(keras_seg.applications, m["builder"])(spec["num_classes"], **kwargs)
    model.compile(optimizer=keras.optimizers.SGD(learning_rate=spec["lr"], momentum=0.9),
                  loss=keras_seg.losses.SegmentationCrossEntropy())
    build_s = time.perf_counter() - start
    params = sum(math.prod(w.shape) for w in model.trainable_weights)
    images, labels = make_batch(spec["batch_size"], spec["size"], spec["num_classes"],
                                spec["seed"])
    total = spec["warmup"] + spec["steps"]

    class FixedBatch(keras.utils.PyDataset):
        """The same batch ``total`` times: one epoch of ``total`` steps."""

        def __len__(self):
            return total

        def __getitem__(self, index):
            return images, labels

    def sync():
        if torch_device is not None and torch_device.type == "cuda":
            import torch

            torch.cuda.synchronize(torch_device)

    class StepTimer(keras.callbacks.Callback):
        """Wall time of each step, up to its loss on the host (a batch-end callback makes
        Keras hand over the logs as Python floats, i.e. after the step finished)."""

        def __init__(self):
            super().__init__()
            self.times, self.means = [], []

        def on_train_batch_begin(self, batch, logs=None):
            self._start = time.perf_counter()

        def on_train_batch_end(self, batch, logs=None):
            mean = float(logs["loss"])
            sync()
            self.times.append(time.perf_counter() - self._start)
            self.means.append(mean)

    timer = StepTimer()
    model.fit(FixedBatch(), epochs=1, verbose=0, shuffle=False, callbacks=[timer])
    if backend == "jax":
        stats = jax.devices()[0].memory_stats() or {}  # None on the CPU
        peak, reserved = stats.get("peak_bytes_in_use"), None
        info["jax_bytes_limit"] = stats.get("bytes_limit")
    else:
        peak, reserved = _torch_memory(torch_device)
    info["jit_compile"] = bool(model.jit_compile)
    return dict(params=params, params_used=params, build_s=build_s, times=timer.times,
                losses=per_step_losses(timer.means), peak_bytes=peak,
                reserved_bytes=reserved, info=info)


def _first_line(error):
    text = str(error).strip()
    return text.splitlines()[0] if text else type(error).__name__


def _version(name):
    try:
        return importlib.metadata.version(name)
    except importlib.metadata.PackageNotFoundError:
        return None


def worker(specs):
    """Run ``specs`` in order in this process; print one result line per run."""
    for spec in specs:
        start = time.perf_counter()
        try:
            out = _peer_run(spec) if spec["side"] == "smp" else _keras_run(spec)
            warmup = spec["warmup"]
            timed = out["times"][warmup:]
            median = statistics.median(timed)
            result = dict(status="ok", median_step_s=median,
                          images_per_s=spec["batch_size"] / median,
                          first_step_s=out["times"][0], **out)
        except NotAvailable as e:
            result = dict(status="unavailable", error=str(e))
        except Exception as e:  # noqa: BLE001 - reported in the table, the check goes on
            import traceback

            traceback.print_exc()
            result = dict(status="error", error=f"{type(e).__name__}: {_first_line(e)}")
        result.update(key=spec["key"], run_s=time.perf_counter() - start)
        print(RESULT_MARK + json.dumps(result), flush=True)


# === Parent: plan, launch, budget, report ===

def plan_runs(cfg):
    """The runs in priority order: precision-major (as given), per model keras-seg on
    each backend, then smp."""
    runs = []
    for precision in cfg["precisions"]:
        for model in cfg["models"]:
            for backend in cfg["backends"]:
                runs.append(dict(model=model, side="keras-seg", backend=backend,
                                 precision=precision))
            if cfg["peer"]:
                runs.append(dict(model=model, side="smp", backend="torch",
                                 precision=precision))
    for run in runs:
        run["key"] = f"{run['model']}/{run['side']}/{run['backend']}/{run['precision']}"
        run["kind"] = "smp" if run["side"] == "smp" else run["backend"]
    return runs


def _groups(runs, mode):
    """Runs sharing a process: one each on a GPU (per-run peak memory), one process per
    side and backend in the smoke (start-up paid once)."""
    if mode == "gpu":
        return [[r] for r in runs]
    groups = {}
    for r in runs:
        groups.setdefault(r["kind"], []).append(r)
    return list(groups.values())


def _estimate(run, done, mode):
    """Seconds ``run`` should take: the same model and kind timed before, else the slowest
    run of its kind, else :data:`ESTIMATE_S`."""
    same = [d["wall_s"] for d in done if d["kind"] == run["kind"] and d["model"] == run["model"]]
    kind = [d["wall_s"] for d in done if d["kind"] == run["kind"]]
    if same:
        return max(same)
    if kind:
        return max(kind)
    return ESTIMATE_S[mode][run["kind"]]


def _worker_env(run, mode):
    env = dict(os.environ, PYTHONUNBUFFERED="1", TF_CPP_MIN_LOG_LEVEL="2")
    if run["side"] == "keras-seg":
        env["KERAS_BACKEND"] = run["backend"]
    if os.path.isdir(os.path.join(REPO_ROOT, "keras_seg")):  # a checkout: measure its code
        env["PYTHONPATH"] = os.pathsep.join(p for p in (REPO_ROOT, env.get("PYTHONPATH")) if p)
    if mode == "smoke":
        # tiny models gain nothing from math threads, and on a busy CPU oversubscribed
        # OpenMP threads made these steps 5-10x slower (76 s -> 14 s for the smoke)
        env.update(OMP_NUM_THREADS="1", OPENBLAS_NUM_THREADS="1", MKL_NUM_THREADS="1")
    if mode == "smoke" and run["backend"] == "jax":
        # the test suite's fast XLA settings (tests/conftest.py): compile in seconds on CPU
        env.setdefault("XLA_FLAGS", "--xla_backend_optimization_level=0 "
                                    "--xla_llvm_disable_expensive_passes=true")
    return env


def _launch(group, cfg, timeout_s):
    """Run one group in a worker process; ``{key: result}`` (missing keys: no result)."""
    specs = [dict(run, **{k: cfg[k] for k in ("size", "batch_size", "steps", "warmup",
                                               "num_classes", "lr", "seed",
                                               "cudnn_benchmark")},
                  smoke=cfg["mode"] == "smoke", require_gpu=cfg["mode"] == "gpu")
             for run in group]
    command = [sys.executable, os.path.abspath(__file__), "--worker", json.dumps(specs)]
    proc = subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                            env=_worker_env(group[0], cfg["mode"]), start_new_session=True)
    try:
        stdout, stderr = proc.communicate(timeout=max(timeout_s, 1.0))
        timed_out = False
    except subprocess.TimeoutExpired:
        os.killpg(proc.pid, signal.SIGKILL)  # the worker and anything it started
        stdout, stderr = proc.communicate()
        timed_out = True
    except BaseException:  # Ctrl-C: leave no worker holding the GPU (its own session)
        os.killpg(proc.pid, signal.SIGKILL)
        raise
    results = {}
    for line in stdout.splitlines():
        if line.startswith(RESULT_MARK):
            result = json.loads(line[len(RESULT_MARK):])
            results[result.pop("key")] = result
    tail = "\n".join(stderr.strip().splitlines()[-15:])
    for run in group:
        if run["key"] in results:
            continue
        if timed_out:
            results[run["key"]] = dict(status="error",
                                       error=f"timed out after {timeout_s:.0f} s (killed)")
        else:
            results[run["key"]] = dict(status="error",
                                       error=f"worker exited {proc.returncode} without a result",
                                       stderr=tail)
    for r in results.values():
        if r["status"] == "error" and tail and "stderr" not in r:
            r["stderr"] = tail
    return results


def run_all(cfg, log=print):
    """Launch the planned runs under the budget; return the runs with their results."""
    runs = plan_runs(cfg)
    start = time.perf_counter()
    done, unavailable = [], {}
    if cfg["peer"] and importlib.util.find_spec("segmentation_models_pytorch") is None:
        unavailable["smp"] = "not installed: no module named segmentation_models_pytorch"
    groups = _groups(runs, cfg["mode"])
    for index, group in enumerate(groups, start=1):
        kind = group[0]["kind"]
        if kind in unavailable:
            for run in group:
                run["result"] = dict(status="unavailable", error=unavailable[kind])
            continue
        elapsed = time.perf_counter() - start
        estimate = sum(_estimate(run, done, cfg["mode"]) for run in group)
        if elapsed + estimate > cfg["budget_s"]:
            for run in group:
                run["result"] = dict(status="skipped",
                                     error=f"skipped (budget): {elapsed:.0f} s spent, about "
                                           f"{estimate:.0f} s needed, budget "
                                           f"{cfg['budget_s']:.0f} s")
            log(f"[{index}/{len(groups)}] skipped (budget): "
                + ", ".join(r["key"] for r in group), flush=True)
            continue
        names = ", ".join(r["key"] for r in group)
        log(f"[{index}/{len(groups)}] {names} ...", flush=True)
        t0 = time.perf_counter()
        results = _launch(group, cfg, cfg["budget_s"] + GRACE_S - elapsed)
        wall = time.perf_counter() - t0
        for run in group:
            run["result"] = result = results[run["key"]]
            # a group's wall time shared out by each run's own time in the process
            run["wall_s"] = result.get("run_s", wall) if len(group) > 1 else wall
            if result["status"] == "ok":
                done.append(run)
                log(f"    {run['key']}: {result['images_per_s']:.1f} images/s, first step "
                    f"{result['first_step_s']:.1f} s, {run['wall_s']:.1f} s", flush=True)
            else:
                log(f"    {run['key']}: {result['error']}", flush=True)
                if result.get("stderr"):
                    log("      " + result["stderr"].replace("\n", "\n      "), flush=True)
            if result["status"] == "unavailable":
                unavailable[run["kind"]] = result["error"]
    return runs, time.perf_counter() - start


def _gib(value):
    return "n/a" if value is None else f"{value / 2**30:.2f} GiB"


def _side_label(run):
    if run["side"] == "smp":
        return "smp (native torch, eager)"
    return "keras-seg jax (XLA)" if run["backend"] == "jax" else "keras-seg torch (eager)"


def _precision_label(run):
    if run["side"] == "smp":
        return {"float32": "float32", "mixed_bfloat16": "autocast bfloat16",
                "mixed_float16": "autocast float16 + GradScaler"}[run["precision"]]
    return run["precision"]


TABLE_HEADER = ("| model | side | precision | images/s | peak GPU memory | "
                "compile / first step (s) | loss step 1 -> N | trainable params | wall (s) |")


def table_lines(runs, cfg):
    """The markdown table: model-major, then precision, then keras-seg jax, torch, smp."""
    order = {m: i for i, m in enumerate(cfg["models"])}
    precisions = {p: i for i, p in enumerate(cfg["precisions"])}
    sides = {"jax": 0, "torch": 1, "smp": 2}
    lines = [TABLE_HEADER, "|---|---|---|---:|---:|---:|---:|---:|---:|"]
    n = cfg["warmup"] + cfg["steps"]
    for run in sorted(runs, key=lambda r: (order[r["model"]], precisions[r["precision"]],
                                           sides[r["kind"]])):
        r = run["result"]
        head = f"| {MODELS[run['model']]['title']} | {_side_label(run)} | {_precision_label(run)} |"
        if r["status"] != "ok":
            lines.append(f"{head} {r['error'].replace('|', '/')} | | | | | |")
            continue
        loss = f"{r['losses'][0]:.3f} -> {r['losses'][-1]:.3f} (N={n})"
        params = f"{r['params'] / 1e6:.2f} M"
        if r["params_used"] != r["params"]:
            params += f" ({r['params_used'] / 1e6:.2f} M used)"
        lines.append(f"{head} {r['images_per_s']:.1f} | {_gib(r['peak_bytes'])} | "
                     f"{r['first_step_s']:.1f} | {loss} | {params} | "
                     f"{run.get('wall_s', 0.0):.0f} |")
    return lines


def _nvidia_smi():
    try:
        out = subprocess.run(["nvidia-smi", "--query-gpu=name,driver_version,memory.total",
                              "--format=csv,noheader"], capture_output=True, text=True,
                             timeout=30)
    except (OSError, subprocess.SubprocessError):
        return None
    return out.stdout.strip().splitlines()[0] if out.returncode == 0 and out.stdout else None


def report(runs, cfg, argv, total_s):
    """The markdown text: header, settings, table, notes."""
    infos = {}
    for run in runs:
        if run["result"]["status"] == "ok":
            infos.setdefault(run["kind"], run["result"]["info"])
    devices = sorted({i["device"] for i in infos.values()})
    versions = [f"Python {platform.python_version()}"]
    keys = [("keras", "keras"), ("keras_seg", "keras-seg"), ("jax", "jax"),
            ("jaxlib", "jaxlib"), ("torch", "torch"), ("torch_cuda", "CUDA (torch)"),
            ("cudnn", "cuDNN (torch)"), ("smp", "segmentation-models-pytorch"),
            ("timm", "timm"), ("torchvision", "torchvision")]
    for key, label in keys:
        values = sorted({str(i[key]) for i in infos.values() if i.get(key) is not None})
        if values:
            versions.append(f"{label} {', '.join(values)}")
    paths = sorted({i["keras_seg_path"] for i in infos.values() if "keras_seg_path" in i})
    smoke = cfg["mode"] == "smoke"
    n = cfg["warmup"] + cfg["steps"]
    lines = [
        "# GPU check" + (" (CPU smoke: meaningless numbers)" if smoke else ""),
        "",
        f"- date: {datetime.datetime.now(datetime.timezone.utc):%Y-%m-%d %H:%M} UTC",
        "- command: `python benchmarks/gpu_check.py"
        + ("" if not argv else " " + shlex.join(argv)) + "`",
        f"- GPU (nvidia-smi): {_nvidia_smi() or 'n/a'}",
        f"- devices seen by the workers: {', '.join(devices) or 'none'}",
        f"- versions: {'; '.join(versions)}",
        f"- keras_seg measured: {', '.join(paths) or 'n/a'}",
        f"- settings: batch {cfg['batch_size']}, {cfg['size']}x{cfg['size']}, "
        f"{cfg['num_classes']} classes, random data (one fixed batch), SGD lr {cfg['lr']} "
        f"momentum 0.9, SegmentationCrossEntropy / F.cross_entropy; warm-up steps "
        f"{cfg['warmup']} (the first compiles), timed steps {cfg['steps']} (N = {n}); "
        f"cudnn.benchmark {cfg['cudnn_benchmark']}; budget {cfg['budget_s']:.0f} s, "
        f"total {total_s:.0f} s",
    ]
    if smoke:
        lines.append("- smoke models: ResNet widths x 1/8 and narrow heads on the keras-seg "
                     "side, full-size smp models")
    lines += ["", *table_lines(runs, cfg), "", "Notes:", "",
              "- images/s: batch / median wall time of the timed steps, each up to its loss "
              "on the host; compile / first step: the first step's wall time (JAX: trace + "
              "XLA compile + run; eager torch: CUDA / cuDNN initialization).",
              "- peak GPU memory: JAX `memory_stats()['peak_bytes_in_use']` (XLA allocator's "
              "high-water mark since process start, its preallocated pool not counted); "
              "torch `max_memory_allocated()` (tensors through the caching allocator since "
              "process start; cached-but-free blocks and the CUDA context excluded).",
              "- loss: the first and the last step's training loss on the same batch "
              "(memorization; initializations differ between the sides).",
              "- architectures differ where the libraries do: smp's PSPNet stops its encoder "
              "at stride 8 (ResNet-50 through layer2, `encoder_depth=3`), keras-seg's runs "
              "the whole ResNet-50 dilated to stride 8 (the paper); smp's DeepLab v3+ uses "
              "separable ASPP / decoder convs (rates 12, 24, 36, one 3x3 conv after the "
              "concatenation), keras-seg's ResNet version plain ones (rates 6, 12, 18, two): "
              "compare with the parameter column (smp keeps the encoder stages it does not "
              "run as trainable parameters: 'used' counts those that received a gradient).",
              "- every run is a fresh process: one model, one backend, one precision."
              if not smoke else "- smoke: one process per side and backend, every run in it."]
    reserved = [run for run in runs if run["result"]["status"] == "ok"
                and run["kind"] != "jax" and run["result"].get("reserved_bytes")]
    for run in reserved:
        lines.append(f"- {run['key']}: torch max_memory_reserved "
                     f"{_gib(run['result']['reserved_bytes'])}")
    for run in runs:
        if run["result"]["status"] == "error":
            lines.append(f"- {run['key']}: {run['result']['error']}")
    return "\n".join(lines) + "\n"


def write_atomic(path, text):
    """Write ``text`` to ``path`` through a temporary file beside it and ``os.replace``."""
    folder = os.path.dirname(os.path.abspath(path))
    os.makedirs(folder, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{os.path.basename(path)}.", suffix=".tmp", dir=folder)
    umask = os.umask(0)
    os.umask(umask)
    try:
        with os.fdopen(fd, "w") as f:
            f.write(text)
        os.chmod(tmp, 0o666 & ~umask)  # mkstemp's 0600 -> what open() would have made
        os.replace(tmp, path)
    except BaseException:
        if os.path.exists(tmp):
            os.remove(tmp)
        raise
    return path


def _csv(choices):
    def parse(text):
        values = tuple(v.strip() for v in text.split(",") if v.strip())
        bad = [v for v in values if v not in choices]
        if bad or not values:
            raise argparse.ArgumentTypeError(f"{text!r}: choose from {', '.join(choices)}")
        return values
    return parse


def _parser():
    p = argparse.ArgumentParser(
        description=__doc__.split("\n")[0],
        formatter_class=argparse.RawDescriptionHelpFormatter,
        epilog="The module docstring has the offline-machine instructions and what each "
               "column measures.")
    p.add_argument("--cpu-smoke", action="store_true",
                   help="tiny end-to-end run on the CPU (64x64, batch 2, 1 + 2 steps, narrow "
                        "models, torch backend); needs --out")
    p.add_argument("--out", help=f"markdown file to write (GPU default: {DEFAULT_OUT})")
    p.add_argument("--models", type=_csv(tuple(MODELS)), default=tuple(MODELS),
                   help="comma-separated subset of " + ",".join(MODELS))
    p.add_argument("--backends", type=_csv(BACKENDS),
                   help="Keras backends (GPU default jax,torch; smoke default torch)")
    p.add_argument("--precisions", type=_csv(PRECISIONS),
                   help="in priority order (default mixed_bfloat16,float32)")
    p.add_argument("--no-peer", dest="peer", action="store_false",
                   help="leave out the segmentation_models.pytorch rows")
    p.add_argument("--steps", type=int, help="timed steps (GPU 20, smoke 2)")
    p.add_argument("--warmup", type=int,
                   help="untimed steps before them, the first compiles (GPU 5, smoke 1)")
    p.add_argument("--batch-size", type=int, help="GPU 8, smoke 2")
    p.add_argument("--size", type=int, help="image side (GPU 512, smoke 64)")
    p.add_argument("--num-classes", type=int, help="21")
    p.add_argument("--lr", type=float, help="SGD learning rate (0.01)")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--budget-s", type=float,
                   help="launch no run that would end after this many seconds (GPU 420, "
                        f"smoke 240); a run still going {GRACE_S:.0f} s after it is killed")
    p.add_argument("--cudnn-benchmark", action="store_true",
                   help="torch.backends.cudnn.benchmark = True on both torch sides")
    p.add_argument("--list-wheels", action="store_true",
                   help="print the commands that fill wheels/ for the offline machine")
    p.add_argument("--python-version",
                   default=f"{sys.version_info.major}.{sys.version_info.minor}",
                   help="the offline machine's Python, for --list-wheels (default: this one)")
    p.add_argument("--have", default="",
                   help="--list-wheels: leave out these (a,b,c or @FILE of pip freeze output)")
    p.add_argument("--wheel-dir", default="wheels", help="--list-wheels: the folder")
    p.add_argument("--worker", help=argparse.SUPPRESS)
    return p


def config(args):
    """The run's settings: the mode's defaults overridden by the options."""
    mode = "smoke" if args.cpu_smoke else "gpu"
    cfg = dict(MODES[mode], mode=mode, models=args.models, peer=args.peer, seed=args.seed,
               cudnn_benchmark=args.cudnn_benchmark)
    for key in ("backends", "precisions", "steps", "warmup", "batch_size", "size",
                "num_classes", "lr", "budget_s"):
        if getattr(args, key) is not None:
            cfg[key] = getattr(args, key)
    return cfg


def main(argv=None):
    """Command line; returns the exit status (0: at least one run measured)."""
    argv = sys.argv[1:] if argv is None else list(argv)
    parser = _parser()
    args = parser.parse_args(argv)
    if args.worker:
        worker(json.loads(args.worker))
        return 0
    if args.list_wheels:
        try:
            print(list_wheels(args.python_version, _read_have(args.have), args.wheel_dir))
        except importlib.metadata.PackageNotFoundError as e:
            parser.error(f"--list-wheels reads the installed metadata of keras and keras-seg: "
                         f"{e} is not installed here (run it with the project's .venv)")
        return 0
    cfg = config(args)
    for key in ("steps", "warmup", "batch_size", "size", "num_classes"):
        if cfg[key] < 1:
            parser.error(f"--{key.replace('_', '-')} must be at least 1, got {cfg[key]}")
    out = args.out or (None if args.cpu_smoke else DEFAULT_OUT)
    if out is None:
        parser.error("--cpu-smoke needs --out (a temporary path): benchmarks/gpu.md holds "
                     "GPU numbers only")
    if args.cpu_smoke and os.path.abspath(out) == DEFAULT_OUT:
        parser.error("--cpu-smoke may not write benchmarks/gpu.md (GPU numbers only)")

    print(f"gpu_check ({cfg['mode']}): {', '.join(cfg['models'])} on "
          f"{', '.join(cfg['backends'])}" + (" + smp" if cfg["peer"] else "")
          + f", {', '.join(cfg['precisions'])}; batch {cfg['batch_size']}, "
          f"{cfg['size']}x{cfg['size']}, {cfg['warmup']} + {cfg['steps']} steps, budget "
          f"{cfg['budget_s']:.0f} s", flush=True)
    runs, total_s = run_all(cfg)
    text = report(runs, cfg, argv, total_s)
    print()
    print("\n".join(table_lines(runs, cfg)))
    skipped = [r["key"] for r in runs if r["result"]["status"] == "skipped"]
    if skipped:
        print(f"\nskipped for the budget ({len(skipped)}): {', '.join(skipped)}; rerun them "
              "with --models / --backends / --precisions / --no-peer")
    if not any(r["result"]["status"] == "ok" for r in runs):
        print(f"\nno run measured: {out} not written"
              + ("" if args.cpu_smoke else " (benchmarks/gpu.md stays absent until a GPU run "
                 "measures something)"))
        return 1
    write_atomic(out, text)
    print(f"\nwrote {out} ({total_s:.0f} s)")
    return 0


if __name__ == "__main__":
    sys.exit(main())

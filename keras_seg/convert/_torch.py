"""Importing the PyTorch packages whose models keras-seg converts (one place).

torchvision 0.28 (the build the package registry serves) is made for CUDA; beside a
CPU-only torch 2.13 its compiled extension (``torchvision/_C.so``: detection ops such as
``nms``) does not load. torchvision itself tolerates that (``torchvision.extension``
only records it), but ``torchvision/_meta_registrations.py`` then registers fake
kernels for ``torchvision::nms`` and fails with ``RuntimeError: operator
torchvision::nms does not exist``, so ``import torchvision`` - and timm and
segmentation_models.pytorch, which import it - fail. The model definitions are pure
Python and need none of those ops.

:func:`import_torchvision` is the one fix: when the compiled extension cannot be
loaded, it puts an empty module in place of ``torchvision._meta_registrations``
(the fake kernels of operators that do not exist) before importing torchvision.
With a matching CUDA or CPU build of torchvision it changes nothing.
"""

import glob
import importlib.util
import os
import sys
import types

INSTALL_HINT = ("pip install torch==2.13.0 torchvision==0.28.0 timm==1.0.31 "
                "segmentation-models-pytorch==0.6.0 (torch pinned first, so that pip keeps "
                "the CPU build)")


def _missing(package):
    from keras_seg.export import MissingDependencyError

    return MissingDependencyError(
        f"{package} is not installed; it is only needed to build the PyTorch original of a "
        f"converted model ('--check', the parity tests): {INSTALL_HINT}.")


def import_torch():
    """Return the ``torch`` module, or raise an ImportError that says how to install it."""
    try:
        import torch
    except ImportError as err:
        raise _missing("torch") from err
    return torch


def _extension_loads(spec):
    torch = import_torch()
    for folder in spec.submodule_search_locations or ():
        for path in glob.glob(os.path.join(folder, "_C*.so")) + glob.glob(
                os.path.join(folder, "_C*.pyd")):
            try:
                torch.ops.load_library(path)
                return True
            except (OSError, ImportError, RuntimeError):
                return False
    return False


def import_torchvision():
    """Return the ``torchvision`` module, importable beside a CPU-only torch (see above)."""
    if "torchvision" in sys.modules:
        return sys.modules["torchvision"]
    spec = importlib.util.find_spec("torchvision")
    if spec is None:
        raise _missing("torchvision")
    if not _extension_loads(spec):
        stub = types.ModuleType("torchvision._meta_registrations")
        stub.__doc__ = ("Left empty by keras_seg.convert._torch: torchvision's compiled "
                        "operators did not load beside this torch build.")
        sys.modules["torchvision._meta_registrations"] = stub
    import torchvision

    return torchvision


def import_smp():
    """Return ``segmentation_models_pytorch`` (after :func:`import_torchvision`)."""
    import_torchvision()
    try:
        import segmentation_models_pytorch
    except ImportError as err:
        raise _missing("segmentation-models-pytorch") from err
    return segmentation_models_pytorch


def import_timm():
    """Return ``timm`` (after :func:`import_torchvision`)."""
    import_torchvision()
    try:
        import timm
    except ImportError as err:
        raise _missing("timm") from err
    return timm

"""Reading PyTorch checkpoints into ``{name: numpy array}``."""

import os
from collections.abc import Mapping

import numpy as np

TORCH_SUFFIXES = (".pth", ".pt", ".bin")
SAFETENSORS_SUFFIXES = (".safetensors",)
CACHE_SUBDIR = "keras_seg_torch"


def is_url(value):
    """True for an ``http://`` / ``https://`` string."""
    return isinstance(value, str) and value.lower().startswith(("http://", "https://"))


def fetch(url):
    """Download ``url`` once into Keras' cache (``~/.keras/keras_seg_torch``); return the path."""
    import keras

    filename = url.rstrip("/").rsplit("/", 1)[-1].split("?", 1)[0]
    return keras.utils.get_file(fname=filename, origin=url, cache_subdir=CACHE_SUBDIR)


def read_checkpoint(checkpoint):
    """Read a PyTorch checkpoint as ``{parameter name: numpy array}``.

    Args:
        checkpoint: a path to a ``.pth`` / ``.pt`` / ``.bin`` file (a ``state_dict``,
            or a dict holding one under ``"state_dict"`` or ``"model"``; read with
            ``torch.load(weights_only=True)``, which needs torch), a ``.safetensors``
            file (read with numpy through the ``safetensors`` package, no torch), an
            ``http(s)://`` URL of such a file (downloaded once into Keras' cache), or
            an in-memory mapping of names to arrays / tensors.

    Returns:
        A dict of numpy arrays. Keys that all start with ``"module."`` (a model saved
        from ``torch.nn.DataParallel``) lose that prefix.

    Raises:
        FileNotFoundError: no such file.
        ImportError: a ``.pth`` without torch installed, a ``.safetensors`` without
            the safetensors package (the message says what to install).
        ValueError: an unknown suffix, or a file that cannot be read (truncated, not a
            checkpoint, or holding Python objects other than tensors).
    """
    if isinstance(checkpoint, Mapping):
        return _normalise(_unwrap(dict(checkpoint), "the mapping"), "the mapping")
    if not isinstance(checkpoint, (str, os.PathLike)):
        raise TypeError("checkpoint must be a file path, a URL or a mapping of names to arrays, "
                        f"got {type(checkpoint).__name__}.")
    path = fetch(checkpoint) if is_url(checkpoint) else os.fspath(checkpoint)
    if not os.path.isfile(path):
        raise FileNotFoundError(f"checkpoint file {path!r} does not exist.")
    lowered = path.lower()
    if lowered.endswith(SAFETENSORS_SUFFIXES):
        state = _read_safetensors(path)
    elif lowered.endswith(TORCH_SUFFIXES):
        state = _unwrap(_read_torch(path), path)
    else:
        raise ValueError(f"checkpoint {path!r}: unknown file type; expected one of "
                         f"{TORCH_SUFFIXES + SAFETENSORS_SUFFIXES}.")
    return _normalise(state, path)


def _read_safetensors(path):
    try:
        from safetensors import SafetensorError
        from safetensors.numpy import load_file
    except ImportError as err:
        from keras_seg.export import MissingDependencyError

        raise MissingDependencyError(f"reading {path!r} needs the safetensors package: pip "
                                     "install safetensors.") from err
    try:
        return load_file(path)
    except (SafetensorError, OSError, ValueError) as err:
        raise ValueError(f"cannot read the safetensors file {path!r} ({err}); it may be "
                         "truncated or not a safetensors file.") from err


def _read_torch(path):
    try:
        import torch
    except ImportError as err:
        from keras_seg.export import MissingDependencyError

        raise MissingDependencyError(
            f"reading {path!r} needs torch (a .pth / .pt / .bin file is a pickle of torch "
            "tensors): pip install torch, or convert it to .safetensors once on a machine "
            "that has torch (safetensors.torch.save_file(state_dict, 'model.safetensors')), "
            "which keras-seg reads with numpy alone.") from err
    import pickle

    try:
        return torch.load(path, map_location="cpu", weights_only=True)
    except pickle.UnpicklingError as err:
        raise ValueError(
            f"cannot read {path!r} with torch.load(weights_only=True): it holds Python objects "
            f"other than tensors ({str(err).splitlines()[0]}). keras-seg does not unpickle "
            "arbitrary objects; save the model's state_dict() instead.") from err
    except (RuntimeError, EOFError, OSError, ValueError) as err:
        raise ValueError(f"cannot read the PyTorch checkpoint {path!r} "
                         f"({str(err).splitlines()[0]}); it may be truncated or not a "
                         "checkpoint.") from err


def _unwrap(obj, where):
    if isinstance(obj, Mapping):
        for key in ("state_dict", "model"):
            inner = obj.get(key)
            if isinstance(inner, Mapping) and inner and all(
                    hasattr(v, "shape") for v in inner.values()):
                return dict(inner)
        return dict(obj)
    raise ValueError(f"{where}: expected a state_dict (a mapping of names to tensors), got "
                     f"{type(obj).__name__}.")


def _to_numpy(name, value, where):
    if isinstance(value, np.ndarray):
        return value
    if hasattr(value, "detach"):  # a torch tensor
        value = value.detach().cpu()
        if str(value.dtype) in ("torch.bfloat16", "torch.float16"):
            value = value.float()
        return value.numpy()
    if hasattr(value, "__array__"):
        return np.asarray(value)
    raise ValueError(f"{where}: entry {name!r} is a {type(value).__name__}, not a tensor or "
                     "array.")


def _normalise(state, where):
    if not state:
        raise ValueError(f"{where}: the checkpoint holds no tensors.")
    bad = [k for k in state if not isinstance(k, str)]
    if bad:
        raise ValueError(f"{where}: parameter names must be strings, got {bad[:3]!r}.")
    out = {k: _to_numpy(k, v, where) for k, v in state.items()}
    if all(k.startswith("module.") for k in out):
        out = {k[len("module."):]: v for k, v in out.items()}
    return out

"""Checking a converted PyTorch model against the original (tests of keras_seg.convert).

The PyTorch side is built with random weights and random BatchNorm statistics (nothing
is downloaded), its ``state_dict`` saved to a file, converted with
``keras_seg.convert.from_torch``, and both models run on the same random image in
inference mode: ``max |keras - torch| / max |torch|`` must stay under ``TOLERANCE``.
"""

import keras
import numpy as np
import pytest

from keras_seg import convert

TOLERANCE = 1e-4
#: the backend that runs the whole conversion matrix; the others run one encoder per
#: architecture (CI budget)
MATRIX_BACKEND = "torch"

matrix_backend_only = pytest.mark.skipif(
    keras.backend.backend() != MATRIX_BACKEND,
    reason=f"the full conversion matrix runs in the {MATRIX_BACKEND} pass")


def torch_original(arch, seed=0, **options):
    """The PyTorch model of ``arch`` (random weights, random BN statistics), eval mode."""
    torch = convert._torch.import_torch()
    torch.manual_seed(seed)
    module = convert.get(arch).torch_model(**options)
    return convert.randomize_batchnorm(module, seed=seed).eval()


def save_state(module, path):
    """Save ``module.state_dict()`` to ``path`` (``.pth`` with torch.save, ``.safetensors``
    with safetensors.torch); returns ``str(path)``."""
    torch = convert._torch.import_torch()
    state = module.state_dict()
    if str(path).endswith(".safetensors"):
        from safetensors.torch import save_file

        save_file({k: v.contiguous() for k, v in state.items()}, str(path))
    else:
        torch.save(state, str(path))
    return str(path)


def assert_parity(model, arch, module, sizes, tolerance=TOLERANCE):
    """Run both models at each ``(H, W)`` of ``sizes``; assert the relative gap of every
    output; return ``{(size, output): relative gap}``."""
    gaps = {}
    for size in sizes:
        for key, (diff, scale) in convert.compare_with_torch(model, arch, module, size).items():
            assert scale > 0, f"{arch} {key} at {size}: the PyTorch output is all zeros"
            gaps[(tuple(size), key)] = diff / scale
            assert diff / scale <= tolerance, (
                f"{arch} output {key!r} at {size}: max |keras - torch| = {diff:.3g}, "
                f"max |torch| = {scale:.3g}, relative {diff / scale:.3g} > {tolerance}")
    return gaps


def check_conversion(arch, tmp_path, sizes, suffix=".pth", roundtrip=False, **options):
    """Convert a random PyTorch ``arch`` saved to a ``suffix`` file and check parity at
    ``sizes``; with ``roundtrip`` also after a ``.keras`` save / load. Returns
    ``(keras model, torch module)``."""
    module = torch_original(arch, **options)
    path = save_state(module, tmp_path / f"checkpoint{suffix}")
    model = convert.from_torch(arch, path)
    assert_parity(model, arch, module, sizes)
    if roundtrip:
        saved = tmp_path / "converted.keras"
        model.save(saved)
        loaded = keras.saving.load_model(saved)
        assert_parity(loaded, arch, module, sizes)
        image = np.random.default_rng(1).random((1, *sizes[0], 3), dtype=np.float32)
        a = keras.tree.flatten(model(image))
        b = keras.tree.flatten(loaded(image))
        for x, y in zip(a, b, strict=True):
            np.testing.assert_allclose(keras.ops.convert_to_numpy(x),
                                       keras.ops.convert_to_numpy(y), rtol=0, atol=1e-6)
    return model, module

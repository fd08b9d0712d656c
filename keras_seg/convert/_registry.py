"""The table of PyTorch architectures keras-seg converts (``TORCH_ARCHITECTURES``)."""

from collections.abc import Callable
from dataclasses import dataclass, field

#: ``{"torchvision/deeplabv3_resnet50": TorchArchitecture, ...}``, filled by the
#: modules of :mod:`keras_seg.convert` as they are imported.
TORCH_ARCHITECTURES = {}


@dataclass(frozen=True)
class TorchArchitecture:
    """One convertible PyTorch architecture.

    Attributes:
        name: ``"<source>/<name>"``, e.g. ``"torchvision/deeplabv3_resnet50"``,
            ``"smp/Unet-resnet34"``, ``"timm/resnet50"``.
        source: ``"torchvision"``, ``"smp"`` or ``"timm"``.
        keras_builder: the keras-seg call it converts to, as text (for the docs).
        infer: ``state -> options``: what the checkpoint decides (``num_classes``,
            ``aux``), read from its shapes.
        build: ``(input_shape=..., **options) -> keras.Model``: the keras-seg model.
        mapping: ``model -> {keras layer name: checkpoint prefix | Separable | Custom}``.
        torch_model: ``(**options) -> torch.nn.Module`` with random weights: the
            PyTorch original (for ``--check`` and the parity tests; needs its package).
        torch_outputs: ``(module, image NCHW tensor) -> {output name: NCHW tensor}``
            keyed as the keras model's outputs (``"logits"``, ``"aux"``, ``"P5"``...).
        input_multiple: the PyTorch model takes sizes that are multiples of this (1: any).
        ignored: checkpoint key prefixes left out on purpose (documented in ``notes``).
        checkpoints: ``{known name: URL}`` of published checkpoints.
        reported: what the publisher reports for those checkpoints (for the docs).
        notes: what differs from the keras-seg paper defaults, in words.
    """

    name: str
    source: str
    keras_builder: str
    infer: Callable
    build: Callable
    mapping: Callable
    torch_model: Callable
    torch_outputs: Callable
    input_multiple: int = 1
    ignored: tuple = ()
    checkpoints: dict = field(default_factory=dict)
    reported: str = ""
    notes: str = ""


def register(arch):
    """Add ``arch`` (a :class:`TorchArchitecture`) to :data:`TORCH_ARCHITECTURES`."""
    if arch.name in TORCH_ARCHITECTURES:
        raise ValueError(f"architecture {arch.name!r} is registered twice.")
    TORCH_ARCHITECTURES[arch.name] = arch
    return arch


def get(name):
    """The :class:`TorchArchitecture` called ``name``, or a ValueError listing them."""
    if isinstance(name, TorchArchitecture):
        return name
    if name not in TORCH_ARCHITECTURES:
        raise ValueError(f"unknown architecture {name!r}; keras_seg.convert.TORCH_ARCHITECTURES "
                         f"has: {', '.join(sorted(TORCH_ARCHITECTURES))}.")
    return TORCH_ARCHITECTURES[name]

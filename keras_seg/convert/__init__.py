"""Pretrained PyTorch checkpoints in keras-seg models, with numerical parity.

The public pretrained segmentation checkpoints for the classic architectures are
PyTorch files: torchvision's FCN and DeepLab v3, segmentation_models.pytorch's U-Net,
LinkNet, DeepLab v3 / v3+ and PSPNet, timm's and torchvision's ImageNet ResNets. This
module builds the keras-seg model that computes the same function (each difference
from the paper defaults is a documented option of the builder; see
:data:`TORCH_ARCHITECTURES` and each entry's ``keras_builder`` / ``notes``) and loads
the checkpoint into it. The result is a plain keras-seg model: it runs on TensorFlow,
JAX and PyTorch, fine-tunes with ``model.fit``, saves as ``.keras`` and exports.

Reading ``.safetensors`` needs numpy and the ``safetensors`` package only; ``.pth``
files need torch (``torch.load(weights_only=True)``). Building the PyTorch original
(:func:`compare_with_torch`, ``keras-seg convert --check``) needs its package
(torchvision, segmentation-models-pytorch, timm).
"""

import keras
import numpy as np

# each module registers its entries in TORCH_ARCHITECTURES
from keras_seg.convert import (
    _smp_pyramid,  # noqa: E402, F401, I001
    _smp_unet,  # noqa: E402, F401, I001
    _torch,
    _torchvision,  # noqa: E402, F401, I001
    resnet,  # noqa: E402, F401, I001
)
from keras_seg.convert._checkpoint import is_url, read_checkpoint
from keras_seg.convert._engine import Custom, Separable, assign
from keras_seg.convert._registry import TORCH_ARCHITECTURES, TorchArchitecture, get, register


def _resolve_checkpoint(arch, checkpoint):
    """A known checkpoint name becomes its URL; everything else is read as given."""
    if isinstance(checkpoint, str) and checkpoint in arch.checkpoints:
        return arch.checkpoints[checkpoint]
    if isinstance(checkpoint, str) and not is_url(checkpoint) and arch.checkpoints and \
            "/" not in checkpoint and "." not in checkpoint:
        raise ValueError(f"{arch.name}: unknown checkpoint name {checkpoint!r}; known: "
                         f"{', '.join(sorted(arch.checkpoints))} (or pass a file path / URL).")
    return checkpoint


def load_state(arch, checkpoint):
    """``(architecture, {key: numpy array})`` for ``arch`` and a checkpoint (see
    :func:`from_torch` for what ``checkpoint`` may be)."""
    arch = get(arch)
    return arch, read_checkpoint(_resolve_checkpoint(arch, checkpoint))


#: torchvision's ImageNet normalization, which the PyTorch models expect on [0, 1] images
IMAGENET_MEAN = (0.485, 0.456, 0.406)
IMAGENET_STD = (0.229, 0.224, 0.225)
#: the name of the input normalization layer :func:`from_torch` adds
NORMALIZATION_LAYER = "input_normalization"


def from_torch(arch, checkpoint, input_shape=(None, None, 3), normalize=True, **options):
    """Build the keras-seg model of a PyTorch architecture and load a checkpoint into it.

    Args:
        arch: a name of :data:`TORCH_ARCHITECTURES`: ``"torchvision/<name>"`` (e.g.
            ``"torchvision/deeplabv3_resnet101"``), ``"smp/<Model>-<encoder>"`` (e.g.
            ``"smp/Unet-resnet34"``), ``"timm/<resnet>"`` / ``"torchvision/<resnet>"``
            (pyramid backbones).
        checkpoint: a ``.pth`` / ``.pt`` / ``.bin`` file (a state_dict, or a dict
            holding one under ``"state_dict"`` / ``"model"``), a ``.safetensors``
            file, an in-memory mapping of names to arrays or tensors, an ``http(s)``
            URL (downloaded once with ``keras.utils.get_file``), or a known checkpoint
            name of ``arch`` (``TORCH_ARCHITECTURES[arch].checkpoints``, e.g.
            ``"COCO_WITH_VOC_LABELS_V1"``).
        input_shape: ``(H, W, C)`` of the Keras model; H and W may be None.
        normalize: the PyTorch models take images normalized with ImageNet's mean and
            std (:data:`IMAGENET_MEAN`, :data:`IMAGENET_STD`); keras-seg models take
            images in [0, 1] (what :func:`keras_seg.inference.predict` and the training
            pipeline feed). True (default) puts that normalization inside the model
            (:func:`with_input_normalization`, a layer named ``"input_normalization"``
            in front of the converted network), so the model takes [0, 1] images like every
            keras-seg model. False leaves it out: the model then takes normalized
            images, as the PyTorch one.
        **options: ``aux=False`` builds a model without the auxiliary head of a
            checkpoint that has one (its ``aux_classifier.*`` weights are then not
            loaded, on purpose); ``num_classes`` / ``aux`` given explicitly must agree
            with the checkpoint.

    Returns:
        The keras-seg model (a :class:`keras_seg.SegmentationModel` for the
        segmentation architectures, the pyramid ``keras.Model`` for the backbones) with
        the checkpoint's weights: ``(batch, H, W, 3)`` images -> float32 logits
        ``(batch, H, W, num_classes)`` (a dict with ``"aux"`` too where the checkpoint
        has an auxiliary head). Inference mode is the default of a Keras call;
        fine-tune it with ``model.fit``.

    Raises:
        ValueError: unknown architecture, a checkpoint of another architecture or
            encoder, missing / unexpected keys, shape mismatches (the message names
            them), an unreadable file.
        ImportError: a ``.pth`` without torch, a ``.safetensors`` without safetensors.
    """
    arch, state = load_state(arch, checkpoint)
    inferred = arch.infer(state)
    build_options = dict(inferred)
    ignored = list(arch.ignored)
    for key, value in options.items():
        if key == "aux" and value is False and inferred.get("aux"):
            build_options["aux"] = False
            ignored.append("aux_classifier.")
            continue
        if key == "aux" and "aux" not in inferred:
            if value is False:  # what was asked: a model without an auxiliary head
                continue
            raise ValueError(f"{arch.name}: aux={value!r} was asked but this architecture "
                             "has no auxiliary head.")
        if key not in inferred:
            raise ValueError(f"{arch.name}: unknown option {key}={value!r}; the checkpoint "
                             f"decides {sorted(inferred) or 'nothing'} and only aux=False "
                             "may drop an auxiliary head.")
        if value != inferred[key]:
            raise ValueError(f"{arch.name}: {key}={value!r} was asked but the checkpoint has "
                             f"{key}={inferred[key]!r}.")
    model = arch.build(input_shape=tuple(input_shape), **build_options)
    assign(model, state, arch.mapping(model), arch.name, ignored=tuple(ignored))
    return with_input_normalization(model) if normalize else model


def with_input_normalization(model, mean=IMAGENET_MEAN, std=IMAGENET_STD):
    """``model`` behind a per-channel normalization ``(x - mean) / std``.

    The returned model takes [0, 1] images, normalizes them and runs ``model`` (nested,
    weights shared). The normalization is a ``keras.layers.Rescaling`` named
    ``"input_normalization"`` with per-channel ``scale = 1 / std`` and ``offset =
    -mean / std``: constants in the graph (``keras.layers.Normalization`` keeps its
    mean and variance as captured tensors, which the ONNX export turned into extra
    graph inputs). A :class:`keras_seg.SegmentationModel` stays one, with the same
    output stride, padding and loss weights.
    """
    from keras_seg.model_base import SegmentationModel

    mean = np.asarray(mean, dtype=np.float64)
    std = np.asarray(std, dtype=np.float64)
    shape = tuple(model.inputs[0].shape[1:])
    inputs = keras.Input(shape=shape, name="image")
    norm = keras.layers.Rescaling(scale=(1.0 / std).tolist(), offset=(-mean / std).tolist(),
                                  name=NORMALIZATION_LAYER)
    outputs = model(norm(inputs))
    if isinstance(model, SegmentationModel):
        return SegmentationModel(
            inputs, outputs, name=model.name, output_stride=model.output_stride,
            padding=model.padding,
            loss_weights=model.default_loss_weights if isinstance(outputs, dict) else None)
    return keras.Model(inputs, outputs, name=model.name)


def input_normalization(model):
    """``(mean, std)`` arrays of the input normalization :func:`from_torch` added to
    ``model``, or None."""
    try:
        layer = model.get_layer(NORMALIZATION_LAYER)
    except ValueError:
        return None
    scale = np.asarray(layer.scale, dtype=np.float64).reshape(-1)
    offset = np.asarray(layer.offset, dtype=np.float64).reshape(-1)
    return -offset / scale, 1.0 / scale


def load_torch_weights(model, checkpoint, arch):
    """Load a PyTorch checkpoint of ``arch`` into an already-built keras-seg ``model``.

    ``model`` must have been built as :func:`from_torch` builds it (the entry's
    ``keras_builder``); the checkpoint is read as in :func:`from_torch`. All or
    nothing: on any error the model's weights are unchanged.

    Returns:
        ``model``.
    """
    arch, state = load_state(arch, checkpoint)
    assign(model, state, arch.mapping(model), arch.name, ignored=arch.ignored)
    return model


def torch_state(module):
    """``{key: numpy array}`` of a torch module's ``state_dict()``."""
    return read_checkpoint(module.state_dict())


def randomize_batchnorm(module, seed=0):
    """Give every BatchNorm of a torch ``module`` random statistics and affine
    parameters (a freshly built model has mean 0 / variance 1, which would hide a
    wrong mapping of them). Returns ``module``."""
    torch = _torch.import_torch()
    gen = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for sub in module.modules():
            if isinstance(sub, torch.nn.modules.batchnorm._BatchNorm):
                n = sub.num_features
                sub.running_mean.copy_(torch.randn(n, generator=gen) * 0.1)
                sub.running_var.copy_(torch.rand(n, generator=gen) * 0.5 + 0.75)
                if sub.affine:
                    sub.weight.copy_(torch.rand(n, generator=gen) * 0.5 + 0.75)
                    sub.bias.copy_(torch.randn(n, generator=gen) * 0.1)
    return module


def torch_module(arch, checkpoint=None, **options):
    """The PyTorch original of ``arch`` in eval mode, with ``checkpoint`` loaded
    (strictly) when given. Needs torch and the architecture's package.

    ``options`` as :func:`from_torch`'s: with a checkpoint, what it decides
    (``num_classes``, ``aux``) is read from it; ``aux=False`` builds the module without
    the checkpoint's auxiliary head and leaves its ``aux_classifier.*`` weights out (and
    asks nothing of an architecture that has none)."""
    arch = get(arch)
    torch = _torch.import_torch()
    state = None
    if checkpoint is not None:
        _, state = load_state(arch, checkpoint)
        inferred = arch.infer(state)
        if "aux" in options and "aux" not in inferred:
            if options["aux"] is not False:
                raise ValueError(f"{arch.name}: aux={options['aux']!r} was asked but this "
                                 "architecture has no auxiliary head.")
            options = {k: v for k, v in options.items() if k != "aux"}
        if options.get("aux") is False and inferred.get("aux"):
            state = {k: v for k, v in state.items() if not k.startswith("aux_classifier.")}
        options = {**inferred, **options}
    module = arch.torch_model(**options)
    if state is not None:
        module.load_state_dict({k: torch.from_numpy(np.ascontiguousarray(v))
                                for k, v in state.items()}, strict=True)
    return module.eval()


def compare_with_torch(model, arch, module, size, seed=0):
    """Run ``model`` and the PyTorch ``module`` on one random image; return the gaps.

    Args:
        model: the converted keras-seg model.
        arch: its architecture name.
        module: the PyTorch original with the same weights (:func:`torch_module`).
        size: ``(height, width)`` of the image (a multiple of the entry's
            ``input_multiple``).
        seed: seed of the image (uniform in [0, 1)).

    Returns:
        ``{output name: (max |keras - torch|, max |torch|)}`` over the outputs both
        models have.
        When ``model`` has :func:`from_torch`'s input normalization, the image (in
        [0, 1]) goes to it as is and to ``module`` normalized.
    """
    arch = get(arch)
    torch = _torch.import_torch()
    channels = model.inputs[0].shape[-1] or 3
    image = np.random.default_rng(seed).random((1, size[0], size[1], channels),
                                               dtype=np.float32)
    ours = model(image, training=False)
    if not isinstance(ours, dict):
        ours = {"logits": ours}
    torch_image = image
    norm = input_normalization(model)
    if norm is not None:
        torch_image = ((image - norm[0]) / norm[1]).astype(np.float32)
    with torch.no_grad():
        theirs = arch.torch_outputs(module.eval(),
                                    torch.from_numpy(torch_image).permute(0, 3, 1, 2))
    gaps = {}
    # outputs of both models (a model converted with aux=False has no "aux")
    shared = {k: v for k, v in theirs.items() if k in ours}
    if not shared:
        raise ValueError(f"{arch.name}: the models share no output: keras-seg has "
                         f"{sorted(ours)}, PyTorch {sorted(theirs)}.")
    for key, value in shared.items():
        ref = value.permute(0, 2, 3, 1).numpy()
        mine = np.asarray(_to_numpy(ours[key]))
        if mine.shape != ref.shape:
            raise ValueError(f"{arch.name}: output {key!r} is {mine.shape} in keras-seg and "
                             f"{ref.shape} in PyTorch.")
        gaps[key] = (float(np.max(np.abs(mine - ref))), float(np.max(np.abs(ref))))
    return gaps


def _to_numpy(x):
    import keras

    return keras.ops.convert_to_numpy(x)


__all__ = [
    "Custom",
    "Separable",
    "TORCH_ARCHITECTURES",
    "TorchArchitecture",
    "compare_with_torch",
    "from_torch",
    "get",
    "input_normalization",
    "with_input_normalization",
    "load_state",
    "load_torch_weights",
    "randomize_batchnorm",
    "read_checkpoint",
    "register",
    "torch_module",
    "torch_state",
]

"""Export a segmentation model to SavedModel, ONNX or LiteRT from any backend, checked.

Use as ``keras_seg.export.export(model, "model.onnx", format="onnx")``.

Every export goes through the TensorFlow backend of Keras, the one route that
gave correct artifacts for all three formats here:

- on the TensorFlow backend, in this process (Keras' ``model.export``: a
  ``tf.function`` traced with a dynamic input signature; ONNX through tf2onnx,
  LiteRT through the TFLite converter);
- on the JAX and PyTorch backends, the model is saved to a temporary ``.keras``
  file and a subprocess with ``KERAS_BACKEND=tensorflow`` loads and exports it.
  (ONNX exported straight from the torch backend baked the traced input size
  into a resize and returned wrong numbers at another size without an error;
  ONNX from JAX needs ``jax2onnx``.)

Then the artifact is run by its own runtime (TensorFlow for a SavedModel,
onnxruntime for ONNX, the LiteRT interpreter for LiteRT) on random inputs at two
sizes and compared with the ORIGINAL model's predictions on the calling backend.
The artifact is written to a temporary path beside the target
(``.NAME.partial-PID-XXXXXXXX``, hidden, ``PID`` the exporting process) and moved
into place only once it exists and passed the check, so the target never holds a
half-written or unchecked file. An export that was killed leaves that temporary
behind; the next export to the same target removes it (only names of exactly that
pattern for that target, and only when process ``PID`` no longer runs). The target's
folder is created and checked writable before the (slow) export starts.

What the model expects and returns travels with the artifact where the format has
room for it (:func:`export_metadata`, read back with :func:`read_metadata`):
``keras_seg.input_scale`` (:data:`INPUT_SCALE`: float32 images in [0, 1], uint8 images
divided by 255), ``keras_seg.input``, ``keras_seg.output``, ``keras_seg.num_classes``,
``keras_seg.output_stride`` and ``keras_seg.padding`` when the model declares its
geometry, and ``keras_seg.version``:

- ONNX: the model's ``metadata_props`` (``onnx.load(path).metadata_props``, or
  ``onnxruntime.InferenceSession(path).get_modelmeta().custom_metadata_map``);
- SavedModel: ``assets.extra/keras_seg.json`` inside the SavedModel directory, the
  folder TensorFlow leaves to "higher-level libraries and users" (its loader and
  TF Serving ignore it; it moves and copies with the model). A SavedModel's
  signatures hold tensors only, with no free-text field, so the JSON file is where
  such notes go;
- LiteRT: not stored (the TFLite converter has no API for flatbuffer metadata);
  the same facts are in :class:`ExportReport` (printed by ``keras-seg export``).

Formats and their input shapes:

- ``"saved_model"``: a TensorFlow SavedModel directory, endpoint ``serve`` (and
  signature ``serving_default``, input ``"image"``), input ``(None, None, None, C)``.
- ``"onnx"``: an ONNX file, input ``"image"`` of shape ``(batch, height, width, C)``,
  all three dynamic.
- ``"litert"``: a LiteRT (TFLite) flatbuffer with builtin ops only, input
  ``(None, H, W, C)``: the batch is dynamic but the spatial size is fixed at
  ``input_size``. With a dynamic spatial size the TFLite converter cannot infer
  the channel count after the models' pad-to-stride layer and falls back to
  TensorFlow "select" ops that the plain LiteRT runtime does not run, so one
  artifact serves one image size (resize or pad images to it).
"""

import dataclasses
import importlib.util
import json
import os
import re
import shutil
import subprocess
import sys
import tempfile
import time
import uuid
import warnings

import keras
import numpy as np

from keras_seg.model_base import inference_model, model_geometry

FORMATS = ("saved_model", "onnx", "litert")
DEFAULT_SIZES = ((67, 93), (45, 71))
INSTALL_HINT = "pip install keras-seg[tensorflow,export]"

#: the input scale every keras-seg model is trained for (stored as ``keras_seg.input_scale``)
INPUT_SCALE = ("float32 in [0, 1] (uint8 images divided by 255), as keras-seg's training "
               "pipeline and keras_seg.inference.predict feed it; the model does not rescale "
               "its input")
#: what the artifact returns (stored as ``keras_seg.output``)
OUTPUT_DESCRIPTION = ("float32 logits (batch, h, w, num_classes) before softmax (one "
                      "channel: a sigmoid logit); the class map is their argmax over the "
                      "last axis")
#: where a SavedModel export keeps :func:`export_metadata`, relative to its directory
SAVED_MODEL_METADATA = os.path.join("assets.extra", "keras_seg.json")

# what each format needs, to export (always through TensorFlow) and to check
_EXPORT_NEEDS = {"saved_model": ("tensorflow",), "onnx": ("tensorflow", "tf2onnx", "onnx"),
                 "litert": ("tensorflow",)}
_CHECK_NEEDS = {"saved_model": ("tensorflow",), "onnx": ("onnxruntime",),
                "litert": ("tensorflow",)}


class ParityError(RuntimeError):
    """The exported artifact's outputs differ from the Keras model's beyond tolerance."""


class MissingDependencyError(ImportError):
    """A package an export needs (TensorFlow, tf2onnx, onnx, onnxruntime) is not
    installed; the message names the ``pip install`` that adds it."""


@dataclasses.dataclass
class ExportReport:
    """What :func:`export` did.

    Attributes:
        path: absolute path of the artifact.
        format: ``"saved_model"``, ``"onnx"`` or ``"litert"``.
        backend: the Keras backend of the calling process.
        route: how the artifact was produced, e.g. ``"tensorflow backend, in process"``
            or ``"tensorflow backend, subprocess from a .keras file (caller: torch)"``.
        input_shape: the artifact's input shape, ``None`` for a dynamic dimension.
        checked: whether the parity check ran.
        max_abs_diff: ``{"HxW (batch B)": max |artifact - keras|}`` per checked input.
        max_rel_diff: the largest ``max_abs_diff / max |keras output|`` over the
            checked inputs (None if unchecked).
        rtol: the relative tolerance the check used.
        seconds: wall time of the whole export, check included.
        metadata: :func:`export_metadata` of the model (stored in ONNX and
            SavedModel artifacts, see the module docstring).
    """

    path: str
    format: str
    backend: str
    route: str
    input_shape: tuple
    checked: bool = False
    max_abs_diff: dict = dataclasses.field(default_factory=dict)
    max_rel_diff: float | None = None
    rtol: float | None = None
    seconds: float = 0.0
    metadata: dict = dataclasses.field(default_factory=dict)

    def __str__(self):
        lines = [f"exported {self.format} to {self.path}",
                 f"  route: {self.route}",
                 f"  input shape: {self.input_shape}, {INPUT_SCALE}",
                 f"  output: {OUTPUT_DESCRIPTION}"]
        stored = {"onnx": "the ONNX metadata_props",
                  "saved_model": SAVED_MODEL_METADATA}.get(self.format)
        if stored and self.metadata:
            lines.append(f"  metadata (in {stored}): " + ", ".join(
                f"{k.removeprefix('keras_seg.')}={v}" for k, v in self.metadata.items()
                if k in ("keras_seg.num_classes", "keras_seg.output_stride",
                         "keras_seg.padding")))
        if self.checked:
            diffs = ", ".join(f"{k}: {v:.3g}" for k, v in self.max_abs_diff.items())
            lines.append(f"  parity vs keras ({self.backend}): max abs diff {diffs}; "
                         f"max relative {self.max_rel_diff:.3g} <= rtol {self.rtol:g}")
        else:
            lines.append("  parity check skipped")
        lines.append(f"  {self.seconds:.1f} s")
        return "\n".join(lines)


def export(model, path, format="saved_model", *, check=True, sizes=DEFAULT_SIZES, rtol=None,
           opset=None, input_size=None, overwrite=True, seed=0, verbose=False):
    """Export the inference model of ``model`` and check the artifact against Keras.

    Works from the TensorFlow, JAX and PyTorch backends; see the module docstring
    for the route (always through the TensorFlow backend of Keras, in a subprocess
    when the calling backend is another one) and for each format's input shape.

    Args:
        model: a segmentation ``keras.Model``: one image input ``(batch, H, W, C)``
            and logits ``(batch, H', W', num_classes)`` (or a dict of outputs with
            a ``"logits"`` entry: only that one is exported, see
            :func:`keras_seg.inference_model`).
        path: the target: a directory for ``"saved_model"``, a file otherwise
            (``.onnx`` / ``.tflite`` by convention; any name is accepted).
        format: ``"saved_model"``, ``"onnx"`` or ``"litert"``.
        check: run the exported artifact on random inputs and compare it with
            ``model`` on the calling backend (raises :class:`ParityError` beyond
            ``rtol``; the target is then left untouched).
        sizes: the ``(H, W)`` input sizes of the check (the first at batch 1, the
            others at batch 2); the defaults are not multiples of 32. Ignored for
            ``"litert"`` and for a model with a static input size, which are
            checked at their one size, at batch 1 and 2.
        rtol: maximum allowed ``max |artifact - keras| / max |keras|`` per input.
            Default: ``1e-4`` for a float32 model, ``1e-2`` for a model computing
            in float16 / bfloat16.
        opset: ONNX opset version (``"onnx"`` only); None lets tf2onnx choose.
        input_size: ``(H, W)`` of the LiteRT artifact; required for ``"litert"``
            unless the model's input size is static. Not used by the other
            formats, whose spatial dimensions stay dynamic.
        overwrite: replace an existing target; False raises ``FileExistsError``.
        seed: seed of the random check inputs (uniform in [0, 1)).
        verbose: print the converters' messages.

    The model is expected to take float32 images in [0, 1] (uint8 images divided
    by 255, as keras-seg's data pipeline and :func:`keras_seg.inference.predict`
    do); that, its number of classes and its declared geometry are stored with ONNX
    and SavedModel artifacts (:func:`export_metadata`, see the module docstring).

    Returns:
        An :class:`ExportReport`.

    Raises:
        ValueError: unknown format, a model that is not a segmentation model
            (not one 4-D image input and one 4-D output), a bad ``sizes`` /
            ``input_size``, or a target of the wrong kind (file vs directory).
        PermissionError, NotADirectoryError: the target's folder cannot be created
            or written (checked before the export starts).
        FileExistsError: the target exists and ``overwrite`` is False.
        MissingDependencyError: TensorFlow (or tf2onnx / onnx / onnxruntime for
            ONNX) is not installed: ``pip install keras-seg[tensorflow,export]``
            (an ``ImportError``).
        ParityError: the artifact's outputs differ from the model's beyond ``rtol``.
        RuntimeError: the TensorFlow-backend subprocess failed (its log is included).
    """
    start = time.time()
    format = _check_format(format)
    infer = _inference_model(model)
    channels, static_hw = _check_segmentation_model(infer)
    _require(_EXPORT_NEEDS[format] + (_CHECK_NEEDS[format] if check else ()),
             f"export to {format}")
    hw = _artifact_hw(format, static_hw, input_size)
    input_shape = (None, *hw, channels)
    check_inputs = _check_inputs(sizes, hw, channels, seed) if check else None

    target = os.path.abspath(os.fspath(path))
    _check_target(target, format, overwrite)
    _make_parent(target)
    remove_leftovers(target)
    suffix = ".tflite" if format == "litert" else ""  # the TFLite exporter wants the suffix
    tmp = os.path.join(os.path.dirname(target),
                       f"{_partial_prefix(target)}{os.getpid()}-{uuid.uuid4().hex[:8]}{suffix}")
    backend = keras.backend.backend()
    report = ExportReport(path=target, format=format, backend=backend, route="",
                          input_shape=input_shape, metadata=export_metadata(model))
    try:
        _reserve(tmp, format, target)  # proves the folder writable before the slow part
        report.route = _write_artifact(infer, tmp, format, input_shape, opset, verbose)
        _store_metadata(tmp, format, report.metadata)
        if check:
            diffs, rel, used_rtol = _parity(infer, tmp, format, check_inputs, rtol)
            report.checked = True
            report.max_abs_diff, report.max_rel_diff, report.rtol = diffs, rel, used_rtol
        _move_into_place(tmp, target)
    finally:
        _remove(tmp)
    report.seconds = time.time() - start
    return report


def check(model, path, format, *, sizes=DEFAULT_SIZES, rtol=None, input_size=None, seed=0):
    """Check an exported artifact against ``model`` (the parity check of :func:`export`).

    Args:
        model: the Keras model the artifact was exported from (its inference
            model is compared), on the current backend.
        path: the artifact (SavedModel directory, ``.onnx`` or ``.tflite`` file).
        format: ``"saved_model"``, ``"onnx"`` or ``"litert"``.
        sizes, rtol, input_size, seed: as in :func:`export`; for LiteRT the
            artifact's own fixed size is used when ``input_size`` is None.

    Returns:
        ``(max_abs_diff, max_rel_diff)``: a dict ``{"HxW (batch B)": float}`` and
        the largest relative difference.

    Raises:
        ParityError: beyond ``rtol``; FileNotFoundError: no artifact at ``path``.
    """
    format = _check_format(format)
    infer = _inference_model(model)
    channels, static_hw = _check_segmentation_model(infer)
    _require(_CHECK_NEEDS[format], f"check a {format} artifact")
    path = os.path.abspath(os.fspath(path))
    if not os.path.exists(path):
        raise FileNotFoundError(f"No exported artifact at {path!r}.")
    if format == "litert" and input_size is None and static_hw == (None, None):
        input_size = _litert_input_hw(path)
    hw = _artifact_hw(format, static_hw, input_size)
    diffs, rel, _ = _parity(infer, path, format, _check_inputs(sizes, hw, channels, seed), rtol)
    return diffs, rel


def export_metadata(model):
    """What an exported artifact of ``model`` takes and returns, as string pairs.

    Stored in ONNX ``metadata_props`` and in a SavedModel's
    ``assets.extra/keras_seg.json`` (see the module docstring).

    Args:
        model: the segmentation ``keras.Model`` being exported (its inference model is
            described; a :class:`keras_seg.SegmentationModel` adds its declared
            geometry).

    Returns:
        ``{key: str}`` with ``keras_seg.version``, ``keras_seg.input`` (name and
        layout), ``keras_seg.input_scale`` (:data:`INPUT_SCALE`), ``keras_seg.output``
        (:data:`OUTPUT_DESCRIPTION`), ``keras_seg.num_classes``, and
        ``keras_seg.output_stride`` / ``keras_seg.padding`` when the model declares
        them (:func:`keras_seg.model_base.model_geometry`).

    Raises:
        ValueError: ``model`` is not a segmentation model.
    """
    from keras_seg import __version__

    infer = _inference_model(model)
    channels, _ = _check_segmentation_model(infer)
    metadata = {
        "keras_seg.version": __version__,
        "keras_seg.input": f"image: (batch, height, width, {channels}), channels last",
        "keras_seg.input_scale": INPUT_SCALE,
        "keras_seg.output": OUTPUT_DESCRIPTION,
        "keras_seg.num_classes": str(int(infer.outputs[0].shape[-1])),
    }
    geometry = model_geometry(model) or model_geometry(infer)
    if geometry is not None:
        metadata["keras_seg.output_stride"] = str(geometry["output_stride"])
        metadata["keras_seg.padding"] = str(geometry["padding"])
    return metadata


def read_metadata(path, format):
    """The :func:`export_metadata` stored with an exported artifact.

    Args:
        path: the artifact: an ``.onnx`` file or a SavedModel directory.
        format: ``"onnx"`` or ``"saved_model"`` (LiteRT artifacts carry none).

    Returns:
        ``{key: str}`` (empty for an artifact exported without it).

    Raises:
        ValueError: ``format`` is ``"litert"`` or unknown.
        FileNotFoundError: no artifact at ``path``.
    """
    format = _check_format(format)
    if format == "litert":
        raise ValueError("LiteRT artifacts carry no keras-seg metadata (the TFLite "
                         "converter has no API for it); see the ExportReport instead.")
    path = os.fspath(path)
    if not os.path.exists(path):
        raise FileNotFoundError(f"No exported artifact at {path!r}.")
    if format == "onnx":
        _require(("onnx",), "read ONNX metadata")
        import onnx

        proto = onnx.load(path, load_external_data=False)
        return {p.key: p.value for p in proto.metadata_props if p.key.startswith("keras_seg.")}
    file = os.path.join(path, SAVED_MODEL_METADATA)
    if not os.path.exists(file):
        return {}
    with open(file) as f:
        return json.load(f)


# --- validation -------------------------------------------------------------------------


def _inference_model(model):
    """:func:`keras_seg.inference_model` of ``model``, refusing what is no segmentation
    model with a ValueError (Keras raises AttributeError for ``.output`` of a
    Sequential on some backends, or of a model that was never built)."""
    if not isinstance(model, keras.Model):
        raise ValueError(f"Expected a keras.Model, got {type(model).__name__}.")
    if not getattr(model, "inputs", None) or not getattr(model, "outputs", None):
        raise ValueError(
            f"Model {model.name!r} has no defined inputs/outputs (a subclassed or never-built "
            "model); build it functionally from keras.Input((None, None, channels)).")
    if isinstance(model, keras.Sequential):  # one output, but no `.output` on some backends
        return model
    return inference_model(model)



def _check_format(format):
    if format not in FORMATS:
        raise ValueError(f"Unknown export format {format!r}; choose one of "
                         f"{', '.join(repr(f) for f in FORMATS)}.")
    return format


def _check_segmentation_model(model):
    """Return ``(channels, (H, W))`` of a one-input, one-4-D-output image model."""
    if not isinstance(model, keras.Model):
        raise ValueError(f"Expected a keras.Model, got {type(model).__name__}.")
    if len(model.inputs) != 1 or len(model.inputs[0].shape) != 4:
        shapes = [tuple(t.shape) for t in model.inputs]
        raise ValueError(
            f"Model {model.name!r} is not a segmentation model: it needs one image input "
            f"(batch, H, W, C), it has inputs {shapes}.")
    out = model.outputs
    if len(out) != 1 or len(out[0].shape) != 4:
        shapes = [tuple(t.shape) for t in out]
        raise ValueError(
            f"Model {model.name!r} is not a segmentation model: its output must be logits "
            f"(batch, H, W, num_classes), it has outputs {shapes}. Export a model from "
            "keras_seg.applications (or any model mapping an image to a per-pixel map).")
    _, h, w, channels = model.inputs[0].shape
    if channels is None:
        raise ValueError(f"Model {model.name!r} has an unknown channel count in its input "
                         "(batch, H, W, None); build it with a fixed number of channels.")
    return int(channels), (h, w)


def _hw_pair(value, what):
    try:
        h, w = (int(v) for v in value)
    except (TypeError, ValueError):
        raise ValueError(f"{what} must be a (height, width) pair of positive ints, "
                         f"got {value!r}.") from None
    if h < 1 or w < 1:
        raise ValueError(f"{what} must be a (height, width) pair of positive ints, "
                         f"got {value!r}.")
    return h, w


def _artifact_hw(format, static_hw, input_size):
    """The artifact's (H, W): the model's static size, LiteRT's fixed size, or dynamic."""
    if static_hw != (None, None):
        if None in static_hw:
            raise ValueError(f"The model's input has a partly static size {static_hw}; build "
                             "it with both sides static or both None.")
        if input_size is not None and tuple(input_size) != tuple(static_hw):
            raise ValueError(f"input_size={tuple(input_size)} but the model only takes "
                             f"{tuple(static_hw)} inputs.")
        return tuple(int(v) for v in static_hw)
    if format == "litert":
        if input_size is None:
            raise ValueError(
                "LiteRT export needs a fixed input_size=(height, width): the LiteRT builtin "
                "ops cannot run these models at a dynamic spatial size (the batch stays "
                "dynamic). Pass the size your images are resized or padded to.")
        return _hw_pair(input_size, "input_size")
    return (None, None)


def _check_inputs(sizes, hw, channels, seed):
    """Random check batches: one per size (batch 1, then 2); two batches at a fixed size."""
    rng = np.random.default_rng(seed)
    if hw != (None, None):
        plan = [(hw, 1), (hw, 2)]
    else:
        sizes = [_hw_pair(s, "each entry of sizes") for s in sizes]
        if not sizes:
            raise ValueError("sizes must name at least one (height, width) for the check.")
        plan = [(s, 1 if i == 0 else 2) for i, s in enumerate(sizes)]
    return [rng.uniform(0, 1, (b, h, w, channels)).astype("float32") for (h, w), b in plan]


def _module_available(name):
    return importlib.util.find_spec(name) is not None


def _require(modules, purpose):
    missing = [m for m in dict.fromkeys(modules) if not _module_available(m)]
    if missing:
        raise MissingDependencyError(
            f"To {purpose}, keras-seg needs {', '.join(missing)} (every export goes through "
            f"the TensorFlow backend of Keras). Install them with: {INSTALL_HINT}")


def _check_target(target, format, overwrite):
    if not os.path.lexists(target):
        return
    if not overwrite:
        raise FileExistsError(f"{target!r} exists; pass overwrite=True to replace it.")
    is_dir = os.path.isdir(target) and not os.path.islink(target)
    if format == "saved_model" and not is_dir:
        raise ValueError(f"A SavedModel is a directory but {target!r} is a file; choose "
                         "another path or remove the file.")
    if format != "saved_model" and is_dir:
        raise ValueError(f"A {format} export is a file but {target!r} is a directory; "
                         "choose another path.")


# --- the target's folder and temporaries ----------------------------------------------


def _partial_prefix(target):
    return f".{os.path.basename(target)}.partial-"


def _make_parent(target):
    """Create the target's folder, with a clear error when it cannot be."""
    parent = os.path.dirname(target)
    try:
        os.makedirs(parent, exist_ok=True)
    except FileExistsError:  # a file where a folder of the path should be
        raise NotADirectoryError(
            f"Cannot export to {target!r}: {parent!r} (or a folder above it) is a file, not "
            "a folder. Choose another output path.") from None
    except NotADirectoryError:
        raise NotADirectoryError(
            f"Cannot export to {target!r}: a folder above it is a file. Choose another "
            "output path.") from None
    except OSError as err:
        raise PermissionError(
            f"Cannot export to {target!r}: its folder {parent!r} cannot be created "
            f"({err.strerror}). Choose another output path.") from None


def _reserve(tmp, format, target):
    """Create the (empty) temporary artifact: the folder must take it before any work."""
    try:
        if format == "saved_model":
            os.mkdir(tmp)
        else:
            with open(tmp, "xb"):
                pass
    except OSError as err:
        raise PermissionError(
            f"Cannot export to {target!r}: its folder {os.path.dirname(target)!r} is not "
            f"writable ({err.strerror}). Choose another output path or make the folder "
            "writable.") from None


def remove_leftovers(target):
    """Remove the temporaries that killed exports to ``target`` left behind.

    Only names of exactly the pattern :func:`export` writes for this target
    (``.NAME.partial-PID-XXXXXXXX``, plus ``.tflite`` for LiteRT, in the target's
    folder) whose process ``PID`` no longer runs on this machine (or, written by
    keras-seg before the PID was in the name, ``.NAME.partial-XXXXXXXX``); nothing
    else is touched, and the temporary of an export still running is kept.

    Args:
        target: the export's path (a file or a SavedModel directory).

    Returns:
        The list of removed paths.
    """
    target = os.path.abspath(os.fspath(target))
    parent = os.path.dirname(target)
    pattern = re.compile(re.escape(_partial_prefix(target)) +
                         r"(?:(?P<pid>[0-9]+)-)?[0-9a-f]{8}(?:\.tflite)?")
    try:
        names = os.listdir(parent)
    except OSError:  # no folder (yet): nothing left behind
        return []
    removed = []
    for name in sorted(names):
        match = pattern.fullmatch(name)
        if match is None:
            continue
        if match["pid"] is not None and _process_running(int(match["pid"])):
            continue
        path = os.path.join(parent, name)
        try:
            _remove(path)
        except OSError:  # e.g. removed meanwhile, or not ours to remove: leave it
            continue
        removed.append(path)
    return removed


def _process_running(pid):
    """Whether process ``pid`` runs on this machine (POSIX; elsewhere: unknown -> False)."""
    if pid == os.getpid():
        return True
    if os.name != "posix":  # os.kill would terminate it on Windows
        return False
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:  # someone else's, running
        return True
    return True


# --- writing ----------------------------------------------------------------------------


def _write_artifact(model, tmp, format, input_shape, opset, verbose):
    """Write the artifact to ``tmp``; return a description of the route taken."""
    backend = keras.backend.backend()
    if backend == "tensorflow":
        _export_with_tensorflow(model, tmp, format, input_shape, opset, verbose)
        return "tensorflow backend, in process"
    with tempfile.TemporaryDirectory(prefix="keras_seg_export_") as work:
        source = os.path.join(work, "model.keras")
        model.save(source)
        job = {"source": source, "path": tmp, "format": format,
               "input_shape": list(input_shape), "opset": opset, "verbose": verbose}
        env = dict(os.environ, KERAS_BACKEND="tensorflow")
        env.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
        proc = subprocess.run(
            [sys.executable, "-c",
             "import sys; from keras_seg.export import _worker_main; "
             "sys.exit(_worker_main(sys.argv[1:]))", json.dumps(job)],
            env=env, capture_output=True, text=True, check=False)
    if verbose:
        sys.stdout.write(proc.stdout)
        sys.stderr.write(proc.stderr)
    if proc.returncode != 0:
        tail = "\n".join((proc.stderr or proc.stdout).strip().splitlines()[-30:])
        raise RuntimeError(
            f"Exporting to {format} through a TensorFlow-backend subprocess failed "
            f"(exit code {proc.returncode}). Its output ended with:\n{tail}")
    return f"tensorflow backend, subprocess from a .keras file (caller: {backend})"


def _export_with_tensorflow(model, path, format, input_shape, opset, verbose):
    """Export on the TensorFlow backend (this process must run it), tracing the model in
    :class:`keras_seg.ops.portable_graph` (dilated convolutions as ``tf.pad`` + ``"VALID"``,
    which onnxruntime and the other converters accept)."""
    from keras_seg.ops import portable_graph

    with portable_graph():
        _trace_and_write(model, path, format, input_shape, opset, verbose)


def _trace_and_write(model, path, format, input_shape, opset, verbose):
    import tensorflow as tf

    # One tf.function of the forward pass, traced once, input named "image". (Keras'
    # model.export does the same through its ExportArchive, but walks every Keras
    # object looking for lookup tables and traces the model three times: 1.6-2.5x
    # slower on ENet here, for resources these models do not have.)
    spec = tf.TensorSpec(input_shape, model.inputs[0].dtype or "float32", name="image")
    serve = tf.function(lambda image: _forward(model, image), input_signature=[spec])
    concrete = serve.get_concrete_function()
    if format == "saved_model":
        _save_tf_saved_model(model, serve, concrete, path)
        if verbose:
            print(f"SavedModel written to {path}: endpoint 'serve' and signature "
                  f"'serving_default', input {tuple(input_shape)}")
    elif format == "onnx":
        import tf2onnx

        with warnings.catch_warnings():
            if not verbose:  # the numpy-2 shim of tf2onnx probes np.object, which warns
                warnings.simplefilter("ignore", FutureWarning)
            _patch_tf2onnx()
            tf2onnx.convert.from_function(serve, input_signature=[spec], opset=opset,
                                          output_path=path)
    else:
        # Through a SavedModel, as Keras' own LiteRT export: converting the concrete
        # function directly (from_concrete_functions) froze SegNet's weights wrongly here
        # (outputs off by 0.7).
        with tempfile.TemporaryDirectory(prefix="keras_seg_litert_") as saved:
            _save_tf_saved_model(model, serve, concrete, saved)
            converter = tf.lite.TFLiteConverter.from_saved_model(saved)
            # builtin ops only: "select" TF ops need a runtime built with the Flex delegate
            converter.target_spec.supported_ops = [tf.lite.OpsSet.TFLITE_BUILTINS]
            flatbuffer = converter.convert()
        with open(path, "wb") as f:
            f.write(flatbuffer)


def _save_tf_saved_model(model, serve, concrete, path):
    import tensorflow as tf

    root = tf.Module()
    root.model_variables = [v.value for v in model.variables]  # the tf.Variables to save
    root.serve = serve
    tf.saved_model.save(root, path, signatures={"serving_default": concrete})


def _store_metadata(path, format, metadata):
    """Store ``metadata`` in the artifact at ``path`` (see the module docstring).

    ``path`` is the export's temporary, moved into place only afterwards, so it is
    written in place.
    """
    if format == "onnx":
        import onnx

        proto = onnx.load(path)
        kept = [(p.key, p.value) for p in proto.metadata_props if p.key not in metadata]
        del proto.metadata_props[:]  # set, not append: each key once
        for key, value in [*kept, *metadata.items()]:
            entry = proto.metadata_props.add()
            entry.key, entry.value = key, value
        onnx.save(proto, path)
    elif format == "saved_model":
        file = os.path.join(path, SAVED_MODEL_METADATA)
        os.makedirs(os.path.dirname(file), exist_ok=True)
        with open(file, "w") as f:
            json.dump(metadata, f, indent=2)


def _patch_tf2onnx():
    """tf2onnx 1.17 uses ``np.object`` and NumPy-1 casts in its constant folding, which
    fail on NumPy 2: Keras ships the patch it applies before its own ONNX export; use it
    when this Keras has it."""
    try:
        from keras.src.export.tf2onnx_lib import patch_tf2onnx
    except ImportError:  # a Keras without it: tf2onnx then needs numpy < 2 or a fixed release
        return
    patch_tf2onnx()


def _worker_main(argv):
    """Entry of the TensorFlow-backend export subprocess: ``argv[0]`` is a JSON job."""
    job = json.loads(argv[0])
    if keras.backend.backend() != "tensorflow":
        print(f"the export worker needs KERAS_BACKEND=tensorflow, runs on "
              f"{keras.backend.backend()}", file=sys.stderr)
        return 2
    model = keras.saving.load_model(job["source"], compile=False)
    _export_with_tensorflow(model, job["path"], job["format"], tuple(job["input_shape"]),
                            job["opset"], job["verbose"])
    return 0


def _move_into_place(tmp, target):
    """Replace ``target`` by ``tmp`` (same directory, so the final rename is atomic)."""
    if os.path.isdir(tmp) and os.path.isdir(target):
        # os.replace cannot replace a non-empty directory: park the old one aside first
        old = f"{target}.old-{uuid.uuid4().hex[:8]}"
        os.replace(target, old)
        try:
            os.replace(tmp, target)
        except BaseException:
            os.replace(old, target)
            raise
        shutil.rmtree(old, ignore_errors=True)
    else:
        os.replace(tmp, target)


def _remove(path):
    if os.path.isdir(path) and not os.path.islink(path):
        shutil.rmtree(path, ignore_errors=True)
    elif os.path.lexists(path):
        os.remove(path)


# --- parity -----------------------------------------------------------------------------


def _forward(model, x):
    """``model(x)`` in inference mode, ``x`` wrapped as the model's input structure (a
    model built from a list of one input, e.g. :func:`keras_seg.inference_model`'s,
    warns when called with a bare tensor)."""
    return model([x] if isinstance(model.input, list) else x, training=False)


def _default_rtol(model):
    compute = {str(getattr(layer, "compute_dtype", "float32")) for layer in model.layers}
    return 1e-2 if compute & {"float16", "bfloat16"} else 1e-4


def _parity(model, path, format, inputs, rtol):
    rtol = _default_rtol(model) if rtol is None else float(rtol)
    run = _runner(path, format)
    diffs, worst = {}, 0.0
    for x in inputs:
        ref = keras.ops.convert_to_numpy(_forward(model, x)).astype("float32")
        got = np.asarray(run(x), dtype="float32")
        key = f"{x.shape[1]}x{x.shape[2]} (batch {x.shape[0]})"
        if got.shape != ref.shape:
            raise ParityError(f"{format} artifact: output shape {got.shape} for input {key}, "
                              f"Keras gives {ref.shape}.")
        abs_diff = float(np.max(np.abs(got - ref))) if ref.size else 0.0
        scale = float(np.max(np.abs(ref))) if ref.size else 0.0
        rel = abs_diff / max(scale, np.finfo("float32").tiny)
        if not np.isfinite(abs_diff):
            rel = float("inf")
        diffs[key] = abs_diff
        worst = max(worst, rel)
        if rel > rtol:
            raise ParityError(
                f"{format} artifact differs from the Keras model ({keras.backend.backend()} "
                f"backend) on input {key}: max abs diff {abs_diff:.3g}, relative to the "
                f"output scale {scale:.3g}: {rel:.3g} > rtol {rtol:g}.")
    return diffs, worst, rtol


def _runner(path, format):
    """A function ``x -> numpy output`` running the artifact with its own runtime."""
    if format == "onnx":
        import onnxruntime

        session = onnxruntime.InferenceSession(path, providers=["CPUExecutionProvider"])
        name = session.get_inputs()[0].name
        return lambda x: session.run(None, {name: x})[0]
    if format == "saved_model":
        import tensorflow as tf

        loaded = tf.saved_model.load(path)
        return lambda x: loaded.serve(tf.constant(x)).numpy()
    interpreter = _litert_interpreter(path)
    index = interpreter.get_input_details()[0]["index"]
    out_index = interpreter.get_output_details()[0]["index"]

    def run(x):
        interpreter.resize_tensor_input(index, x.shape, strict=True)
        interpreter.allocate_tensors()
        interpreter.set_tensor(index, x)
        interpreter.invoke()
        return interpreter.get_tensor(out_index)

    return run


def _litert_interpreter(path):
    """The LiteRT interpreter (ai_edge_litert if installed, else TensorFlow's tf.lite)."""
    if _module_available("ai_edge_litert"):
        from ai_edge_litert.interpreter import Interpreter
    else:
        import tensorflow as tf

        Interpreter = tf.lite.Interpreter
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # tf.lite.Interpreter's deprecation notice
        return Interpreter(model_path=path)


def _litert_input_hw(path):
    shape = _litert_interpreter(path).get_input_details()[0]["shape_signature"]
    return int(shape[1]), int(shape[2])

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
The artifact is written to a temporary path beside the target and moved into
place only once it exists and passed the check, so the target never holds a
half-written or unchecked file.

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
import shutil
import subprocess
import sys
import tempfile
import time
import uuid
import warnings

import keras
import numpy as np

from keras_seg.model_base import inference_model

FORMATS = ("saved_model", "onnx", "litert")
DEFAULT_SIZES = ((67, 93), (45, 71))
INSTALL_HINT = "pip install keras-seg[tensorflow,export]"

# what each format needs, to export (always through TensorFlow) and to check
_EXPORT_NEEDS = {"saved_model": ("tensorflow",), "onnx": ("tensorflow", "tf2onnx", "onnx"),
                 "litert": ("tensorflow",)}
_CHECK_NEEDS = {"saved_model": ("tensorflow",), "onnx": ("onnxruntime",),
                "litert": ("tensorflow",)}


class ParityError(RuntimeError):
    """The exported artifact's outputs differ from the Keras model's beyond tolerance."""


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

    def __str__(self):
        lines = [f"exported {self.format} to {self.path}",
                 f"  route: {self.route}",
                 f"  input shape: {self.input_shape}"]
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

    Returns:
        An :class:`ExportReport`.

    Raises:
        ValueError: unknown format, a model that is not a segmentation model
            (not one 4-D image input and one 4-D output), a bad ``sizes`` /
            ``input_size``, or a target of the wrong kind (file vs directory).
        ImportError: TensorFlow (or tf2onnx / onnxruntime for ONNX) is not
            installed: ``pip install keras-seg[tensorflow,export]``.
        ParityError: the artifact's outputs differ from the model's beyond ``rtol``.
        RuntimeError: the TensorFlow-backend subprocess failed (its log is included).
    """
    start = time.time()
    format = _check_format(format)
    infer = inference_model(model)
    channels, static_hw = _check_segmentation_model(infer)
    _require(_EXPORT_NEEDS[format] + (_CHECK_NEEDS[format] if check else ()),
             f"export to {format}")
    hw = _artifact_hw(format, static_hw, input_size)
    input_shape = (None, *hw, channels)
    check_inputs = _check_inputs(sizes, hw, channels, seed) if check else None

    target = os.path.abspath(os.fspath(path))
    _check_target(target, format, overwrite)
    parent = os.path.dirname(target)
    os.makedirs(parent, exist_ok=True)
    suffix = ".tflite" if format == "litert" else ""  # the TFLite exporter wants the suffix
    tmp = os.path.join(parent, f".{os.path.basename(target)}.partial-{uuid.uuid4().hex[:8]}"
                               f"{suffix}")
    backend = keras.backend.backend()
    report = ExportReport(path=target, format=format, backend=backend, route="",
                          input_shape=input_shape)
    try:
        report.route = _write_artifact(infer, tmp, format, input_shape, opset, verbose)
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
    infer = inference_model(model)
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


# --- validation -------------------------------------------------------------------------


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
        raise ImportError(
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
    """Export on the TensorFlow backend (this process must run it)."""
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

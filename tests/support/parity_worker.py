"""Training-parity worker: the same training steps on the backend of this process.

Run as ``python tests/support/parity_worker.py CASE_DIR FLOATX OUT.npz`` with ``KERAS_BACKEND`` set
(``tests/training/test_backend_parity.py`` runs it once per backend). ``CASE_DIR`` holds,
per case ``NAME`` listed in ``cases.json``, the initial model ``NAME.keras`` (saved once, by
the test's process) and its batches ``NAME.npz`` (``x`` float32 ``(steps, batch, H, W, 3)``,
``y`` int32 ``(steps, batch, H, W)``). For each case the worker loads the model, compiles it
with the case's optimizer and ``SegmentationCrossEntropy(ignore_index=255)``, runs one
``train_on_batch`` per batch (metrics reset before each, so the reported loss is that
step's), and writes to ``OUT.npz``: ``NAME/losses`` (one per step), ``NAME/w{i}`` (every
variable of ``model.weights`` after the last step, BatchNorm moving statistics included,
in order) and ``NAME/logits`` (the trained model's inference-mode output on the first
batch).
"""

import json
import os
import sys


def optimizer(spec):
    """The optimizer a case names: ``{"name": "sgd" | "adam", ...}`` (see the test)."""
    import keras

    if spec["name"] == "sgd":
        lr = spec["lr"]
        if spec.get("decay_steps"):
            lr = keras.optimizers.schedules.PolynomialDecay(
                lr, spec["decay_steps"], end_learning_rate=0.0, power=0.9)
        return keras.optimizers.SGD(lr, momentum=spec.get("momentum", 0.0),
                                    weight_decay=spec.get("weight_decay") or None)
    if spec["name"] == "adam":
        return keras.optimizers.Adam(spec["lr"])
    raise ValueError(f"unknown optimizer {spec['name']!r}")


def run_case(case_dir, name, spec):
    import keras
    import numpy as np

    import keras_seg

    keras.config.set_floatx(spec["floatx"])
    model = keras_seg.applications.build(spec["model"].pop("name"), **spec["model"])
    with np.load(os.path.join(case_dir, f"{name}.weights.npz")) as saved:
        model.set_weights([saved[f"w{i}"] for i in range(len(saved.files))])
    model.compile(optimizer=optimizer(spec["optimizer"]),
                  loss=keras_seg.losses.SegmentationCrossEntropy(ignore_index=255))
    batches = np.load(os.path.join(case_dir, f"{name}.npz"))
    x, y = batches["x"].astype(keras.config.floatx()), batches["y"]
    losses = []
    for step in range(len(x)):
        model.reset_metrics()
        logs = model.train_on_batch(x[step], y[step], return_dict=True)
        losses.append(float(logs["loss"]))
    out = {f"{name}/losses": np.array(losses, "float64")}
    for i, variable in enumerate(model.weights):
        out[f"{name}/w{i}"] = keras.ops.convert_to_numpy(variable)
    logits = model(x[0], training=False)
    if isinstance(logits, dict):
        logits = logits["logits"]
    out[f"{name}/logits"] = keras.ops.convert_to_numpy(logits)
    return out


def main(argv):
    case_dir, floatx, out_path = argv
    with open(os.path.join(case_dir, "cases.json")) as f:
        cases = json.load(f)
    if floatx == "float64" and os.environ.get("KERAS_BACKEND") == "jax":
        import jax

        jax.config.update("jax_enable_x64", True)  # else JAX computes float32 silently
    import numpy as np

    results = {}
    for name, spec in cases.items():
        if spec["floatx"] == floatx:
            results.update(run_case(case_dir, name, spec))
    np.savez(out_path, **results)


if __name__ == "__main__":
    main(sys.argv[1:])

"""The devices section of TrainConfig: data parallel training, sync BatchNorm, precision, XLA.

Several devices need a fresh process (the device count is fixed when the backend starts):
the JAX tests run subprocesses with 4 virtual CPU devices
(``--xla_force_host_platform_device_count``), and two processes of 2 devices each joined on
127.0.0.1 as one multi-process run; the TensorFlow test runs a subprocess with 2 logical CPU
devices. Each runs in its backend's pass of the suite only. A data-parallel run is compared
with the same steps on one device, trained in this process from the same flags.
"""

import json
import os
import socket
import subprocess
import sys

import keras
import numpy as np
import pytest
from support.run_files import log_rows, read_json

from keras_seg import applications, cli, losses
from keras_seg.trainer import RESUME_CHANGEABLE, TrainConfig, config_values, train
from keras_seg.trainer.devices import Placement, _every_replica_gets_one, _tensorflow_batches

BACKEND = keras.backend.backend()
ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

only_jax = pytest.mark.skipif(BACKEND != "jax", reason="JAX multi-device run: runs in the "
                              "JAX pass of the suite only")
only_tensorflow = pytest.mark.skipif(BACKEND != "tensorflow", reason="TensorFlow multi-device "
                                     "run: runs in the TensorFlow pass of the suite only")

#: a tiny run: 8 training images in global batches of 4 (2 steps: the same batches with and
#: without the dropped partial batch of several devices), 3 validation images one by one
#: on one device (crop given; JAX pads each to a batch of 4, TensorFlow validates 2 by 2,
#: the last image merged into the batch before: 3 = 2 + 1 on 2 replicas, no padding),
#: U-Net with BatchNorm, SGD (its updates follow the gradients linearly, so one-device and
#: data-parallel runs stay within float noise)
FLAGS = ["train", "--model", "unet", "--synthetic-size", "40", "--synthetic-train", "8",
         "--synthetic-val", "3", "--batch-size", "4", "--crop", "32", "--optimizer", "sgd",
         "--lr", "0.05", "--verbose", "2"]
JAX_MODEL = ["--model-args", '{"filters": 4, "depth": 2, "batch_norm": true}']
# TensorFlow replicas draw their own dropout masks and average their own pixels: no dropout,
# no augmentation (its padding would give the replicas different numbers of labelled pixels)
TF_MODEL = ["--model-args", '{"filters": 4, "depth": 2, "batch_norm": true, "dropout": 0}',
            "--no-augment"]
TINY = {"model_options": {"filters": 4, "depth": 2}, "synthetic_size": 16,
        "synthetic_train": 4, "synthetic_val": 2, "batch_size": 2, "augment": False,
        "verbose": 0}


def _config(flags, **overrides):
    """The TrainConfig that ``keras-seg`` builds from ``flags``, with ``overrides``."""
    return TrainConfig(**{**config_values(cli.build_parser().parse_args(flags)), **overrides})


def _weights(path):
    return [np.asarray(w) for w in keras.saving.load_model(path, compile=False).get_weights()]


def _difference(path, reference):
    """The largest difference between a variable of ``path`` and the reference's, relative
    to the largest reference value (BatchNorm shifts start at 0: their own scale after a
    few steps is float noise)."""
    weights = _weights(path)
    assert [w.shape for w in weights] == [w.shape for w in reference]
    scale = max(float(np.max(np.abs(w))) for w in reference)
    return max(float(np.max(np.abs(got - want)))
               for got, want in zip(weights, reference, strict=True)) / scale


def _assert_same_weights(path, reference, rtol=1e-4):
    assert _difference(path, reference) < rtol


def _env(**extra):
    env = {**os.environ, "KERAS_BACKEND": BACKEND, "TF_CPP_MIN_LOG_LEVEL": "2", **extra}
    env.pop("KERAS_SEG_TEST_KILL_AT", None)
    return env


def _run_script(tmp_path, source, args, env, timeout=300):
    script = tmp_path / "script.py"
    script.write_text(source)
    done = subprocess.run([sys.executable, str(script), *args], cwd=ROOT, env=env,
                          capture_output=True, text=True, timeout=timeout)
    assert done.returncode == 0, done.stdout[-4000:] + done.stderr[-4000:]
    report = [line for line in done.stdout.splitlines() if line.startswith("REPORT ")]
    assert report, done.stdout[-4000:]
    return json.loads(report[-1][len("REPORT "):]), done.stdout + done.stderr


def _jax_flags(count):
    return f"--xla_force_host_platform_device_count={count} {os.environ.get('XLA_FLAGS', '')}"


#: the model of each backend's runs
MODEL = {"jax": JAX_MODEL}.get(BACKEND, TF_MODEL)


@pytest.fixture(scope="module")
def one_device_run(tmp_path_factory):
    """Epoch 1 of FLAGS + MODEL on one device, in this process: ``(run folder, result,
    last.keras weights)``; the reference of the multi-device runs."""
    out = str(tmp_path_factory.mktemp("one_device") / "run")
    keras.config.set_dtype_policy("float32")
    keras.backend.clear_session()
    keras.utils.set_random_seed(0)
    result = train(_config([*FLAGS, *MODEL], epochs=1, output=out, verbose=0))
    weights = _weights(os.path.join(out, "last.keras"))
    keras.backend.clear_session()
    return out, result, weights


# === JAX: 4 virtual CPU devices, and two processes ===

JAX_SCRIPT = r'''
import json, os, shutil, sys

import keras
from keras_seg import cli
from keras_seg.trainer import TrainConfig
from keras_seg.trainer.devices import Placement

out, flags = sys.argv[1], json.loads(sys.argv[2])


def after():  # what a train() call leaves behind: no distribution, the float32 policy
    return [keras.distribution.distribution() is None, keras.config.dtype_policy().name]


report = {"describe": Placement(TrainConfig(distribute="data").validate()).describe(4, 10, True)}
assert cli.main([*flags, "--distribute", "data", "--epochs", "1", "--output", out]) == 0
report["after_data"] = after()
shutil.copy(os.path.join(out, "last.keras"), out + "-epoch1.keras")
assert cli.main([*flags, "--distribute", "none", "--epochs", "2", "--output", out]) == 0
report["after_none"] = after()
assert cli.main([*flags, "--distribute", "data", "--devices", "cpu:1,cpu:3", "--epochs", "3",
                 "--output", out]) == 0
report["uneven"] = cli.main([*flags, "--distribute", "data", "--batch-size", "6",
                             "--output", out + "-uneven"])
print("REPORT " + json.dumps(report))
'''


@only_jax
def test_jax_data_parallel_matches_one_device_and_resumes_both_ways(tmp_path, one_device_run):
    out = str(tmp_path / "run")
    flags = [*FLAGS, *MODEL]
    report, text = _run_script(tmp_path, JAX_SCRIPT, [out, json.dumps(flags)],
                               _env(XLA_FLAGS=_jax_flags(4), JAX_PLATFORMS="cpu"))
    assert ("Data parallel: 4 replicas on cpu:0, cpu:1, cpu:2, cpu:3, "
            "keras.distribution.DataParallel (JAX); global batch 4 = 1 image per replica."
            in text)
    # 10 images in batches of 4 over several devices: the partial batch is skipped
    assert ("The last 2 training images of each epoch's order make no full global batch and "
            "are skipped." in report["describe"])
    assert "BatchNormalization statistics: over the global batch" in text
    assert "Data parallel: 2 replicas on cpu:1, cpu:3" in text
    # 4 devices, one image each, BatchNorm over the global batch: the steps of one device
    _assert_same_weights(out + "-epoch1.keras", one_device_run[2])
    assert report["after_data"] == report["after_none"] == [True, "float32"]
    # data -> none -> data: one log row per epoch, each change recorded
    rows = log_rows(out)
    assert [row["epoch"] for row in rows] == ["0", "1", "2"]
    resumes = read_json(out, "config.json")["resumes"]
    assert [r["changed"]["distribute"] for r in resumes] == [["data", "none"], ["none", "data"]]
    assert resumes[1]["changed"]["devices"] == [None, "cpu:1,cpu:3"]
    assert read_json(out, "state.json")["iterations"] == 6
    # validation batches of 1 image padded to 4 with ignored pixels, which count nowhere:
    # the validation loss of one device, and eval.json agrees with the log
    one_device = one_device_run[1]["history"]
    assert float(rows[0]["val_loss"]) == pytest.approx(one_device["val_loss"][0], rel=1e-4)
    assert float(rows[0]["val_mean_iou"]) == pytest.approx(one_device["val_mean_iou"][0],
                                                           abs=1e-4)
    assert read_json(out, "eval.json")["mean_iou"] == pytest.approx(
        max(float(row["val_mean_iou"]) for row in rows), abs=0.005)
    assert report["uneven"] == 2
    assert ("batch_size=6 (--batch-size, the global batch) does not split evenly over the 4 "
            "replicas of distribute='data' (cpu:0, cpu:1, cpu:2, cpu:3); give a multiple of 4, "
            "e.g. 4 or 8" in text)


def _run_together(argv, envs, timeout=300):
    """Run ``argv`` once per environment, all at once (the processes of one run): their
    outputs, each process checked to have succeeded."""
    procs = [subprocess.Popen(argv, cwd=ROOT, env=env, stdout=subprocess.PIPE,
                              stderr=subprocess.STDOUT, text=True) for env in envs]
    try:
        outputs = [proc.communicate(timeout=timeout)[0] for proc in procs]
    finally:
        for proc in procs:
            proc.kill()
    for proc, text in zip(procs, outputs, strict=True):
        assert proc.returncode == 0, text[-4000:]
    return outputs


def _free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@only_jax
def test_jax_two_processes_train_as_one_device(tmp_path, one_device_run):
    out = str(tmp_path / "run")
    port = _free_port()
    argv = [sys.executable, "-m", "keras_seg", *FLAGS, *MODEL, "--distribute", "data",
            "--epochs", "1", "--output", out]
    outputs = _run_together(argv, [
        _env(XLA_FLAGS=_jax_flags(2), JAX_PLATFORMS="cpu",
             KERAS_DISTRIBUTION_JOB_ADDRESSES=f"127.0.0.1:{port}",
             KERAS_DISTRIBUTION_NUM_PROCESSES="2", KERAS_DISTRIBUTION_PROCESS_ID=str(index),
             JAX_COORDINATOR_BIND_ADDRESS=f"127.0.0.1:{port}") for index in range(2)])
    assert "Data parallel: 4 replicas on cpu:0, cpu:1, cpu:2048, cpu:2049 of 2 processes " \
           "(this one: 1)" in outputs[1]
    assert "Every process prepares each global batch and feeds its share (2 images)." \
        in outputs[0]
    # 2 x 2 devices over two processes: the steps of one device; process 1 keeps its own,
    # complete run folder
    for folder in (out, os.path.join(out, "process-1")):
        _assert_same_weights(os.path.join(folder, "last.keras"), one_device_run[2])
        assert read_json(folder, "state.json")["epoch"] == 1
        assert os.path.exists(os.path.join(folder, "eval.json"))


# === TensorFlow: MirroredStrategy over 2 logical CPU devices ===

TF_SCRIPT = r'''
import json, os, shutil, sys

import tensorflow as tf

cpu = tf.config.list_physical_devices("CPU")[0]
tf.config.set_logical_device_configuration(cpu, [tf.config.LogicalDeviceConfiguration()] * 2)

import keras
from keras_seg import cli
from keras_seg.trainer import TrainConfig, config_values, train

root, flags = sys.argv[1], json.loads(sys.argv[2])
base = config_values(cli.build_parser().parse_args(flags))


def after():  # what a train() call leaves behind: no strategy, the float32 policy
    return [tf.distribute.has_strategy(), keras.config.dtype_policy().name]


report = {}
for name, options in [("sync", {"distribute": "data", "sync_batchnorm": True}),
                      ("per_replica", {"distribute": "data"})]:
    result = train(TrainConfig(**{**base, **options, "epochs": 1, "verbose": 0,
                                  "output": os.path.join(root, name)}))
    report[name] = after()
    report[name + "_val_loss"] = result["history"]["val_loss"][0]
sync = os.path.join(root, "sync")
saved = keras.saving.load_model(os.path.join(sync, "last.keras"))
report["synchronized"] = sorted({layer.synchronized for layer in saved._flatten_layers()
                                 if isinstance(layer, keras.layers.BatchNormalization)})
report["compile"] = {key: saved.get_compile_config()[key] for key in ("loss_weights",
                                                                       "jit_compile")}
shutil.copy(os.path.join(sync, "last.keras"), sync + "-epoch1.keras")
# the data-parallel run resumed on one device, then on two, through the command line
assert cli.main([*flags, "--sync-batchnorm", "--epochs", "2", "--output", sync]) == 0
assert cli.main([*flags, "--distribute", "data", "--sync-batchnorm", "--epochs", "3",
                 "--output", sync]) == 0
report["after_cli"] = after()
report["uneven"] = cli.main([*flags, "--distribute", "data", "--batch-size", "3",
                             "--output", os.path.join(root, "uneven")])
print("REPORT " + json.dumps(report))
'''


@only_tensorflow
def test_tf_mirrored_strategy_matches_one_device_with_sync_batchnorm(tmp_path, one_device_run):
    flags = [*FLAGS, *MODEL]
    report, text = _run_script(tmp_path, TF_SCRIPT, [str(tmp_path), json.dumps(flags)], _env())
    assert ("Data parallel: 2 replicas on cpu:0, cpu:1, tf.distribute.MirroredStrategy "
            "(TensorFlow); global batch 4 = 2 images per replica." in text)
    assert ("BatchNormalization statistics: over the global batch (synchronized=True across "
            "the 2 replicas)." in text)
    assert "BatchNormalization statistics: per replica (2 images)" in text
    reference = one_device_run[2]
    # synchronized statistics and the loss divided by the replicas: one device's steps
    _assert_same_weights(str(tmp_path / "sync-epoch1.keras"), reference)
    # per-replica statistics are another computation (the flag does something)
    assert _difference(str(tmp_path / "per_replica" / "last.keras"), reference) > 1e-3
    # validation 2 images by 2, then 1 left: merged into one batch of 3 (a padding image
    # would read a third too low): the loss of one device
    assert report["sync_val_loss"] == pytest.approx(one_device_run[1]["history"]["val_loss"][0],
                                                    rel=1e-4)
    assert report["sync"] == report["per_replica"] == [False, "float32"]
    # checkpoints as a default run writes them (no loss scaling for the replicas; the
    # jit_compile that "auto" gives under a strategy): they load on any backend
    assert report["synchronized"] == [False]
    assert report["compile"] == {"loss_weights": None, "jit_compile": False}
    sync = str(tmp_path / "sync")
    resumes = read_json(sync, "config.json")["resumes"]
    assert [r["changed"]["distribute"] for r in resumes] == [["data", "none"], ["none", "data"]]
    assert read_json(sync, "state.json")["iterations"] == 6
    assert [row["epoch"] for row in log_rows(sync)] == ["0", "1", "2"]
    assert report["after_cli"] == [False, "float32"]
    assert os.path.exists(os.path.join(sync, "eval.json"))
    assert report["uneven"] == 2
    assert "batch_size=3 (--batch-size, the global batch) does not split evenly over the 2 " \
           "replicas" in text


PLAIN_KERAS_SCRIPT = r'''
import json
import numpy as np
import tensorflow as tf

cpu = tf.config.list_physical_devices("CPU")[0]
tf.config.set_logical_device_configuration(cpu, [tf.config.LogicalDeviceConfiguration()] * 2)

import keras
from keras_seg import applications, losses

rng = np.random.default_rng(0)
x = rng.random((8, 16, 16, 3)).astype("float32")
y = rng.integers(0, 3, (8, 16, 16)).astype("int32")
y[:, :2] = 255
keras.utils.set_random_seed(0)
initial = applications.UNet(3, filters=4, depth=2, dropout=0).get_weights()
report = {}
two = tf.distribute.MirroredStrategy(["CPU:0", "CPU:1"])
for name in ("ce", "ce+dice"):
    trained = {}
    for where, scope in (("one", None), ("two", two)):
        with scope.scope() if scope else tf.name_scope("plain"):
            model = applications.UNet(3, filters=4, depth=2, dropout=0)
            model.set_weights(initial)
            model.compile(optimizer=keras.optimizers.SGD(0.1), loss=losses.get(name))
        history = model.fit(x, y, batch_size=4, epochs=2, shuffle=False, verbose=0).history
        trained[where] = (model.get_weights(), history["loss"])
    report[name] = {
        "weights": max(float(np.max(np.abs(a - b)))
                       for a, b in zip(trained["one"][0], trained["two"][0])),
        "moved": max(float(np.max(np.abs(a - b))) for a, b in zip(trained["one"][0], initial)),
        "loss": [trained["one"][1], trained["two"][1]]}
print("REPORT " + json.dumps(report))
'''


@only_tensorflow
def test_keras_seg_losses_divide_by_the_replicas_in_plain_keras_fit(tmp_path):
    """A user's own ``MirroredStrategy`` + ``model.fit`` with keras-seg losses (no trainer):
    the same steps as one device, and the reported loss is the global batch's (the losses
    divide by the replicas like ``keras.losses.Loss``; two replicas doubled the gradients
    when they did not)."""
    report, _ = _run_script(tmp_path, PLAIN_KERAS_SCRIPT, [], _env())
    ce, dice = report["ce"], report["ce+dice"]
    assert ce["moved"] > 1e-2 and dice["moved"] > 1e-2
    # cross-entropy is a mean over pixels: exactly the one-device steps
    assert ce["weights"] < 1e-5, ce
    np.testing.assert_allclose(ce["loss"][1], ce["loss"][0], rtol=1e-5)
    # Dice is computed over each replica's share (batch-level soft counts), so it is
    # close to the global batch's but not equal; doubled gradients would move the weights
    # twice as far (a difference the size of "moved")
    assert dice["weights"] < 0.05 * dice["moved"], dice
    np.testing.assert_allclose(dice["loss"][1], dice["loss"][0], rtol=2e-3)


@only_tensorflow
def test_tf_two_workers_train_as_one_device(tmp_path, one_device_run):
    """Two processes joined by TF_CONFIG on 127.0.0.1 (MultiWorkerMirroredStrategy, one CPU
    replica each, BatchNorm synchronized): the steps of one device, and its validation
    loss (3 images: 2 + 1, no padding)."""
    out = str(tmp_path / "run")
    ports = [_free_port(), _free_port()]
    cluster = {"worker": [f"127.0.0.1:{port}" for port in ports]}
    argv = [sys.executable, "-m", "keras_seg", *FLAGS, *MODEL, "--distribute", "data",
            "--sync-batchnorm", "--epochs", "1", "--output", out]
    outputs = _run_together(argv, [
        _env(TF_CONFIG=json.dumps({"cluster": cluster,
                                   "task": {"type": "worker", "index": index}}))
        for index in range(2)])
    assert ("Data parallel: 2 replicas on worker:0/cpu:0, worker:1/cpu:0 of 2 processes (this "
            "one: 1), tf.distribute.MultiWorkerMirroredStrategy (TensorFlow); global batch 4 = "
            "2 images per replica." in outputs[1])
    assert "Every process prepares each global batch and feeds its share (2 images)." \
        in outputs[0]
    one_device = one_device_run[1]["history"]
    for folder in (out, os.path.join(out, "process-1")):
        _assert_same_weights(os.path.join(folder, "last.keras"), one_device_run[2])
        rows = log_rows(folder)
        assert float(rows[0]["val_loss"]) == pytest.approx(one_device["val_loss"][0], rel=1e-4)
        assert float(rows[0]["loss"]) == pytest.approx(one_device["loss"][0], rel=1e-4)
        assert read_json(folder, "state.json")["epoch"] == 1
        assert os.path.exists(os.path.join(folder, "eval.json"))


@pytest.mark.parametrize("config,devices,message", [
    ({"cluster": {"chief": ["127.0.0.1:20000"], "worker": ["127.0.0.1:20001"]},
      "task": {"type": "chief", "index": 0}}, None, "take a cluster of 'worker' tasks only"),
    ({"cluster": {"worker": ["127.0.0.1:20001", "127.0.0.1:20002"]},
      "task": {"type": "worker", "index": 2}}, None, "task index 2 is not one of the 2 workers"),
    ({"cluster": {"worker": ["127.0.0.1:20001", "127.0.0.1:20002"]},
      "task": {"type": "worker", "index": 0}}, "cpu:0", "cannot be given to a multi-worker run"),
    ("not json", None, "TF_CONFIG is not the JSON of a TensorFlow cluster"),
])
def test_bad_tf_config_is_refused(monkeypatch, config, devices, message):
    if BACKEND != "tensorflow":
        pytest.skip("TF_CONFIG is read on the TensorFlow backend")
    monkeypatch.setenv("TF_CONFIG", config if isinstance(config, str) else json.dumps(config))
    with pytest.raises(ValueError, match=message):
        Placement(TrainConfig(distribute="data", devices=devices).validate())


@only_jax
def test_jax_multi_process_environment_must_be_complete(monkeypatch):
    monkeypatch.setenv("KERAS_DISTRIBUTION_JOB_ADDRESSES", "127.0.0.1:20001")
    monkeypatch.delenv("KERAS_DISTRIBUTION_NUM_PROCESSES", raising=False)
    with pytest.raises(ValueError, match="KERAS_DISTRIBUTION_JOB_ADDRESSES='127.0.0.1:20001' "
                       "starts a multi-process run, which also needs "
                       "KERAS_DISTRIBUTION_NUM_PROCESSES"):
        Placement(TrainConfig(distribute="data").validate())
    monkeypatch.setenv("KERAS_DISTRIBUTION_NUM_PROCESSES", "2")
    monkeypatch.setenv("KERAS_DISTRIBUTION_PROCESS_ID", "0")
    with pytest.raises(ValueError, match="cannot be given to a multi-process run"):
        Placement(TrainConfig(distribute="data", devices="cpu:0").validate())


# === every backend ===


def test_each_precision_trains_and_a_resume_may_change_it(tmp_path, capsys):
    out = str(tmp_path / "run")
    runs = [("float32", "auto"), ("mixed_float16", "auto"), ("mixed_bfloat16", False)]
    for epoch, (precision, jit_compile) in enumerate(runs, 1):
        result = train(TrainConfig(**TINY, epochs=epoch, precision=precision,
                                   jit_compile=jit_compile, output=out))
        assert all(np.isfinite(result["history"]["loss"])), precision
        assert keras.config.dtype_policy().name == "float32"  # the global policy is back
        last = keras.saving.load_model(os.path.join(out, "last.keras"))
        # trained under the policy (the layers keep it; the head is float32 by design),
        # logits float32, the optimizer step carried over each change
        policies = {layer.dtype_policy.name for layer in last.layers
                    if isinstance(layer, keras.layers.Conv2D)}
        assert precision in policies and policies <= {precision, "float32"}
        logits = last(np.zeros((1, 16, 16, 3), "float32"))
        assert keras.backend.standardize_dtype(logits.dtype) == "float32"
        assert int(keras.ops.convert_to_numpy(last.optimizer.iterations)) == 2 * epoch
        if precision == "mixed_float16":
            assert isinstance(last.optimizer, keras.optimizers.LossScaleOptimizer)
    changed = [r["changed"] for r in read_json(out, "config.json")["resumes"]]
    assert [c["precision"] for c in changed] == [["float32", "mixed_float16"],
                                                 ["mixed_float16", "mixed_bfloat16"]]
    assert changed[1]["jit_compile"] == ["auto", False]
    text = capsys.readouterr().out
    assert "jit_compile=False: XLA off for the training and validation steps." in text


@pytest.mark.parametrize("jit_compile", [True, False])
def test_jit_compile_reaches_compile_and_checkpoints_keep_the_default(jit_compile):
    placement = Placement(TrainConfig(jit_compile=jit_compile).validate())
    with placement.active():
        model = applications.build("unet", 3, filters=4, depth=2)
        placement.compile(model, optimizer=keras.optimizers.SGD(), loss=losses.get("ce"),
                          metrics=[], example=None)
    # compile got it (its config keeps what it was given) ...
    assert model.get_compile_config()["jit_compile"] is jit_compile
    # ... and a checkpoint keeps what a default compile gives
    default = applications.build("unet", 3, filters=4, depth=2)
    default.compile(optimizer=keras.optimizers.SGD(), loss=losses.get("ce"))
    with placement.saving(model):
        assert (model.get_compile_config()["jit_compile"]
                == default.get_compile_config()["jit_compile"])
    assert model.get_compile_config()["jit_compile"] is jit_compile


@pytest.mark.skipif(BACKEND == "torch", reason="distribute='data' is refused on torch "
                    "(test_distribute_data_is_refused_on_torch)")
def test_distribute_data_with_one_device_runs_and_says_so(tmp_path, capsys):
    result = train(TrainConfig(**TINY, epochs=1, distribute="data", sync_batchnorm=True,
                               output=str(tmp_path / "run")))
    text = capsys.readouterr().out
    assert "distribute='data' found one device (cpu:0): nothing to split, so the run trains " \
           "on it as with distribute='none'." in text
    assert "sync_batchnorm: one replica" in text
    assert result["epochs_done"] == 1 and np.isfinite(result["val_mean_iou"])
    with pytest.raises(ValueError, match=r"Device 'gpu:7' \(--devices\) is not on this "
                       r"machine; its devices are cpu:0"):
        Placement(TrainConfig(distribute="data", devices="gpu:7").validate())


@pytest.mark.skipif(BACKEND != "torch", reason="the refusal of the torch backend")
def test_distribute_data_is_refused_on_torch():
    with pytest.raises(ValueError, match=r"distribute='data' is not available on the torch "
                       r"backend with Keras 3\.\d+\.\d+: .* Run with KERAS_BACKEND=jax or "
                       r"KERAS_BACKEND=tensorflow"):
        train(TrainConfig(**TINY, distribute="data", output="unused"))
    assert not os.path.exists("unused")


@pytest.mark.parametrize("field, value, message", [
    ("distribute", "model", r"distribute='model' is not one of \('none', 'data'\)"),
    ("precision", "float16", r"precision='float16' is not one of \('float32', "),
    ("jit_compile", "yes", r"jit_compile='yes' is not one of \('auto', True, False\)"),
    ("jit_compile", 1, r"jit_compile must be 'auto', True or False, got 1"),
    ("sync_batchnorm", "yes", r"sync_batchnorm must be True or False, got 'yes'"),
    ("devices", "gpu0", r"devices must name devices as TYPE:INDEX separated by commas"),
    ("devices", "gpu:0,GPU:0", r"devices names gpu:0 more than once"),
    ("devices", "cpu:0,gpu:0", r"devices mixes cpu and gpu devices"),
])
def test_bad_device_settings_are_refused(field, value, message):
    options = {"distribute": "data", field: value} if field == "devices" else {field: value}
    with pytest.raises(ValueError, match=message):
        TrainConfig(**options).validate()


def test_devices_need_distribute_data_and_are_normalized():
    with pytest.raises(ValueError, match=r"devices='gpu:0' needs distribute='data' "
                       r"\(--distribute data\)"):
        TrainConfig(devices="gpu:0").validate()
    config = TrainConfig(distribute="data", devices=["GPU:1", " gpu:0"]).validate()
    assert config.devices == "gpu:1,gpu:0"


def test_device_flags_on_the_command_line(capsys):
    args = cli.build_parser().parse_args([
        "train", "--distribute", "data", "--devices", "GPU:0,gpu:1", "--sync-batchnorm",
        "--precision", "mixed_bfloat16", "--jit-compile", "False"])
    assert config_values(args) == {"distribute": "data", "devices": "gpu:0,gpu:1",
                                   "sync_batchnorm": True, "precision": "mixed_bfloat16",
                                   "jit_compile": False}
    for flags, message in [(["--jit-compile", "maybe"], "expected auto, true or false"),
                           (["--devices", "gpu"], "devices must name devices as TYPE:INDEX"),
                           (["--distribute", "model"], "invalid choice: 'model'")]:
        with pytest.raises(SystemExit):
            cli.build_parser().parse_args(["train", *flags])
        assert message in capsys.readouterr().err
    for name in ("distribute", "devices", "sync_batchnorm", "precision", "jit_compile"):
        assert name in RESUME_CHANGEABLE


def test_tensorflow_batches_give_every_replica_an_image():
    # TensorFlow's split, seen with 4 logical CPUs: 5 -> 2,2,1,0; 6 -> 2,2,2,0; 7 -> 2,2,2,1;
    # 9 -> 3,3,3,0; 13 -> 4,4,4,1
    assert [n for n in range(1, 14) if _every_replica_gets_one(n, 4)] == [4, 7, 8, 10, 11, 12, 13]
    assert all(_every_replica_gets_one(n, 2) for n in range(2, 9))
    assert _tensorflow_batches(8, 4, 2, 2) == [(0, 4), (4, 8)]  # whole batches stay
    assert _tensorflow_batches(3, 2, 2, 2) == [(0, 3)]          # 2 + 1 -> 3
    assert _tensorflow_batches(11, 4, 3, 2) == [(0, 4), (4, 8), (8, 11)]
    assert _tensorflow_batches(13, 4, 4, 4) == [(0, 13)]        # 1 left: 5, 9 fail, 13 spreads
    assert _tensorflow_batches(19, 8, 3, 4) == [(0, 8), (8, 19)]  # 3 left: 11 spreads
    # two workers of 2 replicas each: a batch is cut in 2 pieces, each in 2
    assert not _every_replica_gets_one(3, 4, 2) and _every_replica_gets_one(4, 4, 2)
    assert _every_replica_gets_one(7, 4, 2)  # pieces 4 + 3, each on 2 replicas: 2 + 2, 2 + 1
    assert _every_replica_gets_one(6, 4, 2) and _every_replica_gets_one(5, 2, 2)
    assert _tensorflow_batches(9, 4, 3, 4, 2) == [(0, 4), (4, 9)]
    with pytest.raises(ValueError, match=r"5 validation images cannot be spread over the 4 "
                       r"replicas .* Use at least 7 validation images"):
        _tensorflow_batches(5, 4, 2, 4)

"""keras_seg.schedules.LinearWarmup and ``--warmup-steps``: the rates it gives, its round
trip through a saved optimizer, and the trainer's use of it."""

import json

import keras
import numpy as np
import pytest

import keras_seg
from keras_seg import cli
from keras_seg.schedules import LinearWarmup
from keras_seg.trainer import TrainConfig, train
from keras_seg.trainer.fit import make_optimizer


def _rates(schedule, steps):
    return np.array([float(keras.ops.convert_to_numpy(schedule(k))) for k in steps])


def test_warmup_ramps_the_schedule_then_follows_it():
    poly = keras.optimizers.schedules.PolynomialDecay(0.1, 100, 0.0, power=0.9)
    warm = LinearWarmup(poly, 10)
    steps = [0, 4, 9, 10, 50, 99]
    want = [float(keras.ops.convert_to_numpy(poly(k))) * min(1.0, (k + 1) / 10) for k in steps]
    np.testing.assert_allclose(_rates(warm, steps), want, rtol=1e-6)
    # a constant rate: 1/10 of it at step 0, all of it from step 9 on
    np.testing.assert_allclose(_rates(LinearWarmup(0.5, 10), [0, 9, 30]), [0.05, 0.5, 0.5],
                               rtol=1e-6)


def test_warmup_saves_and_loads_with_the_optimizer(tmp_path):
    model = keras_seg.applications.UNet(2, filters=4, depth=1, dropout=0.0)
    schedule = LinearWarmup(keras.optimizers.schedules.CosineDecay(0.01, 50), 5)
    model.compile(optimizer=keras.optimizers.SGD(schedule), loss="mse")
    model.save(tmp_path / "m.keras")
    loaded = keras.saving.load_model(tmp_path / "m.keras")
    restored = loaded.optimizer._learning_rate
    assert isinstance(restored, LinearWarmup) and restored.warmup_steps == 5
    np.testing.assert_allclose(_rates(restored, [0, 3, 20]), _rates(schedule, [0, 3, 20]),
                               rtol=1e-6)


@pytest.mark.parametrize("bad", [-1, 2.5, True, "10"])
def test_bad_warmup_steps_are_refused(bad):
    with pytest.raises(ValueError, match="warmup_steps must be an int >= 0"):
        TrainConfig(warmup_steps=bad).validate()
    with pytest.raises(ValueError, match="warmup_steps must be a positive int"):
        LinearWarmup(0.1, bad if bad != -1 else 0)


def test_make_optimizer_wraps_the_schedule_and_refuses_a_warmup_as_long_as_the_run():
    config = TrainConfig(optimizer="sgd", lr=0.2, schedule="poly", warmup_steps=4).validate()
    optimizer = make_optimizer(config, total_steps=20)
    assert isinstance(optimizer._learning_rate, LinearWarmup)
    np.testing.assert_allclose(_rates(optimizer._learning_rate, [0, 3]),
                               [0.2 * 0.25, 0.2 * (1 - 3 / 20) ** 0.9], rtol=1e-5)
    with pytest.raises(ValueError, match=r"warmup_steps=20 \(--warmup-steps\) is not fewer "
                       r"than the run's 20 steps"):
        make_optimizer(TrainConfig(warmup_steps=20).validate(), total_steps=20)


def test_train_logs_the_warmed_up_rate_and_the_cli_refuses_a_whole_run_of_warmup(tmp_path,
                                                                                 capsys):
    out = tmp_path / "run"
    result = train(TrainConfig(model_options={"filters": 4, "depth": 1}, synthetic_size=16,
                               synthetic_train=8, synthetic_val=2, batch_size=2, epochs=2,
                               augment=False, lr=0.01, schedule="constant", warmup_steps=6,
                               verbose=0, output=str(out)))
    # log.csv's lr is the rate of each epoch's first step: steps 0 and 4 of a 6-step ramp
    np.testing.assert_allclose(result["history"]["lr"], [0.01 / 6, 0.01 * 5 / 6], rtol=1e-5)
    with open(out / "config.json") as f:
        assert json.load(f)["warmup_steps"] == 6
    args = ["train", "--synthetic-size", "16", "--synthetic-train", "8", "--synthetic-val",
            "2", "--batch-size", "2", "--epochs", "1", "--warmup-steps", "4", "--verbose", "0",
            "--model-args", '{"filters": 4, "depth": 1}', "--output", str(tmp_path / "bad")]
    assert cli.main(args) == 2
    assert "warmup_steps=4 (--warmup-steps) is not fewer than the run's 4 steps" in \
        capsys.readouterr().err
    assert not list((tmp_path / "bad").glob("*.keras"))  # refused before any training

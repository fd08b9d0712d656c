"""Learning-rate schedules beyond Keras' own (registered: they save and load in ``.keras``).

``LinearWarmup`` starts any schedule (or constant rate) with a linear warm-up, as Goyal et
al. 2017 ("Accurate, Large Minibatch SGD: Training ImageNet in 1 Hour") do for large
learning rates: ``keras-seg train --warmup-steps N``.
"""

import keras
from keras import ops


@keras.saving.register_keras_serializable(package="keras_seg")
class LinearWarmup(keras.optimizers.schedules.LearningRateSchedule):
    """A learning-rate schedule that ramps ``schedule`` up linearly over ``warmup_steps``.

    The rate of step ``k`` (counted from 0, the optimizer's ``iterations``) is
    ``schedule(k) * min(1, (k + 1) / warmup_steps)``: ``1 / warmup_steps`` of the
    schedule's rate at the first step, the schedule's own rate from step
    ``warmup_steps - 1`` on. The schedule keeps counting from step 0 (a poly decay still
    reaches 0 at its last step).

    Args:
        schedule: a ``keras.optimizers.schedules.LearningRateSchedule`` or a number (a
            constant rate).
        warmup_steps: a positive int.

    Shapes: ``step`` a scalar; returns a float32 scalar.
    """

    def __init__(self, schedule, warmup_steps):
        if isinstance(warmup_steps, bool) or not isinstance(warmup_steps, int) \
                or warmup_steps < 1:
            raise ValueError(f"LinearWarmup: warmup_steps must be a positive int, got "
                             f"{warmup_steps!r}.")
        if not isinstance(schedule, keras.optimizers.schedules.LearningRateSchedule):
            try:
                schedule = float(schedule)
            except (TypeError, ValueError):
                raise ValueError(f"LinearWarmup: schedule must be a LearningRateSchedule or a "
                                 f"number, got {schedule!r}.") from None
        self.schedule = schedule
        self.warmup_steps = warmup_steps

    def __call__(self, step):
        step = ops.cast(step, "float32")
        if isinstance(self.schedule, keras.optimizers.schedules.LearningRateSchedule):
            rate = ops.cast(self.schedule(step), "float32")
        else:
            rate = ops.convert_to_tensor(self.schedule, "float32")
        return rate * ops.minimum(1.0, (step + 1.0) / float(self.warmup_steps))

    def get_config(self):
        schedule = self.schedule
        if isinstance(schedule, keras.optimizers.schedules.LearningRateSchedule):
            schedule = keras.saving.serialize_keras_object(schedule)
        return {"schedule": schedule, "warmup_steps": self.warmup_steps}

    @classmethod
    def from_config(cls, config):
        config = dict(config)
        if isinstance(config["schedule"], dict):
            config["schedule"] = keras.saving.deserialize_keras_object(config["schedule"])
        return cls(**config)

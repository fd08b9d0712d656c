"""How fast does a small U-Net learn the built-in synthetic dataset? (the demo's design runs)

Trains ``keras_seg.applications.UNet(num_classes, filters, depth, batch_norm=True,
dropout=0)`` on ``SyntheticShapes("train", **data_args)`` with fresh images at every
step (the training split is generated on demand and has ``steps * batch`` images),
``keras.losses.SparseCategoricalCrossentropy(from_logits=True)``, Adam and a poly
learning-rate decay (power 0.9) to zero, and every ``--eval-every`` steps computes the
dataset-level mean IoU on 256 images of ``SyntheticShapes("val", **data_args)`` with the
package's own definition (``keras_seg.metrics.confusion_matrix`` over all their pixels,
then ``iou_from_confusion``: IoU per class = TP / (TP + FP + FN), averaged over the classes
present, background included). Prints one line per evaluation: step, training wall
time so far (evaluations excluded), loss, mIoU and the per-class IoUs.

The table in ``benchmarks/demo.md`` was made with it, two runs at a time, each on one
thread (``OMP_NUM_THREADS=1 KERAS_BACKEND=torch``), e.g.::

    python benchmarks/synthetic_learnability.py --depth 4 --lr 6e-3 \\
        --data-args '{"shapes": ["disc", "square", "triangle", "ring", "cross"],
                      "clutter": 0.5, "texture": 0.4, "max_objects": 6}'
"""

import argparse
import json
import time


def parse_args(argv=None):
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--steps", type=int, default=2000)
    p.add_argument("--eval-every", type=int, default=250)
    p.add_argument("--batch-size", type=int, default=16)
    p.add_argument("--size", type=int, default=64, help="image side (pixels)")
    p.add_argument("--filters", type=int, default=16, help="U-Net base width")
    p.add_argument("--depth", type=int, default=3, help="U-Net depth (max poolings)")
    p.add_argument("--lr", type=float, default=3e-3, help="Adam learning rate at step 0")
    p.add_argument("--data-args", type=json.loads, default={},
                   help="JSON SyntheticShapes options (default: the dataset's defaults)")
    p.add_argument("--seed", type=int, default=0)
    return p.parse_args(argv)


def main(argv=None):
    args = parse_args(argv)
    import keras

    from keras_seg.applications import UNet
    from keras_seg.data import SegmentationPipeline, SyntheticShapes
    from keras_seg.metrics import confusion_matrix, iou_from_confusion

    keras.utils.set_random_seed(args.seed)
    size = (args.size, args.size)
    train = SyntheticShapes("train", num_images=args.steps * args.batch_size, image_size=size,
                            seed=args.seed, **args.data_args)
    val = SyntheticShapes("val", num_images=256, image_size=size, seed=args.seed,
                          **args.data_args)
    x_val, y_val = val.arrays()
    x_val = x_val.astype("float32") / 255.0  # the pipeline's "unit" scaling
    model = UNet(num_classes=train.num_classes, filters=args.filters, depth=args.depth,
                 batch_norm=True, dropout=0.0)
    schedule = keras.optimizers.schedules.PolynomialDecay(args.lr, args.steps, 0.0, power=0.9)
    model.compile(optimizer=keras.optimizers.Adam(schedule),
                  loss=keras.losses.SparseCategoricalCrossentropy(from_logits=True))
    print(f"backend {keras.backend.backend()}, classes {train.class_names}, "
          f"{model.count_params():,} parameters, settings {vars(args)}", flush=True)
    start, eval_seconds = time.perf_counter(), 0.0

    class Evaluate(keras.callbacks.Callback):
        def on_epoch_end(self, epoch, logs=None):
            nonlocal eval_seconds
            t = time.perf_counter()
            train_seconds = t - start - eval_seconds
            logits = model.predict(x_val, batch_size=64, verbose=0)
            scores = iou_from_confusion(confusion_matrix(y_val, logits, train.num_classes))
            eval_seconds += time.perf_counter() - t
            print(f"step {(epoch + 1) * args.eval_every} train_s {train_seconds:.0f} "
                  f"loss {logs['loss']:.3f} miou {scores['mean_iou']:.3f} "
                  + " ".join(f"{v:.2f}" for v in scores["per_class_iou"]), flush=True)

    model.fit(SegmentationPipeline(train, args.batch_size, shuffle=False),
              epochs=args.steps // args.eval_every, steps_per_epoch=args.eval_every,
              verbose=0, callbacks=[Evaluate()])


if __name__ == "__main__":
    main()

"""Tutorial 1: train a U-Net on the built-in synthetic dataset with plain ``model.fit``.

What you learn:

1. the built-in dataset (:class:`keras_seg.data.SyntheticShapes`): procedurally generated
   shapes whose class is told by their form, not their color, on cluttered backgrounds;
2. the input pipeline (:class:`keras_seg.data.SegmentationPipeline`) with joint, mask-safe
   augmentation (:class:`keras_seg.data.Augment`);
3. the loss (:class:`keras_seg.losses.SegmentationCrossEntropy`, ignore index 255) and the
   dataset-level mean IoU metric (:class:`keras_seg.metrics.MeanIoU`);
4. a poly learning-rate schedule, ``model.fit``, saving and reloading the model;
5. dataset-level evaluation and a picture of the predictions.

Run it (any backend: ``KERAS_BACKEND=jax|torch|tensorflow``)::

    python tutorials/train_unet_builtin.py            # ~6 min on 2 CPU cores: val mIoU 0.69
    python tutorials/train_unet_builtin.py --fast     # seconds: what the test suite runs
"""

import argparse
import os

import keras
import numpy as np

import keras_seg
from keras_seg import losses, metrics, visualize
from keras_seg.data import Augment, SegmentationPipeline, SyntheticShapes


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--fast", action="store_true", help="tiny run for the test suite")
    parser.add_argument("--output", default="tutorial_output/unet")
    args = parser.parse_args(argv)
    size, n_train, n_val, epochs, filters, depth = ((48, 16, 8, 1, 4, 2) if args.fast else
                                                   (64, 4096, 256, 8, 16, 4))
    keras.utils.set_random_seed(0)

    # 1. Data. Examples are generated on demand from (seed, split, index): no download,
    # and the splits never share an image. Five of the shape classes and half the default
    # clutter and texture: what a CPU learns in minutes (see benchmarks/demo.md).
    options = dict(shapes=("disc", "square", "triangle", "ring", "cross"), clutter=0.5,
                   texture=0.4, max_objects=6)
    train = SyntheticShapes("train", num_images=n_train, image_size=(size, size), **options)
    val = SyntheticShapes("val", num_images=n_val, image_size=(size, size), **options)
    print(f"{len(train)} training images of {size}x{size}, classes: {train.class_names}")

    # 2. Pipeline: batches of float32 images in [0, 1] and int32 masks. The augmentation
    # warps masks with nearest neighbour only and pads them with the ignore index. The
    # generator already varies size, place and rotation, so a flip is enough here: with
    # random scaling (0.75-1.25) + crop as well, this U-Net was still at val mIoU 0.18
    # after 5 of the 8 epochs. On real data add scale=(0.5, 2.0), crop_size=... .
    augment = Augment(flip=0.5, scale=None)  # Augment scales 0.5-2.0 by default
    train_batches = SegmentationPipeline(train, batch_size=16, augment=augment, seed=0,
                                         workers=1 if args.fast else 2)
    val_batches = SegmentationPipeline(val, batch_size=16, shuffle=False)

    # 3. Model, loss, metric. Logits come out in float32; the loss applies the softmax.
    # Batch normalization and a depth of 4 (context for shapes up to half the image)
    # make this small U-Net learn much faster than the paper's plain one.
    model = keras_seg.applications.UNet(num_classes=train.num_classes, filters=filters,
                                        depth=depth, batch_norm=True, dropout=0.0)
    steps = len(train_batches) * epochs
    schedule = keras.optimizers.schedules.PolynomialDecay(6e-3, steps, power=0.9)
    model.compile(optimizer=keras.optimizers.Adam(schedule),
                  loss=losses.SegmentationCrossEntropy(ignore_index=255),
                  metrics=[metrics.MeanIoU(train.num_classes)])

    # 4. Train. `val_mean_iou` is the dataset-level mIoU: the confusion matrix sums over
    # every pixel of every validation image before IoU = TP / (TP + FP + FN).
    history = model.fit(train_batches, validation_data=val_batches, epochs=epochs, verbose=2)
    os.makedirs(args.output, exist_ok=True)
    path = os.path.join(args.output, "unet.keras")
    model.save(path)
    restored = keras.saving.load_model(path)   # no custom_objects needed

    # 5. Evaluate the restored model on the whole validation split (one confusion matrix
    # over all its pixels) and look at one prediction.
    iou = metrics.MeanIoU(train.num_classes)
    for images, masks in (val_batches[i] for i in range(len(val_batches))):
        iou.update_state(masks, restored.predict(images, verbose=0))
    print("per-class IoU:", np.round(iou.per_class_iou(), 3))
    print(f"val mIoU {iou.result():.4f} (last epoch's val_mean_iou "
          f"{history.history['val_mean_iou'][-1]:.4f})")
    # The picture: image / truth / prediction / overlay, with the classes it shows named
    # in a legend (keras_seg.visualize draws it with matplotlib; white = ignored pixels).
    prediction = keras_seg.inference.predict(restored, val[0][0])
    figure = visualize.prediction_figure(val[0][0], prediction, train.palette,
                                         truth=val[0][1], class_names=train.class_names,
                                         title="validation image 0")
    print("wrote", visualize.save_figure(figure, os.path.join(args.output, "prediction.png")))
    return float(iou.result())


if __name__ == "__main__":
    main()

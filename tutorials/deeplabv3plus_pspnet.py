"""Tutorial 2: DeepLab v3+ on a pretrained-shaped backbone, and PSPNet with deep supervision.

Part A builds DeepLab v3+ (Chen et al. 2018) on a ``keras.applications`` MobileNetV2:
any ImageNet backbone of ``keras.applications`` plugs in, its stride-4 and stride-16/32
features feed the decoder and the ASPP. In real use create it with
``weights="imagenet"`` (downloaded once by Keras) or load a checkpoint file you have;
here the weights come from a local ``.weights.h5`` file this script writes, so nothing
is downloaded. The images go through ``normalize="imagenet"`` (ImageNet mean / std) as
such backbones expect.

Part B trains PSPNet (Zhao et al. 2017) with its auxiliary head: the model returns
``{"logits": ..., "aux": ...}`` and still trains with ``model.fit(images, masks)`` on ONE
label map. It is a :class:`keras_seg.model_base.SegmentationModel`: each head's loss sees
the labels resized (nearest neighbour) to its resolution, the losses are weighted by the
paper's weights (main 1, auxiliary 0.4) and the metric is computed on the main output.
For serving, :func:`keras_seg.inference_model` keeps the main output only.

Run::

    python tutorials/deeplabv3plus_pspnet.py           # minutes on a CPU
    python tutorials/deeplabv3plus_pspnet.py --fast    # seconds: what the test suite runs
"""

import argparse
import os

import keras

import keras_seg
from keras_seg import losses, metrics
from keras_seg.data import Augment, SegmentationPipeline, SyntheticShapes


def part_a_deeplabv3plus(train, val, args, epochs):
    # A backbone shaped like the ImageNet one; alpha 0.35 keeps this tutorial light.
    backbone = keras.applications.MobileNetV2(input_shape=(None, None, 3), include_top=False,
                                              weights=None, alpha=0.35)
    checkpoint = os.path.join(args.output, "mobilenetv2_backbone.weights.h5")
    backbone.save_weights(checkpoint)  # stands in for weights you downloaded earlier
    backbone.load_weights(checkpoint)
    # A keras.applications model cannot be dilated: it runs at its own output stride 32,
    # which DeepLabV3Plus must be told (a named backbone, e.g. "mobilenetv2", is dilated to
    # the paper's 16 instead).
    model = keras_seg.applications.DeepLabV3Plus(num_classes=train.num_classes,
                                                 backbone=backbone, output_stride=32)
    print(f"DeepLab v3+ on MobileNetV2: {model.count_params():,} parameters")
    batches = SegmentationPipeline(train, 8, augment=Augment(scale=(0.75, 1.25),
                                                             crop_size=train.image_size),
                                   normalize="imagenet")
    val_batches = SegmentationPipeline(val, 8, shuffle=False, normalize="imagenet")
    steps = len(batches) * epochs
    model.compile(
        optimizer=keras.optimizers.SGD(
            keras.optimizers.schedules.PolynomialDecay(0.02, steps, power=0.9), momentum=0.9),
        loss=losses.SegmentationCrossEntropy(),
        metrics=[metrics.MeanIoU(train.num_classes)],
    )
    history = model.fit(batches, validation_data=val_batches, epochs=epochs, verbose=2)
    return history.history["val_mean_iou"][-1]


def part_b_pspnet(train, val, args, epochs):
    # the paper's ResNet-50 at a quarter width; --fast takes a ResNet-18 (faster to trace)
    backbone, options = ("resnet18", {"width_multiplier": 0.125}) if args.fast else \
        ("resnet50", {"width_multiplier": 0.25})
    model = keras_seg.applications.PSPNet(num_classes=train.num_classes, aux=True,
                                          backbone=backbone, backbone_options=options)
    print(f"PSPNet outputs: {keras_seg.output_names(model)}; loss weights "
          f"{model.default_loss_weights}")
    batches = SegmentationPipeline(train, 8, augment=Augment(scale=(0.75, 1.25),
                                                             crop_size=train.image_size))
    val_batches = SegmentationPipeline(val, 8, shuffle=False)
    steps = len(batches) * epochs
    model.compile(
        optimizer=keras.optimizers.SGD(
            keras.optimizers.schedules.PolynomialDecay(0.01, steps, power=0.9), momentum=0.9),
        loss=losses.SegmentationCrossEntropy(),        # applied to both heads
        metrics=[metrics.MeanIoU(train.num_classes)],  # on the main output only
    )
    history = model.fit(batches, validation_data=val_batches, epochs=epochs, verbose=2)
    print("losses per head in the logs:", sorted(k for k in history.history if "loss" in k))
    serving = keras_seg.inference_model(model)    # main output only, shared weights
    print(f"inference model output: {serving.output.shape}")
    return history.history["val_mean_iou"][-1]


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--fast", action="store_true", help="tiny run for the test suite")
    parser.add_argument("--output", default="tutorial_output/deeplab_pspnet")
    args = parser.parse_args(argv)
    os.makedirs(args.output, exist_ok=True)
    size, n_train, epochs = (48, 8, 1) if args.fast else (96, 512, 8)
    keras.utils.set_random_seed(0)
    train = SyntheticShapes("train", num_images=n_train, image_size=(size, size))
    val = SyntheticShapes("val", num_images=max(8, n_train // 4), image_size=(size, size))
    miou_a = part_a_deeplabv3plus(train, val, args, epochs)
    miou_b = part_b_pspnet(train, val, args, epochs)
    print(f"val mIoU: DeepLab v3+ {miou_a:.4f}, PSPNet {miou_b:.4f}")
    return miou_a, miou_b


if __name__ == "__main__":
    main()

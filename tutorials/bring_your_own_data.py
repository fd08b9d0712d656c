"""Tutorial 3: bring your own folder of images and masks.

Your data needs one layout (see :class:`keras_seg.data.FolderDataset`)::

    my_data/
      images/  0001.jpg  0002.jpg ...      RGB images (png, jpg, bmp, tif)
      masks/   0001.png  0002.png ...      one PNG per image, same file stem:
                                           pixel value = class index (or a palette PNG),
                                           255 = ignore
      splits/  train.txt  val.txt          optional: the stems of each split

This tutorial writes such a folder from the built-in dataset (so it runs anywhere), then:

1. reads it with :class:`keras_seg.data.FolderDataset` (wrong sizes, unknown label values
   and unreadable files raise errors that name the file);
2. trains with the same driver as ``keras-seg train --data my_data`` (best / last
   checkpoints, CSV log, resume);
3. evaluates the best checkpoint with the dataset-level mIoU and predicts new image files
   of any size with :func:`keras_seg.inference.predict`.

Run::

    python tutorials/bring_your_own_data.py
    python tutorials/bring_your_own_data.py --fast
"""

import argparse
import os

import numpy as np

from keras_seg import inference
from keras_seg.data import FolderDataset, SyntheticShapes, read_image, write_image, write_mask
from keras_seg.trainer import TrainConfig, evaluate, format_iou_table, train


def write_folder_dataset(root, counts, size):
    """Write images/, masks/ and splits/ from the synthetic dataset; returns the root."""
    for folder in ("images", "masks", "splits"):
        os.makedirs(os.path.join(root, folder), exist_ok=True)
    for split, count in counts.items():
        source = SyntheticShapes(split, num_images=count, image_size=(size, size))
        stems = []
        for i in range(count):
            image, mask = source[i]
            stem = f"{split}_{i:04d}"
            write_image(os.path.join(root, "images", stem + ".jpg"), image)
            write_mask(os.path.join(root, "masks", stem + ".png"), mask, palette=source.palette)
            stems.append(stem)
        with open(os.path.join(root, "splits", f"{split}.txt"), "w") as f:
            f.write("\n".join(stems) + "\n")
    return root


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--fast", action="store_true", help="tiny run for the test suite")
    parser.add_argument("--output", default="tutorial_output/own_data")
    args = parser.parse_args(argv)
    size, n_train, epochs, filters = (48, 16, 1, 4) if args.fast else (96, 384, 10, 16)
    root = write_folder_dataset(os.path.join(args.output, "my_data"),
                                {"train": n_train, "val": max(8, n_train // 4)}, size)

    # 1. Read it: FolderDataset infers the number of classes from the masks unless told.
    classes = SyntheticShapes("train", num_images=1).num_classes
    train_set = FolderDataset(root, split="train", num_classes=classes)
    print(f"{len(train_set)} training pairs, {train_set.num_classes} classes")

    # 2. Train (the same as: keras-seg train --data ROOT --model unet ...).
    config = TrainConfig(model="unet", model_options={"filters": filters,
                                                      "depth": 2 if args.fast else 4},
                         data=root, data_format="folder", epochs=epochs, batch_size=8,
                         lr=2e-3, output=os.path.join(args.output, "run"), verbose=2)
    result = train(config)
    print(format_iou_table(result["evaluation"]))

    # 3. Predict image files of another size than the training crops.
    val_set = FolderDataset(root, split="val", num_classes=train_set.num_classes)
    scores = evaluate(result["model"], val_set)
    new_image = read_image(os.path.join(root, "images", "val_0000.jpg"))
    bigger = np.repeat(np.repeat(new_image, 2, axis=0), 2, axis=1)[: 2 * size - 3]
    classes = inference.predict(result["model"], [new_image, bigger])
    print(f"val mIoU {scores['mean_iou']:.4f}; predicted class maps of shapes "
          f"{[c.shape for c in classes]}")
    return scores["mean_iou"]


if __name__ == "__main__":
    main()

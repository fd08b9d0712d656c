"""Dataset readers: tiny datasets of each layout written to tmp_path with PIL."""

import os

import numpy as np
import pytest
from PIL import Image

from keras_seg.data import (
    CamVid,
    Cityscapes,
    FolderDataset,
    VOCSegmentation,
    colorize,
    default_palette,
    read_image,
    read_mask,
    write_mask,
)
from keras_seg.data.cityscapes import CITYSCAPES_LABELS
from keras_seg.data.io import VOID_COLOR

H, W = 10, 12


def _image(seed):
    return np.random.default_rng(seed).integers(0, 256, (H, W, 3), dtype=np.uint8)


def _mask(seed, values):
    return np.random.default_rng(seed + 100).choice(values, size=(H, W)).astype(np.uint8)


def _save(path, array):
    os.makedirs(os.path.dirname(path), exist_ok=True)
    Image.fromarray(array).save(path)


def _save_mask(path, mask, **kwargs):
    os.makedirs(os.path.dirname(path), exist_ok=True)
    write_mask(path, mask, **kwargs)


# === io ===


def test_read_image_modes(tmp_path):
    rgb = _image(0)
    _save(tmp_path / "rgb.png", rgb)
    _save(tmp_path / "gray.png", rgb[..., 0])
    Image.fromarray(np.dstack([rgb, np.full((H, W), 7, np.uint8)])).save(tmp_path / "rgba.png")
    Image.fromarray(rgb[..., 0].astype(np.uint16) * 257).save(tmp_path / "deep.png")
    np.testing.assert_array_equal(read_image(tmp_path / "rgb.png"), rgb)
    np.testing.assert_array_equal(read_image(tmp_path / "rgba.png"), rgb)
    for name in ("gray.png", "deep.png"):
        out = read_image(tmp_path / name)
        assert out.dtype == np.uint8 and out.shape == (H, W, 3)
        np.testing.assert_array_equal(out, np.repeat(rgb[..., :1], 3, axis=-1))


def test_mask_round_trip_palette_png(tmp_path):
    mask = _mask(0, [0, 1, 2, 20, 255])
    write_mask(tmp_path / "m.png", mask)
    img = Image.open(tmp_path / "m.png")
    assert img.mode == "P"  # VOC-style palette PNG: the index is the label
    palette = np.asarray(img.getpalette()[:768]).reshape(256, 3)
    np.testing.assert_array_equal(palette[1], default_palette(2)[1])
    np.testing.assert_array_equal(palette[255], VOID_COLOR)
    np.testing.assert_array_equal(read_mask(tmp_path / "m.png"), mask)
    big = mask.astype(np.int32) * 100  # labels above 255: 16-bit PNG
    write_mask(tmp_path / "big.png", big)
    np.testing.assert_array_equal(read_mask(tmp_path / "big.png"), big)


def test_colorize_and_color_masks(tmp_path):
    palette = np.array([[0, 0, 0], [255, 0, 0], [0, 255, 0]], np.uint8)
    mask = _mask(1, [0, 1, 2, 255])
    rgb = colorize(mask, palette)
    np.testing.assert_array_equal(rgb[mask == 1], np.tile([255, 0, 0], ((mask == 1).sum(), 1)))
    np.testing.assert_array_equal(rgb[mask == 255][0], VOID_COLOR)
    _save(tmp_path / "c.png", rgb)
    colors = {(0, 0, 0): 0, (255, 0, 0): 1, (0, 255, 0): 2, VOID_COLOR: 255}
    np.testing.assert_array_equal(read_mask(tmp_path / "c.png", palette=colors), mask)
    with pytest.raises(ValueError, match=r"c\.png.*\(224, 224, 192\)"):
        read_mask(tmp_path / "c.png", palette=palette)  # void color not in the palette
    with pytest.raises(ValueError, match="RGB color image.*palette="):
        read_mask(tmp_path / "c.png")


# === FolderDataset ===


def _folder(root, n=3, values=(0, 1, 2), exts=(".png", ".jpg", ".bmp")):
    images, masks = [], []
    for i in range(n):
        img, m = _image(i), _mask(i, list(values))
        ext = exts[i % len(exts)]
        _save(str(root / "images" / f"s{i}{ext}"), img)
        _save_mask(root / "masks" / f"s{i}.png", m)
        images.append(img)
        masks.append(m)
    return images, masks


def test_folder_dataset_reads_pairs(tmp_path):
    images, masks = _folder(tmp_path, values=(0, 1, 2, 255))
    ds = FolderDataset(tmp_path, num_classes=3, class_names=["bg", "a", "b"])
    assert len(ds) == 3 and ds.num_classes == 3 and ds.class_names == ["bg", "a", "b"]
    assert ds.ignore_index == 255 and ds.palette.shape == (3, 3)
    for i in range(3):
        image, mask = ds[i]
        assert image.dtype == np.uint8 and image.shape == (H, W, 3)
        assert mask.dtype == np.int32 and mask.shape == (H, W)
        np.testing.assert_array_equal(mask, masks[i])
        if i % 3 != 1:  # png and bmp are lossless, the jpg is not
            np.testing.assert_array_equal(image, images[i])
    assert "s1.jpg" in ds.describe(1) and "s1.png" in ds.describe(1)
    assert ds.verify() == 3


def test_folder_dataset_infers_num_classes(tmp_path):
    _folder(tmp_path, values=(0, 4, 255))
    with pytest.warns(UserWarning, match="inferred num_classes=5"):
        ds = FolderDataset(tmp_path)
    assert ds.num_classes == 5 and len(ds.class_names) == 5


def test_folder_dataset_color_masks(tmp_path):
    palette = np.array([[0, 0, 0], [200, 10, 10], [10, 200, 10]], np.uint8)
    mask = _mask(0, [0, 1, 2])
    _save(str(tmp_path / "images" / "a.png"), _image(0))
    _save(str(tmp_path / "masks" / "a.png"), palette[mask])
    ds = FolderDataset(tmp_path, palette=palette)
    assert ds.num_classes == 3
    np.testing.assert_array_equal(ds[0][1], mask)
    bad = palette[mask].copy()
    bad[3, 4] = (1, 2, 3)
    _save(str(tmp_path / "masks" / "a.png"), bad)
    with pytest.raises(ValueError, match=r"a\.png.*\(1, 2, 3\): 1 px"):
        ds[0]


def test_folder_dataset_split_list(tmp_path):
    _folder(tmp_path, n=4)
    os.makedirs(tmp_path / "splits")
    (tmp_path / "splits" / "val.txt").write_text("s3\n\n# comment\ns1\n")
    ds = FolderDataset(tmp_path, num_classes=3, split="val")
    assert len(ds) == 2 and "s3" in ds.describe(0) and "s1" in ds.describe(1)
    (tmp_path / "splits" / "bad.txt").write_text("s1\nnope\n")
    with pytest.raises(ValueError, match="nope"):
        FolderDataset(tmp_path, num_classes=3, split="bad")
    with pytest.raises(FileNotFoundError, match="train.txt"):
        FolderDataset(tmp_path, num_classes=3, split="train")


def test_folder_dataset_errors(tmp_path):
    with pytest.raises(FileNotFoundError, match="Dataset root not found"):
        FolderDataset(tmp_path / "missing")
    os.makedirs(tmp_path / "images")
    with pytest.raises(FileNotFoundError, match="Mask folder not found.*masks="):
        FolderDataset(tmp_path)
    os.makedirs(tmp_path / "masks")
    with pytest.raises(ValueError, match="empty"):
        FolderDataset(tmp_path, num_classes=2)
    _folder(tmp_path, n=3)
    _save(str(tmp_path / "images" / "x.png"), _image(5))
    _save(str(tmp_path / "images" / "y.png"), _image(6))
    with pytest.raises(ValueError, match=r"Images without a mask.*x\.png.*y\.png"):
        FolderDataset(tmp_path, num_classes=3)
    os.remove(tmp_path / "images" / "x.png")
    os.remove(tmp_path / "images" / "y.png")
    _save_mask(tmp_path / "masks" / "z.png", _mask(0, [0]))
    with pytest.raises(ValueError, match=r"Masks without an image.*z\.png"):
        FolderDataset(tmp_path, num_classes=3)
    os.remove(tmp_path / "masks" / "z.png")

    ds = FolderDataset(tmp_path, num_classes=2)  # the masks hold label 2
    with pytest.raises(ValueError, match=r"s0\.png.*label values \[2\].*outside \[0, 2\)"):
        ds.load_mask(0)
    _save_mask(tmp_path / "masks" / "s1.png", np.zeros((H + 1, W), np.uint8))
    (tmp_path / "images" / "s2.bmp").write_bytes(b"not an image at all")
    ds = FolderDataset(tmp_path, num_classes=3)
    with pytest.raises(ValueError, match=r"s1\.png.*is 12x11.*image.*is 12x10"):
        ds[1]
    with pytest.raises(ValueError, match=r"Cannot read image file.*s2\.bmp"):
        ds[2]
    with pytest.raises(ValueError, match=r"(?s)2 problem\(s\).*s1\.png.*s2\.bmp"):
        ds.verify()


# === Pascal VOC ===


def _voc(root, names, values=(0, 15, 20, 255)):
    voc = root / "VOCdevkit" / "VOC2012"
    masks = {}
    for i, name in enumerate(names):
        _save(str(voc / "JPEGImages" / f"{name}.jpg"), _image(i))
        masks[name] = _mask(i, list(values))
        _save_mask(voc / "SegmentationClass" / f"{name}.png", masks[name],
                   palette=default_palette(21))
    os.makedirs(voc / "ImageSets" / "Segmentation", exist_ok=True)
    return voc, masks


def test_voc_segmentation(tmp_path):
    voc, masks = _voc(tmp_path, ["2007_000032", "2007_000039", "2008_000001"])
    lists = voc / "ImageSets" / "Segmentation"
    (lists / "train.txt").write_text("2007_000032\n2008_000001\n")
    (lists / "val.txt").write_text("2007_000039\n")
    for root in (tmp_path, tmp_path / "VOCdevkit", voc):
        ds = VOCSegmentation(root, "train")
        assert len(ds) == 2
    assert ds.num_classes == 21 and ds.class_names[15] == "person"
    assert ds.class_names[0] == "background" and ds.ignore_index == 255
    image, mask = ds[1]
    assert image.shape == (H, W, 3)
    np.testing.assert_array_equal(mask, masks["2008_000001"])  # void 255 kept as ignore
    assert len(VOCSegmentation(voc, "val")) == 1
    with pytest.raises(ValueError, match="unknown split"):
        VOCSegmentation(voc, "test")
    _save_mask(voc / "SegmentationClass" / "2007_000039.png", _mask(0, [0, 30]))
    with pytest.raises(ValueError, match=r"2007_000039\.png.*raw values \[30\]"):
        VOCSegmentation(voc, "val")[0]
    os.remove(voc / "SegmentationClass" / "2007_000039.png")
    with pytest.raises(FileNotFoundError, match=r"masks \['.*2007_000039\.png'\]"):
        VOCSegmentation(voc, "val")
    with pytest.raises(FileNotFoundError, match="trainval.txt"):
        VOCSegmentation(voc, "trainval")
    with pytest.raises(FileNotFoundError, match="No Pascal VOC 2012 folder"):
        VOCSegmentation(tmp_path / "VOCdevkit" / "VOC2012" / "ImageSets")


# === Cityscapes ===


def _cityscapes_file(root, split, city, frame, label_ids):
    stem = f"{city}_000000_{frame:06d}"
    _save(str(root / "leftImg8bit" / split / city / f"{stem}_leftImg8bit.png"),
          _image(frame)[: label_ids.shape[0], : label_ids.shape[1]])
    _save(str(root / "gtFine" / split / city / f"{stem}_gtFine_labelIds.png"), label_ids)
    _save(str(root / "gtFine" / split / city / f"{stem}_gtFine_color.png"), _image(9))


def test_cityscapes_label_ids_to_train_ids(tmp_path):
    ids = np.arange(34, dtype=np.uint8)
    # every labelId, then 255 (the license plate's -1 in a uint8 PNG) and a car
    all_ids = np.concatenate([ids, [255, 26]]).astype(np.uint8).reshape(3, 12)
    _cityscapes_file(tmp_path, "train", "aachen", 19, all_ids)
    _cityscapes_file(tmp_path, "train", "bremen", 7, np.full((H, W), 7, np.uint8))
    _cityscapes_file(tmp_path, "val", "frankfurt", 1, np.full((H, W), 26, np.uint8))
    ds = Cityscapes(tmp_path, "train")
    assert len(ds) == 2 and ds.num_classes == 19 and ds.ignore_index == 255
    assert ds.class_names[13] == "car" and ds.class_names[0] == "road"
    _, mask = ds[0]
    expected = {label_id % 256: (255 if train_id in (255, -1) else train_id)
                for _, label_id, train_id in CITYSCAPES_LABELS}
    np.testing.assert_array_equal(mask.ravel(), [expected[v] for v in all_ids.ravel()])
    # spot checks against the official table
    assert mask.ravel()[7] == 0 and mask.ravel()[26] == 13 and mask.ravel()[33] == 18
    assert mask.ravel()[0] == 255 and mask.ravel()[9] == 255 and mask.ravel()[34] == 255
    assert sorted(set(expected.values()) - {255}) == list(range(19))
    assert (ds[1][1] == 0).all()
    assert len(Cityscapes(tmp_path, "val")) == 1


def test_cityscapes_errors(tmp_path):
    with pytest.raises(FileNotFoundError, match="Cityscapes image folder"):
        Cityscapes(tmp_path, "train")
    _cityscapes_file(tmp_path, "train", "aachen", 1, np.full((H, W), 40, np.uint8))
    with pytest.raises(ValueError, match=r"raw values \[40\].*labelIds"):
        Cityscapes(tmp_path, "train")[0]
    _save(str(tmp_path / "leftImg8bit" / "train" / "aachen" / "aachen_000000_000002_leftImg8bit"
              ".png"), _image(2))
    with pytest.raises(FileNotFoundError, match=r"aachen_000000_000002_leftImg8bit\.png"):
        Cityscapes(tmp_path, "train")
    with pytest.raises(ValueError, match="unknown split"):
        Cityscapes(tmp_path, "training")


# === CamVid ===


def _camvid(root, split, names, values=(0, 3, 10, 11)):
    masks = {}
    for i, name in enumerate(names):
        _save(str(root / split / f"{name}.png"), _image(i))
        masks[name] = _mask(i, list(values))
        _save(str(root / f"{split}annot" / f"{name}.png"), masks[name])
    return masks


def test_camvid(tmp_path):
    masks = _camvid(tmp_path, "train", ["0001TP_006690", "0001TP_006720"])
    _camvid(tmp_path, "val", ["0016E5_07959"])
    ds = CamVid(tmp_path, "train")
    assert len(ds) == 2 and ds.num_classes == 11 and ds.class_names[0] == "Sky"
    assert ds.class_names[-1] == "Bicyclist" and ds.class_names[4] == "Sidewalk"
    _, mask = ds[0]
    raw = masks["0001TP_006690"].astype(np.int32)
    np.testing.assert_array_equal(mask, np.where(raw == 11, 255, raw))  # void -> ignore
    assert len(CamVid(tmp_path, "trainval")) == 3
    _save(str(tmp_path / "val" / "0016E5_08000.png"), _image(3))
    with pytest.raises(ValueError, match=r"images without annotation.*0016E5_08000\.png"):
        CamVid(tmp_path, "val")
    _save(str(tmp_path / "trainannot" / "0001TP_006690.png"), np.full((H, W), 12, np.uint8))
    with pytest.raises(ValueError, match=r"0001TP_006690\.png.*raw values \[12\]"):
        CamVid(tmp_path, "train")[0]
    with pytest.raises(FileNotFoundError, match="CamVid image folder.*test"):
        CamVid(tmp_path, "test")

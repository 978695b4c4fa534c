"""Segmentation datasets: a tiny VOC folder written here, and the shapes masks."""
import numpy as np
import pytest
import torch
from PIL import Image

from netgaze.lab.datasets import DatasetError
from netgaze.lab.segdata import load_segmentation, read_mask, voc_palette


def _write_voc(root, classes_txt=None):
    (root / "JPEGImages").mkdir(parents=True)
    (root / "SegmentationClass").mkdir()
    (root / "ImageSets" / "Segmentation").mkdir(parents=True)
    palette = voc_palette().flatten().tolist()
    for k, name in enumerate(["a", "b", "c"]):
        image = np.zeros((8, 12, 3), np.uint8)
        image[..., 0] = 40 * k
        image[..., 1] = 200
        Image.fromarray(image).save(root / "JPEGImages" / f"{name}.jpg", quality=100)
        mask = np.full((8, 12), 255, np.uint8)        # VOC's ignored border...
        mask[1:-1, 1:-1] = 0                          # ...around background
        mask[2:6, 3:9] = k + 1                        # ...and one object of class k + 1
        png = Image.fromarray(mask, mode="P")
        png.putpalette(palette)
        png.save(root / "SegmentationClass" / f"{name}.png")
    (root / "ImageSets" / "Segmentation" / "train.txt").write_text("a\nb\n")
    (root / "ImageSets" / "Segmentation" / "val.txt").write_text("c\n")
    if classes_txt:
        (root / "classes.txt").write_text("\n".join(classes_txt))


def test_voc_folder_reader(tmp_path):
    _write_voc(tmp_path)
    train = load_segmentation(str(tmp_path), "train", size=(8, 12))
    test = load_segmentation(str(tmp_path), "test", size=(8, 12))
    assert len(train) == 2 and len(test) == 1 and train.num_classes == 21 and train.classes[15] == "person"
    image, mask = train[1]
    assert image.shape == (3, 8, 12) and image.dtype == torch.float32
    assert image[1].mean().item() == pytest.approx(200 / 255, abs=0.02)
    assert image[0].mean().item() == pytest.approx(40 / 255, abs=0.02)
    assert mask.dtype == torch.int64
    assert (mask[0] == 255).all() and (mask[:, 0] == 255).all()
    assert (mask[2:6, 3:9] == 2).all() and mask[1, 1] == 0
    assert np.bincount(mask.flatten().numpy(), minlength=256)[[0, 2, 255]].tolist() == [60 - 24, 24, 36]
    assert (test[0][1][2:6, 3:9] == 3).all()


def test_voc_resize_uses_nearest_for_masks(tmp_path):
    _write_voc(tmp_path)
    image, mask = load_segmentation(str(tmp_path), "train", size=16)[0]
    assert image.shape == (3, 16, 16)
    assert set(mask.unique().tolist()) == {0, 1, 255}     # no blended labels
    # nearest: the centre of the object stays object, the corners stay border
    assert mask[8, 8] == 1 and mask[0, 0] == 255 and mask[15, 15] == 255


def test_voc_classes_file_rgb_masks_and_errors(tmp_path):
    _write_voc(tmp_path, classes_txt=["background", "cat", "dog"])
    train = load_segmentation(f"voc:{tmp_path}", "train", size=(8, 12))
    assert train.classes == ["background", "cat", "dog"]
    labels = np.array([[0, 15], [255, 2]], np.uint8)
    Image.fromarray(voc_palette()[labels]).save(tmp_path / "rgb.png")
    assert read_mask(tmp_path / "rgb.png").tolist() == labels.tolist()
    with pytest.raises(DatasetError, match="no JPEGImages"):
        load_segmentation(str(tmp_path / "SegmentationClass"), "train")
    with pytest.raises(DatasetError, match="unknown option.*valid: size"):
        load_segmentation(str(tmp_path), "train", n=3)
    # classes.txt with too few classes for the masks: a clear error
    (tmp_path / "classes.txt").write_text("background\ncat\n")
    with pytest.raises(DatasetError, match="label 2 but only 2 classes"):
        load_segmentation(str(tmp_path), "train", size=(8, 12))[1]


def test_shapes_segmentation_masks():
    data = load_segmentation("shapes", "train", n=20, size=32, num_classes=3)
    assert data.classes[0] == "background" and data.num_classes == 4
    for i in range(20):
        image, mask = data[i]
        label = data.shapes[i][1]
        truth = data.shapes.mask(i)
        assert image.shape == (3, 32, 32) and mask.shape == (32, 32) and mask.dtype == torch.int64
        assert torch.equal(mask == label + 1, truth) and torch.equal(mask == 0, ~truth)
        y0, x0, y1, x1 = data.box(i)
        assert mask[y0:y1, x0:x1].sum() == mask.sum()

"""The shapes generator: masks and boxes match the pictures, seeds reproduce, spurious backgrounds."""
import numpy as np
import pytest
import torch

from netgaze.lab.datasets import SHAPE_NAMES, shapes
import importlib

shapes_module = importlib.import_module("netgaze.lab.datasets.shapes")

N = 200


@pytest.fixture(scope="module")
def train():
    return shapes("train", n=N, seed=3)


def _outer_ring(masks: torch.Tensor) -> torch.Tensor:
    """Pixels outside each mask with a 4-neighbour inside it."""
    padded = torch.nn.functional.pad(masks, (1, 1, 1, 1))
    grown = padded[:, :-2, 1:-1] | padded[:, 2:, 1:-1] | padded[:, 1:-1, :-2] | padded[:, 1:-1, 2:]
    return grown & ~masks


def test_items_are_float_pictures_with_labels(train):
    image, label = train[0]
    assert image.dtype == torch.float32 and image.shape == (3, 64, 64)
    images, labels = train.tensors()
    assert 0 <= float(images.min()) and float(images.max()) <= 1
    assert label == int(labels[0])
    assert train.classes == ["circle", "square", "triangle", "star", "cross"]
    assert (train.channels, train.size, train.name) == (3, (64, 64), "shapes")
    assert torch.bincount(labels, minlength=5).tolist() == [40] * 5  # balanced classes
    assert len(shapes("test")) == 500 and len(shapes("train")) == 2000


def test_mask_pixels_have_the_object_colour_and_the_ring_around_does_not(train):
    images, _ = train.tensors()
    colors = train.colors
    ring = _outer_ring(train.masks)
    for i in range(N):
        mask = train.mask(i)
        assert mask.sum() >= 60  # radius >= 0.14 * 64 px: never a speck
        inside = images[i][:, mask].T  # [pixels, 3]
        # shading varies brightness by at most 10%, plus uint8 rounding
        tolerance = shapes_module.SHADING * colors[i] + 0.5 / 255 + 1e-6
        assert ((inside - colors[i]).abs() <= tolerance).all(), i
        outside = images[i][:, ring[i]].T
        distance = (outside - colors[i]).abs().amax(1)
        assert float(distance.min()) > 0.12, i  # background and distractors stay far from it


def test_boxes_are_the_bounding_boxes_of_the_masks(train):
    for i in range(N):
        ys, xs = torch.nonzero(train.mask(i), as_tuple=True)
        assert train.box(i) == (int(ys.min()), int(xs.min()), int(ys.max()) + 1, int(xs.max()) + 1)
    assert train.boxes.shape == (N, 4)


def test_same_seed_same_pixels_other_seed_or_split_differs(train):
    images = train.tensors()[0].clone()
    masks = train.masks.clone()
    shapes_module._generate.cache_clear()  # regenerate from scratch, not from the cache
    again = shapes("train", n=N, seed=3)
    assert torch.equal(again.tensors()[0], images) and torch.equal(again.masks, masks)
    other_seed = shapes("train", n=N, seed=4).tensors()[0]
    test = shapes("test", n=N, seed=3).tensors()[0]
    for other in (other_seed, test):
        assert (other - images).abs().mean() > 0.05
        keys = {bytes(x.numpy().tobytes()) for x in images}
        assert not any(bytes(x.numpy().tobytes()) in keys for x in other)  # no shared picture


def test_spurious_background_follows_the_class_in_train_only():
    train = shapes("train", n=500, spurious=True)
    test = shapes("test", n=500, spurious=True)
    train_rate = (train.backgrounds == train.labels).float().mean().item()
    test_rate = (test.backgrounds == test.labels).float().mean().item()
    assert train_rate >= 0.85
    assert 0.12 <= test_rate <= 0.28  # chance is 1/5
    assert train.background(0) == int(train.backgrounds[0])
    # the objects do not move when only the backgrounds change
    plain = shapes("train", n=500, spurious=False)
    assert torch.equal(plain.masks, train.masks) and torch.equal(plain.labels, train.labels)
    # without spurious, background and class are independent in train too
    assert (plain.backgrounds == plain.labels).float().mean().item() < 0.3


def test_background_palette_is_visible_in_the_pixels():
    data = shapes("test", n=300, clutter=0.0)
    images, _ = data.tensors()
    away = ~data.masks  # background pixels (no distractors at clutter 0)
    median = torch.stack([images[i][:, away[i]].median(1).values for i in range(len(data))])
    palette = torch.from_numpy(shapes_module.BACKGROUND_PALETTE)
    nearest = torch.cdist(median, palette[:5]).argmin(1)
    assert torch.equal(nearest, data.backgrounds)


def test_more_classes_sizes_and_clutter():
    data = shapes("train", n=100, num_classes=10, size=32, clutter=1.0)
    assert data.classes == SHAPE_NAMES and len(SHAPE_NAMES) == 10
    assert data[0][0].shape == (3, 32, 32) and data.masks.shape == (100, 32, 32)
    assert set(data.labels.tolist()) == set(range(10))
    assert data.backgrounds.max() <= 9
    calm = shapes("train", n=100, clutter=0.0).tensors()[0]
    busy = shapes("train", n=100, clutter=1.0).tensors()[0]
    # more clutter = a rougher background: larger differences between neighbouring pixels
    rough = lambda x: (x[..., 1:] - x[..., :-1]).abs().mean()
    assert rough(busy) > 1.5 * rough(calm)


@pytest.mark.parametrize("bad", [dict(num_classes=1), dict(num_classes=11), dict(clutter=2.0),
                                 dict(size=8), dict(n=0), dict(max_rotation=200)])
def test_bad_arguments_are_clear_errors(bad):
    with pytest.raises(ValueError, match="shapes"):
        shapes("train", **bad)
    with pytest.raises(ValueError, match="split"):
        shapes("validation")


def test_each_class_has_its_own_shape():
    """Fill ratio of the mask in its box separates the classes (a square fills its box, a star does not)."""
    data = shapes("train", n=400, num_classes=10, clutter=0.0)
    fill = data.masks.flatten(1).sum(1).float() / ((data.boxes[:, 2] - data.boxes[:, 0])
                                                  * (data.boxes[:, 3] - data.boxes[:, 1])).float()
    per_class = [float(fill[data.labels == c].mean()) for c in range(10)]
    names = dict(zip(SHAPE_NAMES, per_class))
    assert names["circle"] == pytest.approx(np.pi / 4, abs=0.06)
    assert names["ring"] < names["circle"] - 0.2
    assert names["star"] < names["square"] - 0.2 and names["cross"] < names["square"] - 0.1


def test_max_rotation_turns_the_objects():
    upright = shapes("train", n=200, clutter=0.0, max_rotation=0)
    turned = shapes("train", n=200, clutter=0.0, max_rotation=180)
    fill = lambda d: d.masks.flatten(1).sum(1).float() / (
        (d.boxes[:, 2] - d.boxes[:, 0]) * (d.boxes[:, 3] - d.boxes[:, 1])).float()
    square_up, square_any = fill(upright)[upright.labels == 1], fill(turned)[turned.labels == 1]
    assert float(square_up.min()) > 0.9  # an unturned square fills its box (edge pixels aside)
    assert float(square_any.mean()) < 0.85  # turned squares leave box corners empty

"""Embedded digits, augmentation presets, the Transformed wrapper and load_dataset's errors."""
import numpy as np
import pytest
import torch
import torch.nn.functional as F

from netgaze.lab.datasets import (DatasetError, Transformed, augmentation, digits, load_dataset, shapes)


def test_digits_split_is_fixed_complete_and_stratified():
    from sklearn.datasets import load_digits

    train, test = digits("train"), digits("test")
    assert (len(train), len(test)) == (1437, 360) and len(train) + len(test) == 1797
    assert set(train.indices.tolist()).isdisjoint(test.indices.tolist())
    target = load_digits().target
    share_all = np.bincount(target, minlength=10) / len(target)
    share_test = torch.bincount(test.labels, minlength=10).numpy() / len(test)
    assert np.abs(share_test - share_all).max() < 0.01  # stratified: within one picture per class
    assert torch.equal(test.labels, torch.from_numpy(target[test.indices.numpy()]))
    assert torch.equal(digits("test").indices, test.indices)  # fixed
    assert train.classes == [str(d) for d in range(10)] and (train.channels, train.size) == (1, (28, 28))


def test_digits_pictures_are_the_upscaled_originals():
    from sklearn.datasets import load_digits

    data = digits("all")
    images, _ = data.tensors()
    assert images.shape == (1797, 1, 28, 28) and float(images.min()) >= 0 and float(images.max()) <= 1
    original = torch.from_numpy(load_digits().images / 16.0).float()
    # bilinear upscaling keeps each picture's mean ink exactly (up to float rounding) ...
    assert torch.allclose(images.mean((1, 2, 3)), original.mean((1, 2)), atol=1e-5)
    # ... and its layout: averaged back to 8x8 it correlates with the original
    back = F.interpolate(images, size=(8, 8), mode="area")[:, 0]
    assert torch.corrcoef(torch.stack([back.flatten(), original.flatten()]))[0, 1] > 0.95
    train = digits("train")
    assert train.mean[0] == pytest.approx(float(train.tensors()[0].mean()), abs=1e-6)
    assert digits("test").mean == train.mean  # the test split uses the training statistics


def test_robust_augmentation_keeps_shape_and_range_and_changes_pixels():
    data = shapes("train", n=20)
    torch.manual_seed(0)
    robust = augmentation("robust", 64)
    image = data[0][0]
    out = [robust(image) for _ in range(4)]
    for o in out:
        assert o.shape == image.shape and o.dtype == torch.float32
        assert 0 <= float(o.min()) and float(o.max()) <= 1
        assert (o - image).abs().mean() > 0.01
    assert (out[0] - out[1]).abs().mean() > 0.01  # random per call
    torch.manual_seed(0)
    assert torch.equal(augmentation("robust", 64)(image), out[0])  # seeded
    assert torch.equal(augmentation("none", 64)(image), image)
    grey = digits("test")[0][0]
    assert augmentation("robust", 28, channels=1)(grey).shape == (1, 28, 28)
    crop = augmentation("robust", (48, 32))(image)
    assert crop.shape == (3, 48, 32)
    import pickle
    wrapped = pickle.loads(pickle.dumps(Transformed(data, augmentation("robust", 64))))  # DataLoader workers
    assert wrapped[0][0].shape == (3, 64, 64) and wrapped.classes == data.classes
    with pytest.raises(ValueError, match="none, robust"):
        augmentation("strong", 64)


def test_transformed_wrapper_keeps_labels_and_attributes():
    data = shapes("train", n=20)
    flipped = Transformed(data, lambda x: x.flip(-1))
    assert len(flipped) == 20 and flipped.classes == data.classes and flipped.mean == data.mean
    image, label = flipped[3]
    assert label == data[3][1] and torch.equal(image, data[3][0].flip(-1))
    assert torch.equal(flipped.mask(3), data.mask(3))


def test_load_dataset_names_and_errors():
    data = load_dataset("shapes", "test", n=50, spurious=True)
    assert len(data) == 50 and data.name == "shapes" and data.channels == 3
    assert load_dataset("DIGITS", "test").name == "digits"
    with pytest.raises(DatasetError, match='"digits", "shapes", "mnist:PATH"'):
        load_dataset("cifar10", "train")
    with pytest.raises(DatasetError, match="unknown option.*colour.*valid: n, seed"):
        load_dataset("shapes", "train", colour=True)
    with pytest.raises(DatasetError, match="no such folder"):
        load_dataset("mnist:/nonexistent/mnist", "train")

"""Readers on files the tests write: MNIST IDX (plain, gzipped, broken), image folders, split lists."""
import gzip
import warnings

import numpy as np
import pytest
import torch
from PIL import Image

from netgaze.lab.datasets import (CorruptImageWarning, DatasetError, image_folder, load_dataset, mnist,
                              read_idx, read_split_list, readable_class_name)


def _idx_bytes(array: np.ndarray, type_byte: int = 0x08) -> bytes:
    header = bytes([0, 0, type_byte, array.ndim]) + np.array(array.shape, dtype=">u4").tobytes()
    return header + array.astype(array.dtype.newbyteorder(">")).tobytes()


@pytest.fixture
def idx_folder(tmp_path):
    rng = np.random.default_rng(0)
    sets = {}
    for prefix, n, packed in (("train", 7, False), ("t10k", 4, True)):
        images = rng.integers(0, 256, size=(n, 28, 28), dtype=np.uint8)
        labels = rng.integers(0, 10, size=n, dtype=np.uint8)
        for kind, array in (("images-idx3-ubyte", images), ("labels-idx1-ubyte", labels)):
            raw = _idx_bytes(array)
            path = tmp_path / f"{prefix}-{kind}"
            if packed:
                path.with_name(path.name + ".gz").write_bytes(gzip.compress(raw))
            else:
                path.write_bytes(raw)
        sets[prefix] = (images, labels)
    return tmp_path, sets


def test_mnist_reads_plain_and_gzipped_idx_exactly(idx_folder):
    root, sets = idx_folder
    for split, prefix in (("train", "train"), ("test", "t10k")):
        data = mnist(root, split)
        images, labels = sets[prefix]
        assert len(data) == len(images) and data.classes == [str(d) for d in range(10)]
        stacked, got_labels = data.tensors()
        assert torch.equal(got_labels, torch.from_numpy(labels.astype(np.int64)))
        assert torch.allclose(stacked[:, 0], torch.from_numpy(images).float() / 255)
        assert (data.channels, data.size) == (1, (28, 28))
    # the test split is normalised with the training split's statistics
    train_pixels = sets["train"][0] / 255.0
    assert mnist(root, "test").mean[0] == pytest.approx(train_pixels.mean(), abs=1e-6)
    assert mnist(root, "test").std[0] == pytest.approx(train_pixels.std(ddof=1), abs=1e-4)
    via_spec = load_dataset(f"mnist:{root}", "test")
    assert torch.equal(via_spec.tensors()[0], mnist(root, "test").tensors()[0])


def test_read_idx_other_types_and_broken_files(tmp_path):
    values = np.arange(-6, 6, dtype=np.int32).reshape(3, 4) * 1000
    (tmp_path / "ints").write_bytes(_idx_bytes(values, 0x0C))
    assert np.array_equal(read_idx(tmp_path / "ints"), values)
    floats = np.linspace(-1, 1, 5).astype(np.float32)
    (tmp_path / "floats").write_bytes(gzip.compress(_idx_bytes(floats, 0x0D)))
    assert np.array_equal(read_idx(tmp_path / "floats"), floats)

    good = _idx_bytes(np.zeros((2, 3, 3), np.uint8))
    (tmp_path / "magic").write_bytes(b"\x01\x00" + good[2:])
    with pytest.raises(DatasetError, match="not an IDX file"):
        read_idx(tmp_path / "magic")
    (tmp_path / "type").write_bytes(b"\x00\x00\x07" + good[3:])
    with pytest.raises(DatasetError, match="not an IDX file"):
        read_idx(tmp_path / "type")
    (tmp_path / "short").write_bytes(good[:-5])
    with pytest.raises(DatasetError, match=r"shape \(2, 3, 3\)"):
        read_idx(tmp_path / "short")
    (tmp_path / "gz").write_bytes(gzip.compress(good)[:-10])
    with pytest.raises(DatasetError, match="gzip"):
        read_idx(tmp_path / "gz")
    with pytest.raises(DatasetError, match="no such IDX file"):
        read_idx(tmp_path / "absent")
    with pytest.raises(DatasetError, match="t10k-images-idx3-ubyte"):
        mnist(tmp_path, "test")


COLOURS = {"n02085620-Chihuahua": (200, 30, 40), "n02085782-Japanese_spaniel": (20, 60, 220)}


def _write_folder(root, per_class=5, corrupt=True):
    """Solid-colour pictures of two sizes per class, as JPEG and PNG; optionally broken files."""
    for folder, colour in COLOURS.items():
        (root / folder).mkdir(parents=True)
        for k in range(per_class):
            size = (40, 30) if k % 2 else (30, 50)
            ext = "png" if k % 3 == 0 else "jpg"
            Image.new("RGB", size, colour).save(root / folder / f"img_{k}.{ext}", quality=95)
    broken = []
    if corrupt:
        garbage = root / "n02085620-Chihuahua" / "garbage.jpg"
        garbage.write_bytes(b"\xff\xd8\xff\xe0 this is not really a jpeg")
        real = (root / "n02085782-Japanese_spaniel" / "img_1.jpg").read_bytes()
        truncated = root / "n02085782-Japanese_spaniel" / "truncated.jpg"
        truncated.write_bytes(real[: len(real) // 2])
        broken = [garbage, truncated]
    (root / "n02085620-Chihuahua" / "notes.txt").write_text("not an image, ignored")
    return broken


def test_image_folder_skips_corrupt_files_with_one_warning(tmp_path):
    root = tmp_path / "Images"
    broken = _write_folder(root)
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        data = image_folder(root, "all", size=16)
    corrupt = [w for w in caught if issubclass(w.category, CorruptImageWarning)]
    assert len(corrupt) == 1
    assert all(str(p) in str(corrupt[0].message) for p in broken)
    assert sorted(data.skipped) == sorted(str(p) for p in broken)
    assert len(data) == 10 and torch.bincount(data.labels).tolist() == [5, 5]
    assert data.classes == ["Chihuahua", "Japanese spaniel"]
    assert data.folders == list(COLOURS)
    for i in range(len(data)):
        image, label = data[i]
        assert image.shape == (3, 16, 16) and image.dtype == torch.float32
        expected = torch.tensor(COLOURS[data.folders[label]], dtype=torch.float32) / 255
        assert torch.allclose(image.mean((1, 2)), expected, atol=4 / 255)  # JPEG is lossy
    with pytest.warns(CorruptImageWarning):
        lazy = image_folder(root, "all", size=16, preload=False)
    assert torch.equal(torch.stack([lazy[i][0] for i in range(10)]), torch.stack([data[i][0] for i in range(10)]))
    with pytest.warns(CorruptImageWarning):
        grey = image_folder(root, "all", size=8, mode="L")
    assert grey[0][0].shape == (1, 8, 8) and grey.channels == 1
    assert data.mean[0] == pytest.approx((200 + 20) / 2 / 255, abs=0.02)


def test_empty_class_folder_and_empty_root_are_errors(tmp_path):
    root = tmp_path / "Images"
    _write_folder(root, corrupt=False)
    (root / "n02086240-Shih-Tzu").mkdir()
    with pytest.raises(DatasetError, match="n02086240-Shih-Tzu.* has no images"):
        image_folder(root)
    empty = tmp_path / "empty"
    empty.mkdir()
    with pytest.raises(DatasetError, match="no class folders"):
        image_folder(empty)
    with pytest.raises(DatasetError, match="no such image folder"):
        image_folder(tmp_path / "absent")
    (tmp_path / "bad" / "cls").mkdir(parents=True)
    (tmp_path / "bad" / "cls" / "x.jpg").write_bytes(b"broken")
    with pytest.warns(CorruptImageWarning), pytest.raises(DatasetError, match="none of the 1 image file"):
        image_folder(tmp_path / "bad", "all")


def _all_files(root):
    return sorted(str(p.relative_to(root)).replace("\\", "/") for p in root.rglob("img_*"))


def test_split_lists_as_text_and_as_mat(tmp_path):
    from scipy.io import savemat

    root = tmp_path / "Images"
    _write_folder(root, corrupt=False)
    files = _all_files(root)
    train_files, test_files = files[::2] + ["n02085620-Chihuahua/missing.jpg"], files[1::2]
    (tmp_path / "train_list.txt").write_text("# Stanford Dogs style\n" + "\n".join(train_files) + "\n\n")
    cells = np.empty((len(test_files), 1), dtype=object)
    for i, name in enumerate(test_files):
        cells[i, 0] = np.array([name])
    (tmp_path / "lists").mkdir()
    savemat(tmp_path / "lists" / "test_list.mat", {"file_list": cells,
                                                   "labels": np.ones((len(test_files), 1))})
    assert read_split_list(tmp_path / "lists" / "test_list.mat") == test_files
    assert read_split_list(tmp_path / "train_list.txt") == train_files

    with pytest.warns(CorruptImageWarning, match="missing.jpg"):
        train = image_folder(root, "train", size=8, train_list=tmp_path / "train_list.txt")
    assert [str(p.relative_to(root)) for p in train.files] == train_files[:-1]
    assert train.skipped == [str(root / "n02085620-Chihuahua/missing.jpg")]
    test = image_folder(root, "test", size=8, test_list=tmp_path / "lists" / "test_list.mat")
    assert [str(p.relative_to(root)) for p in test.files] == test_files
    # only the other split's list: this split is the rest
    rest = image_folder(root, "test", size=8, train_list=tmp_path / "train_list.txt")
    assert [str(p.relative_to(root)) for p in rest.files] == test_files
    # found next to Images/ without being named (train_list.txt beside it, lists/test_list.mat)
    found = image_folder(root, "test", size=8)
    assert "test_list.mat" in found.split_source and len(found) == len(test_files)
    # labels come from the folder of each path
    assert [found.folders[label] for label in found.labels] == [f.split("/")[0] for f in test_files]

    (tmp_path / "wrong.txt").write_text("elsewhere/a.jpg\n")
    with pytest.raises(DatasetError, match="relative to the image folder"):
        image_folder(root, "train", train_list=tmp_path / "wrong.txt")
    savemat(tmp_path / "nolist.mat", {"labels": np.ones(3)})
    with pytest.raises(DatasetError, match="no 'file_list'.*labels"):
        read_split_list(tmp_path / "nolist.mat")


def test_seeded_ratio_split_is_stratified_disjoint_and_reproducible(tmp_path):
    root = tmp_path / "pets"
    _write_folder(root, per_class=10, corrupt=False)
    train = image_folder(root, "train", size=8, test_fraction=0.3, seed=1)
    test = image_folder(root, "test", size=8, test_fraction=0.3, seed=1)
    assert "seeded" in train.split_source
    assert set(train.files).isdisjoint(test.files) and len(train) + len(test) == 20
    assert torch.bincount(test.labels).tolist() == [3, 3]
    assert test.files == image_folder(root, "test", size=8, test_fraction=0.3, seed=1).files
    assert test.files != image_folder(root, "test", size=8, test_fraction=0.3, seed=2).files
    via_spec = load_dataset(str(root), "test", size=8, test_fraction=0.3, seed=1)
    assert via_spec.files == test.files and via_spec.name == "pets"
    assert load_dataset(f"folder:{root}", "test", size=8, test_fraction=0.3, seed=1).files == test.files


def test_readable_class_names():
    assert readable_class_name("n02085620-Chihuahua") == "Chihuahua"
    assert readable_class_name("n02085782-Japanese_spaniel") == "Japanese spaniel"
    assert readable_class_name("cats") == "cats"

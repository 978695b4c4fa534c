"""MNIST IDX files (``train-images-idx3-ubyte``, ``t10k-labels-idx1-ubyte``, gzipped or not)."""
from __future__ import annotations

import gzip
from pathlib import Path

import numpy as np
import torch

from netgaze.lab.datasets.base import DatasetError, TensorImageDataset, channel_stats

# IDX type byte -> big-endian numpy dtype
IDX_TYPES = {0x08: ">u1", 0x09: ">i1", 0x0B: ">i2", 0x0C: ">i4", 0x0D: ">f4", 0x0E: ">f8"}
MNIST_PREFIXES = {"train": "train", "test": "t10k"}


def _read_bytes(path: Path) -> bytes:
    with open(path, "rb") as handle:
        raw = handle.read()
    if raw[:2] == b"\x1f\x8b":  # gzip magic, whatever the file is called
        try:
            raw = gzip.decompress(raw)
        except (OSError, EOFError) as error:
            raise DatasetError(f"{path}: broken gzip stream ({error})") from None
    return raw


def read_idx(path: str | Path) -> np.ndarray:
    """Read one IDX file (plain or gzipped) into an array of its declared type and shape.

    The header is two zero bytes, a type byte (0x08 ubyte ... 0x0E double), the number of
    dimensions, then one big-endian uint32 per dimension; the data follows, big-endian.

    Raises:
        DatasetError: the file is missing, the magic number is wrong, or its length does not
            match the header.
    """
    path = Path(path)
    if not path.is_file():
        raise DatasetError(f"no such IDX file: {path}")
    raw = _read_bytes(path)
    if len(raw) < 4 or raw[0] != 0 or raw[1] != 0 or raw[2] not in IDX_TYPES or raw[3] == 0:
        raise DatasetError(f"{path}: not an IDX file (magic bytes {raw[:4].hex() or 'missing'}; "
                           "expected 00 00, a type byte 08/09/0b/0c/0d/0e and a dimension count)")
    dtype, ndim = np.dtype(IDX_TYPES[raw[2]]), raw[3]
    header = 4 + 4 * ndim
    if len(raw) < header:
        raise DatasetError(f"{path}: IDX header cut short ({len(raw)} bytes, need {header})")
    shape = tuple(int(d) for d in np.frombuffer(raw, dtype=">u4", count=ndim, offset=4))
    expected = header + int(np.prod(shape)) * dtype.itemsize
    if len(raw) != expected:
        raise DatasetError(f"{path}: IDX header says shape {shape} ({expected} bytes) "
                           f"but the file holds {len(raw)} bytes")
    data = np.frombuffer(raw, dtype=dtype, offset=header).reshape(shape)
    return data.astype(dtype.newbyteorder("="))


def _find(root: Path, prefix: str, kind: str) -> Path:
    """``train-images-idx3-ubyte`` or ``train-images.idx3-ubyte``, optionally ``.gz``."""
    rank = 3 if kind == "images" else 1
    names = [f"{prefix}-{kind}-idx{rank}-ubyte", f"{prefix}-{kind}.idx{rank}-ubyte"]
    for name in names:
        for candidate in (root / name, root / f"{name}.gz"):
            if candidate.is_file():
                return candidate
    raise DatasetError(f"no {names[0]}[.gz] in {root}")


class MNIST(TensorImageDataset):
    """MNIST-format IDX files from a folder; see ``mnist``."""

    def __init__(self, root: str | Path, split: str = "train"):
        root = Path(root)
        if split not in MNIST_PREFIXES:
            raise DatasetError(f"mnist: split must be 'train' or 'test', got {split!r}")
        if not root.is_dir():
            raise DatasetError(f"mnist: no such folder: {root}")
        images_path = _find(root, MNIST_PREFIXES[split], "images")
        labels_path = _find(root, MNIST_PREFIXES[split], "labels")
        images, labels = read_idx(images_path), read_idx(labels_path)
        if images.ndim != 3 or images.dtype != np.uint8:
            raise DatasetError(f"{images_path}: expected uint8 images [N, H, W], got {images.dtype} {images.shape}")
        if labels.ndim != 1 or len(labels) != len(images):
            raise DatasetError(f"{labels_path}: expected {len(images)} labels, got shape {labels.shape}")
        if len(labels) == 0:
            raise DatasetError(f"{images_path}: holds no images")
        if labels.min() < 0:
            raise DatasetError(f"{labels_path}: negative labels")
        pixels = torch.from_numpy(images).unsqueeze(1)
        num_classes = max(10, int(labels.max()) + 1)
        if split == "train":
            mean, std = channel_stats(pixels)
        else:  # the training split's statistics when its files are there, else this split's
            try:
                mean, std = channel_stats(torch.from_numpy(
                    read_idx(_find(root, MNIST_PREFIXES["train"], "images"))).unsqueeze(1))
            except DatasetError:
                mean, std = channel_stats(pixels)
        super().__init__(pixels, torch.from_numpy(labels.astype(np.int64)),
                         [str(c) for c in range(num_classes)], name="mnist", split=split,
                         mean=mean, std=std)
        self.root = root


def mnist(root: str | Path, split: str = "train") -> MNIST:
    """MNIST (or Fashion-MNIST, KMNIST: any IDX pair) from ``root``: items ``(float32 [1, H, W] in [0, 1], label)``.

    Looks for ``train-images-idx3-ubyte`` / ``train-labels-idx1-ubyte`` (split "train") or
    ``t10k-*`` (split "test"), with ``-`` or ``.`` before ``idx``, gzipped or not (detected from
    the content). Class names are "0".."9" (more if the labels go higher).
    """
    return MNIST(root, split)

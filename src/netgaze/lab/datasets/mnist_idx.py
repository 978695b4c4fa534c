"""MNIST IDX files (``train-images-idx3-ubyte``, ``t10k-labels-idx1-ubyte``, gzipped or not)."""
from __future__ import annotations

import gzip
import zlib
from pathlib import Path
from typing import BinaryIO

import numpy as np
import torch

from netgaze.errors import one_line
from netgaze.lab.datasets.base import DatasetError, TensorImageDataset, channel_stats

# IDX type byte -> big-endian numpy dtype
IDX_TYPES = {0x08: ">u1", 0x09: ">i1", 0x0B: ">i2", 0x0C: ">i4", 0x0D: ">f4", 0x0E: ">f8"}
MNIST_PREFIXES = {"train": "train", "test": "t10k"}


# A gzip whose header claims more than this many bytes must not claim more than MAX_RATIO
# times its own size: real pictures compress about 5:1, a decompression bomb 1000:1.
RATIO_FLOOR_BYTES = 64 * 2 ** 20
MAX_RATIO = 100


def _open(path: Path) -> tuple[BinaryIO, bool]:
    """The file as a byte stream, decompressed on the fly when it starts with the gzip magic."""
    handle = open(path, "rb")
    gzipped = handle.read(2) == b"\x1f\x8b"
    handle.seek(0)
    return (gzip.GzipFile(fileobj=handle, mode="rb") if gzipped else handle), gzipped


def _check_claim(path: Path, claimed: int) -> None:
    """Refuse a gzip whose header claims an implausible size, before decompressing it."""
    compressed = path.stat().st_size
    with open(path, "rb") as raw:
        raw.seek(-4, 2)
        trailer = int.from_bytes(raw.read(4), "little")  # uncompressed size mod 2**32 (RFC 1952)
    if trailer != claimed % 2 ** 32:
        raise DatasetError(f"{path}: the IDX header claims {claimed:,} bytes but the gzip stream unpacks to "
                           f"{trailer:,} (mod 2**32); the file is damaged")
    if claimed > RATIO_FLOOR_BYTES and claimed > MAX_RATIO * compressed:
        raise DatasetError(f"{path}: a {compressed:,}-byte gzip that unpacks to {claimed:,} bytes "
                           f"(more than {MAX_RATIO}:1) is not picture data; refusing a possible decompression bomb")


def read_idx(path: str | Path) -> np.ndarray:
    """Read one IDX file (plain or gzipped) into an array of its declared type and shape.

    The header is two zero bytes, a type byte (0x08 ubyte ... 0x0E double), the number of
    dimensions, then one big-endian uint32 per dimension; the data follows, big-endian.
    A gzipped file is read as a stream: its header's sizes are checked against the gzip's
    own size and trailer before anything past the header is decompressed.

    Raises:
        DatasetError: the file is missing, the magic number is wrong, its length does not
            match the header, or a gzip claims an implausible size.
    """
    path = Path(path)
    if not path.is_file():
        raise DatasetError(f"no such IDX file: {path}")
    stream, gzipped = _open(path)
    try:
        with stream:
            magic = stream.read(4)
            if len(magic) < 4 or magic[0] != 0 or magic[1] != 0 or magic[2] not in IDX_TYPES or magic[3] == 0:
                raise DatasetError(f"{path}: not an IDX file (magic bytes {magic.hex() or 'missing'}; "
                                   "expected 00 00, a type byte 08/09/0b/0c/0d/0e and a dimension count)")
            dtype, ndim = np.dtype(IDX_TYPES[magic[2]]), magic[3]
            header = 4 + 4 * ndim
            dims = stream.read(4 * ndim)
            if len(dims) < 4 * ndim:
                raise DatasetError(f"{path}: IDX header cut short ({4 + len(dims)} bytes, need {header})")
            shape = tuple(int(d) for d in np.frombuffer(dims, dtype=">u4"))
            size = int(np.prod(shape)) * dtype.itemsize
            if gzipped:
                _check_claim(path, header + size)
            raw = stream.read(size + 1)
    except (OSError, EOFError, zlib.error) as error:
        raise DatasetError(f"{path}: broken gzip stream ({one_line(error)})") from None
    if len(raw) != size:
        held = f"{header + len(raw)} bytes" if len(raw) < size else "more"
        raise DatasetError(f"{path}: IDX header says shape {shape} ({header + size} bytes) but the file holds {held}")
    data = np.frombuffer(raw, dtype=dtype).reshape(shape)
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

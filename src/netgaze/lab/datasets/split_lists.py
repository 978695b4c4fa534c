"""Split lists: which files of an image folder belong to a split (Stanford Dogs ``train_list``/``test_list``)."""
from __future__ import annotations

from pathlib import Path

import numpy as np

from netgaze.lab.datasets.base import DatasetError

LIST_SUFFIXES = (".mat", ".txt", "")


def _strings(value: object) -> list[str]:
    """Flatten what ``scipy.io.loadmat`` makes of a cell array of strings into a list of str."""
    if isinstance(value, str):
        return [value]
    if isinstance(value, bytes):
        return [value.decode()]
    if isinstance(value, np.ndarray):
        if value.dtype.kind in "US":
            return [str(v) for v in value.ravel()]
        out: list[str] = []
        for item in value.ravel():
            out.extend(_strings(item))
        return out
    raise DatasetError(f"unexpected entry {value!r} in a .mat file list")


def read_split_list(path: str | Path) -> list[str]:
    """Relative image paths, in file order, from a split list.

    Two formats: a ``.mat`` file as Stanford Dogs ships (``train_list.mat``: variable
    ``file_list``, a cell array of paths like ``n02085620-Chihuahua/n02085620_5927.jpg``), read
    with ``scipy.io.loadmat``; or text, one relative path per line (blank lines and lines starting
    with ``#`` ignored). Backslashes become slashes.
    """
    path = Path(path)
    if not path.is_file():
        raise DatasetError(f"no such split list: {path}")
    with open(path, "rb") as handle:
        head = handle.read(128)
    if path.suffix.lower() == ".mat" or head.startswith(b"MATLAB"):
        from scipy.io import loadmat

        try:
            content = loadmat(str(path))
        except Exception as error:  # scipy raises several types for a bad file
            raise DatasetError(f"{path}: not a readable .mat file ({error})") from None
        if "file_list" not in content:
            names = sorted(k for k in content if not k.startswith("__"))
            raise DatasetError(f"{path}: no 'file_list' variable (has {', '.join(names) or 'none'})")
        entries = _strings(content["file_list"])
    else:
        try:
            text = path.read_text(encoding="utf-8")
        except UnicodeDecodeError:
            raise DatasetError(f"{path}: a split list must be text (UTF-8) or a .mat file") from None
        entries = [line.strip() for line in text.splitlines()]
        entries = [e for e in entries if e and not e.startswith("#")]
    entries = [e.strip().replace("\\", "/") for e in entries]
    if not entries:
        raise DatasetError(f"{path}: the split list is empty")
    return entries


def find_split_list(root: Path, split: str) -> Path | None:
    """``{split}_list.mat|.txt|`` in ``root``, its parent, or ``root/../lists`` (Stanford Dogs layout)."""
    for folder in (root, root.parent, root.parent / "lists"):
        for suffix in LIST_SUFFIXES:
            candidate = folder / f"{split}_list{suffix}"
            if candidate.is_file():
                return candidate
    return None

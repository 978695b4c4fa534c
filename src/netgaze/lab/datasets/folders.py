"""Image folders in the torchvision ``ImageFolder`` layout (the Stanford Dogs ``Images/`` layout).

``root/CLASS/**/*.jpg``: one sub-folder per class, sorted by name for the label order. Every
file of the split is opened, verified and decoded at construction, so a corrupt file is found
before training starts, never in the middle of an epoch.
"""
from __future__ import annotations

import functools
import re
from pathlib import Path

import numpy as np
import torch
from torch.utils.data import Dataset

from netgaze.errors import warn_user
from netgaze.lab.datasets.base import DatasetError, channel_stats
from netgaze._util.picture_files import PictureError, read_picture
from netgaze.lab.datasets.split_lists import find_split_list, read_split_list

IMAGE_EXTENSIONS = (".jpg", ".jpeg", ".png", ".ppm", ".bmp", ".pgm", ".tif", ".tiff", ".webp")
PRELOAD_LIMIT_BYTES = 512 * 2 ** 20
_WORDNET_PREFIX = re.compile(r"^n\d{8}[-_]")


class CorruptImageWarning(UserWarning):
    """Some image files could not be read and were left out (their paths are in the message)."""


def readable_class_name(folder: str) -> str:
    """``"n02085782-Japanese_spaniel"`` -> ``"Japanese spaniel"``: drop a WordNet id, underscores to spaces."""
    name = _WORDNET_PREFIX.sub("", folder).replace("_", " ").strip()
    return name or folder


def _is_image(path: Path) -> bool:
    return path.is_file() and path.suffix.lower() in IMAGE_EXTENSIONS and not path.name.startswith(".")


def decode_image(path: Path, size: int, mode: str, resize: str) -> np.ndarray:
    """One file -> uint8 [size, size, C] (``netgaze._util.picture_files.read_picture``); ``PictureError`` if broken."""
    return read_picture(path, mode, size, resize)


class ImageFolderDataset(Dataset):
    """Pictures from an image folder; see ``image_folder`` for the parameters.

    Attributes:
        classes: readable class names ("Chihuahua"), ``classes[label]``.
        folders: the raw class folder names ("n02085620-Chihuahua"), same order.
        files: the image paths of this split, ``files[i]`` is item ``i``.
        labels: int64 tensor [N].
        skipped: paths that could not be read (corrupt, not an image, missing from the disk).
        split_source: how the split was made, in words (for the run log).
        channels, size, name, split: as for every lab dataset.
        mean, std: per-channel statistics of this split (at most 512 pictures, computed on first use).
    """

    def __init__(self, root: str | Path, split: str = "train", size: int = 64,
                 train_list: str | Path | None = None, test_list: str | Path | None = None,
                 test_fraction: float = 0.2, seed: int = 0, mode: str = "RGB", resize: str = "crop",
                 preload: bool | None = None):
        root = Path(root)
        if split not in ("train", "test", "all"):
            raise DatasetError(f"image folder: split must be 'train', 'test' or 'all', got {split!r}")
        if mode not in ("RGB", "L"):
            raise DatasetError(f"image folder: mode must be 'RGB' or 'L', got {mode!r}")
        if resize not in ("crop", "stretch"):
            raise DatasetError(f"image folder: resize must be 'crop' or 'stretch', got {resize!r}")
        if not 0 < test_fraction < 1:
            raise DatasetError(f"image folder: test_fraction must be in (0, 1), got {test_fraction}")
        if isinstance(size, bool) or not isinstance(size, int) or size < 1:
            raise DatasetError(f"image folder: size must be a whole number of pixels >= 1, got {size!r}")
        if not root.is_dir():
            raise DatasetError(f"no such image folder: {root}")
        self.root, self.split, self.name = root, split, root.name
        self.size, self.channels, self._mode, self._resize = (size, size), 3 if mode == "RGB" else 1, mode, resize
        try:
            self.folders = sorted(d.name for d in root.iterdir() if d.is_dir() and not d.name.startswith("."))
            if not self.folders:
                raise DatasetError(f"{root}: no class folders; expected {root}/CLASS/*.jpg (one folder per class)")
            by_class = {}
            for folder in self.folders:
                images = sorted(p for p in (root / folder).rglob("*") if _is_image(p))
                if not images:
                    raise DatasetError(f"class folder {root / folder} has no images "
                                       f"({', '.join(IMAGE_EXTENSIONS)})")
                by_class[folder] = images
        except OSError as err:  # an unreadable entry (a system folder such as /proc)
            raise DatasetError(f"cannot read image folder {root}: {err.strerror or err} "
                               f"({err.filename or root})") from None
        self.classes = [readable_class_name(f) for f in self.folders]
        if len(set(self.classes)) < len(self.classes):
            self.classes = list(self.folders)
        self._by_class = by_class
        chosen, missing = self._select(by_class, split, train_list, test_list, test_fraction, seed)
        self._check(chosen, missing, preload)

    def _select(self, by_class: dict[str, list[Path]], split: str, train_list, test_list,
                test_fraction: float, seed: int) -> tuple[list[tuple[Path, int]], list[Path]]:
        label_of = {folder: i for i, folder in enumerate(self.folders)}
        every = [(path, label_of[folder]) for folder, paths in by_class.items() for path in paths]
        if split == "all":
            self.split_source = "all images"
            return every, []
        lists = {"train": train_list, "test": test_list}
        if lists["train"] is None and lists["test"] is None:
            lists = {s: find_split_list(self.root, s) for s in ("train", "test")}
        own, other = lists[split], lists["test" if split == "train" else "train"]
        if own is not None or other is not None:
            list_path = Path(own if own is not None else other)
            entries = read_split_list(list_path)
            named = {(self.root / e).resolve() for e in entries}
            if own is not None:
                self.split_source = f"list file {list_path}"
                chosen = []
                missing = []
                known = {path.resolve(): (path, label) for path, label in every}
                for entry in entries:
                    full = (self.root / entry).resolve()
                    if full in known:
                        chosen.append(known[full])
                    else:
                        missing.append(self.root / entry)
                if not chosen:
                    raise DatasetError(f"none of the {len(entries)} paths in {list_path} is an image under "
                                       f"{self.root} (first: {entries[0]}); paths must be relative to the image folder")
                return chosen, missing
            self.split_source = f"all images not in list file {list_path}"
            return [(p, label) for p, label in every if p.resolve() not in named], []
        self.split_source = f"seeded ratio split, test_fraction={test_fraction}, seed={seed}"
        rng = np.random.default_rng(seed)
        chosen = []
        for folder, paths in by_class.items():
            order = rng.permutation(len(paths))
            n_test = int(round(len(paths) * test_fraction)) if len(paths) > 1 else 0
            n_test = min(max(n_test, 1 if len(paths) > 1 else 0), len(paths) - 1)
            pick = order[:n_test] if split == "test" else order[n_test:]
            chosen.extend((paths[i], label_of[folder]) for i in sorted(pick))
        return chosen, []

    def _empty_split_reason(self) -> str:
        """Why the split selected no picture at all, in words."""
        if self.split_source.startswith("seeded ratio split"):
            counts = {folder: len(files) for folder, files in self._by_class.items()}
            single = [folder for folder, n in counts.items() if n < 2]
            if self.split == "test" and len(single) == len(counts):
                return (f"{self.root}: every class folder holds a single picture, and one picture per class cannot "
                        f"be split into train and test; put at least 2 pictures in a class folder")
        return f"{self.root}: split {self.split!r} holds no picture ({self.split_source})"

    def _check(self, chosen: list[tuple[Path, int]], missing: list[Path], preload: bool | None) -> None:
        size = self.size[0]
        if preload is None:
            preload = len(chosen) * size * size * self.channels <= PRELOAD_LIMIT_BYTES
        files, labels, pixels, skipped = [], [], [], [str(p) for p in missing]
        for path, label in chosen:
            try:
                decoded = decode_image(path, size, self._mode, self._resize)
            except PictureError:
                skipped.append(str(path))
                continue
            files.append(path)
            labels.append(label)
            if preload:
                pixels.append(decoded)
        if skipped:
            warn_user(f"{self.root}: skipped {len(skipped)} unreadable or missing image file(s): "
                      + ", ".join(skipped), CorruptImageWarning)
        if not chosen:
            raise DatasetError(self._empty_split_reason())
        if not files:
            raise DatasetError(f"{self.root}: none of the {len(skipped)} image file(s) of split {self.split!r} "
                               f"can be read (first: {skipped[0]})")
        self.files, self.skipped = files, skipped
        self.labels = torch.tensor(labels, dtype=torch.int64)
        self._pixels = (torch.from_numpy(np.stack(pixels)).permute(0, 3, 1, 2).contiguous()
                        if preload else None)

    def __len__(self) -> int:
        return len(self.files)

    def _pixels_at(self, index: int) -> torch.Tensor:
        if self._pixels is not None:
            return self._pixels[index]
        try:
            decoded = decode_image(self.files[index], self.size[0], self._mode, self._resize)
        except PictureError as error:
            raise DatasetError(f"{self.files[index]} became unreadable after the dataset was built: {error}") from None
        return torch.from_numpy(decoded).permute(2, 0, 1)

    def __getitem__(self, index: int) -> tuple[torch.Tensor, int]:
        return self._pixels_at(index).float().div_(255), int(self.labels[index])

    @functools.cached_property
    def _stats(self) -> tuple[list[float], list[float]]:
        picks = np.linspace(0, len(self) - 1, min(len(self), 512)).round().astype(int)
        return channel_stats(torch.stack([self._pixels_at(int(i)) for i in picks]))

    @property
    def mean(self) -> list[float]:
        return self._stats[0]

    @property
    def std(self) -> list[float]:
        return self._stats[1]

    def __repr__(self) -> str:
        return (f"ImageFolderDataset(root={str(self.root)!r}, split={self.split!r}, n={len(self)}, "
                f"classes={len(self.classes)}, skipped={len(self.skipped)}, source={self.split_source!r})")


def image_folder(root: str | Path, split: str = "train", size: int = 64,
                 train_list: str | Path | None = None, test_list: str | Path | None = None,
                 test_fraction: float = 0.2, seed: int = 0, mode: str = "RGB", resize: str = "crop",
                 preload: bool | None = None) -> ImageFolderDataset:
    """An image folder as a dataset of ``(float32 [C, size, size] in [0, 1], label)``.

    How the split is chosen, first match wins:
    1. ``train_list`` / ``test_list`` given: the split's own list (text, one path relative to
       ``root`` per line, or a Stanford Dogs ``.mat`` with ``file_list``); if only the other
       split's list is given, this split is every image not in it.
    2. Neither given: ``{split}_list.mat|.txt|`` found next to ``root`` (in ``root``, its parent
       or ``root/../lists``, as Stanford Dogs unpacks) is used the same way.
    3. Otherwise a seeded split per class: ``test_fraction`` of each class goes to "test".
    ``split="all"`` takes every image. ``.split_source`` says which rule applied.

    Files that cannot be opened, verified and decoded (and list entries missing from the disk)
    are left out with ONE ``CorruptImageWarning`` naming each path; ``.skipped`` keeps them.

    Args:
        root: the folder holding one sub-folder per class (Stanford Dogs: ``.../Images``).
        split: "train", "test" or "all".
        size: pictures are resized to ``size`` x ``size``.
        train_list, test_list: split list files (see above).
        test_fraction, seed: the seeded ratio split (rule 3).
        mode: "RGB" (3 channels) or "L" (grey, 1 channel).
        resize: "crop" (shorter side to ``size``, centre crop) or "stretch" (ignore aspect ratio).
        preload: keep decoded pictures in memory (no decoding during training); None = when
            they take at most 512 MiB.

    Raises:
        DatasetError: no such folder, no class folders, an empty class folder (named), no
            readable image in the split, or a split list that names no image under ``root``.
    """
    return ImageFolderDataset(root, split, size=size, train_list=train_list, test_list=test_list,
                              test_fraction=test_fraction, seed=seed, mode=mode, resize=resize,
                              preload=preload)

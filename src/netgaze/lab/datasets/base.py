"""What every lab dataset shares: the error type, an in-memory image dataset, channel statistics."""
from __future__ import annotations

from typing import Sequence

import torch
from torch.utils.data import Dataset

from netgaze.errors import UserError


class DatasetError(UserError):
    """A dataset that cannot be read or built as asked (bad path, empty folder, bad file).

    The message is one line meant for the user; the CLI turns it into a ``UserError``.
    """


def channel_stats(images: torch.Tensor, max_images: int = 4096) -> tuple[list[float], list[float]]:
    """Per-channel mean and standard deviation of images [N, C, H, W] (uint8 or float in [0, 1]).

    Uses at most ``max_images`` evenly spaced images, so the cost stays bounded on big sets.
    """
    from netgaze._util.tensor_files import drop_pages

    step = max(1, len(images) // max_images)
    rows, parts = range(0, len(images), step), []
    for lo in range(0, len(rows), 64):  # a memory-mapped file: its pages are let go after each block
        block = rows[lo:lo + 64]
        parts.append(images[block.start:block.stop:step].clone())
        drop_pages(images, block.start, block.stop)
    sample = torch.cat(parts) if parts else images[:0]
    if sample.dtype == torch.uint8:
        sample = sample.float().div_(255)
    sample = sample.double().transpose(0, 1).flatten(1)
    std = sample.std(1).clamp(min=1e-3)
    return [float(v) for v in sample.mean(1)], [float(v) for v in std]


class TensorImageDataset(Dataset):
    """Pictures held in memory as one tensor; items are ``(float32 [C, H, W] in [0, 1], int label)``.

    Indexing is one tensor slice, no per-item decoding, so a ``DataLoader`` with no workers is fast.

    Attributes:
        classes: class names, ``classes[label]``.
        labels: int64 tensor [N].
        channels: 1 or 3.
        size: (H, W).
        name: short name of the dataset ("digits", "shapes", "mnist", a folder name).
        split: "train", "test" or "all".
        mean, std: per-channel statistics of the training split, for a model's first
            ``Normalize`` layer (the lab's models take pictures in [0, 1]).
    """

    def __init__(self, images: torch.Tensor, labels: torch.Tensor, classes: Sequence[str], *,
                 name: str, split: str, mean: Sequence[float] | None = None,
                 std: Sequence[float] | None = None):
        if images.dim() != 4 or images.shape[1] not in (1, 3):
            raise DatasetError(f"{name}: images must be [N, 1|3, H, W], got {tuple(images.shape)}")
        if len(images) != len(labels):
            raise DatasetError(f"{name}: {len(images)} images but {len(labels)} labels")
        self._images = images
        self.labels = labels.long()
        self.classes = list(classes)
        self.name = name
        self.split = split
        self.channels = int(images.shape[1])
        self.size = (int(images.shape[2]), int(images.shape[3]))
        if mean is None or std is None:
            mean, std = channel_stats(images)
        self.mean = list(mean)
        self.std = list(std)

    def __len__(self) -> int:
        return len(self._images)

    def _float(self, images: torch.Tensor) -> torch.Tensor:
        if images.dtype == torch.uint8:
            return images.float().div_(255)
        return images.clone()

    def __getitem__(self, index: int) -> tuple[torch.Tensor, int]:
        return self._float(self._images[index]), int(self.labels[index])

    def read_rows(self, rows: range | Sequence[int] | torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """Pictures [B, C, H, W] (float32 in [0, 1]) and labels [B] of many rows at once: one slice
        for a ``range`` of step 1, one gather otherwise (the streaming analyses' fast path)."""
        if isinstance(rows, range) and rows.step == 1:
            return self._float(self._images[rows.start:rows.stop]), self.labels[rows.start:rows.stop].clone()
        index = torch.as_tensor(list(rows) if isinstance(rows, range) else rows, dtype=torch.int64)
        return self._float(self._images[index]), self.labels[index]

    def release(self, start: int, stop: int) -> None:
        """Let go of the memory-mapped pages of rows ``start:stop`` (pictures, labels, masks) once a
        streaming pass has read them; a no-op for pictures held in memory."""
        from netgaze._util.tensor_files import drop_pages

        for tensor in (self._images, self.labels, getattr(self, "masks", None), getattr(self, "marker_masks", None)):
            drop_pages(tensor, start, stop)

    def tensors(self) -> tuple[torch.Tensor, torch.Tensor]:
        """All images as one float32 tensor [N, C, H, W] in [0, 1] and the labels [N] (copies)."""
        return self._float(self._images), self.labels.clone()

    def __repr__(self) -> str:
        return (f"{type(self).__name__}(name={self.name!r}, split={self.split!r}, n={len(self)}, "
                f"classes={len(self.classes)}, channels={self.channels}, size={self.size})")

"""``Resized``: any lab dataset at another picture size (digits and MNIST files have a fixed one)."""
from __future__ import annotations

from typing import Any

import torch
import torch.nn.functional as F
from torch.utils.data import Dataset

from netgaze.lab.datasets.base import DatasetError


def resize_images(images: torch.Tensor, size: int) -> torch.Tensor:
    """float [B, C, H, W] in [0, 1] -> [B, C, size, size], bilinear with antialiasing, kept in [0, 1]."""
    if tuple(images.shape[-2:]) == (size, size):
        return images
    out = F.interpolate(images.float(), size=(size, size), mode="bilinear", align_corners=False, antialias=True)
    return out.clamp_(0.0, 1.0)


class Resized(Dataset):
    """A dataset whose pictures are resized to ``size`` x ``size`` when read (labels unchanged).

    Keeps the wrapped set's ``classes``, ``channels``, ``labels``, ``name``, ``split``,
    ``mean`` and ``std`` (resizing keeps a channel's mean; its spread barely moves).

    Args:
        dataset: a lab dataset of ``(float [C, H, W] in [0, 1], label)``.
        size: the new side in pixels.
    """

    def __init__(self, dataset: Dataset, size: int):
        if not isinstance(size, int) or isinstance(size, bool) or size < 1:
            raise DatasetError(f"size must be a positive number of pixels, got {size!r}")
        self.dataset = dataset
        self.size = (size, size)

    def __len__(self) -> int:
        return len(self.dataset)

    def __getitem__(self, index: int) -> tuple[torch.Tensor, Any]:
        image, label = self.dataset[index][:2]
        return resize_images(image[None], self.size[0])[0], label

    def tensors(self) -> tuple[torch.Tensor, torch.Tensor]:
        images, labels = self.dataset.tensors()
        return resize_images(images, self.size[0]), labels

    def __getattr__(self, name: str) -> Any:
        if name in ("dataset", "size"):  # not set yet (unpickling): no recursion
            raise AttributeError(name)
        return getattr(self.dataset, name)

    def __repr__(self) -> str:
        return f"Resized({self.dataset!r}, size={self.size[0]})"

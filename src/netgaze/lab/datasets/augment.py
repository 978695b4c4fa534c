"""Augmentation presets (SPEC L3), torchvision transforms v2 on image tensors in [0, 1].

Normalisation is not here: the lab's models normalise inside (a first ``Normalize`` layer built
from the dataset's ``mean``/``std``), so augmented pictures stay in picture space.
"""
from __future__ import annotations

from typing import Callable

import torch
from torch.utils.data import Dataset
from torchvision.transforms import v2

from netgaze.errors import ArgumentError

AUGMENT_PRESETS = ("none", "robust")


class ClampUnit(torch.nn.Module):
    """Clamp to [0, 1] (a module, not a lambda, so the transform pickles for DataLoader workers)."""

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x.clamp(0, 1)


def augmentation(preset: str, size: int | tuple[int, int], channels: int = 3) -> Callable[[torch.Tensor], torch.Tensor]:
    """The transform of a preset, for one float image [C, H, W] in [0, 1] (output: same shape, range).

    Args:
        preset: "none" (identity) or "robust": colour jitter (brightness, contrast 0.3; for
            3 channels also saturation 0.5 and any hue, so that colour alone, e.g. a
            background tied to the class, stops being a reliable cue), random affine (rotation up to 15
            degrees, shift up to 10%, scale 0.9-1.1) and random resized crop (scale 0.6-1,
            aspect 3/4-4/3) back to ``size``.
        size: output (H, W), or one int for a square.
        channels: 1 or 3; hue and saturation jitter only apply to colour pictures.
    Raises:
        ValueError: an unknown preset (the message lists the valid ones).
    """
    if preset == "none":
        return v2.Identity()
    if preset != "robust":
        raise ArgumentError(f"unknown augmentation preset {preset!r}; valid: {', '.join(AUGMENT_PRESETS)}")
    size = (size, size) if isinstance(size, int) else tuple(size)
    colour = dict(saturation=0.5, hue=0.5) if channels == 3 else {}
    return v2.Compose([
        v2.ColorJitter(brightness=0.3, contrast=0.3, **colour),
        v2.RandomAffine(degrees=15, translate=(0.1, 0.1), scale=(0.9, 1.1)),
        v2.RandomResizedCrop(size, scale=(0.6, 1.0), ratio=(3 / 4, 4 / 3), antialias=True),
        ClampUnit(),
    ])


class Transformed(Dataset):
    """A dataset whose images go through ``transform``; labels unchanged.

    Every other attribute (``classes``, ``channels``, ``size``, ``mean``, ``std``, ``masks``,
    ...) is read from the wrapped dataset. Note that masks and boxes describe the original,
    untransformed pictures: wrap training splits only.
    """

    def __init__(self, dataset: Dataset, transform: Callable[[torch.Tensor], torch.Tensor]):
        self.dataset = dataset
        self.transform = transform

    def __len__(self) -> int:
        return len(self.dataset)

    def __getitem__(self, index: int) -> tuple[torch.Tensor, int]:
        image, label = self.dataset[index]
        return self.transform(image), label

    def __getattr__(self, name: str):
        if name in ("dataset", "transform") or name.startswith("__"):
            raise AttributeError(name)
        return getattr(self.dataset, name)

    def __repr__(self) -> str:
        return f"Transformed({self.dataset!r}, {self.transform!r})"

"""Embed a named model (``torchvision:NAME`` / ``timm:NAME``) over any picture dataset.

What ``netgaze embed --model ... --data ...`` runs: the model's features of a dataset's
pictures, resized to the model's picture size (1-channel pictures repeated to 3).
"""
from __future__ import annotations

from typing import Any

import torch.nn.functional as F
from torch.utils.data import Dataset


class ResizedPictures(Dataset):
    """A picture dataset whose images are resized to ``size`` x ``size`` with ``channels`` channels.

    Other attributes (``classes``, ``paths``, ``background``...) are the wrapped dataset's.
    """

    def __init__(self, dataset: Dataset, size: int, channels: int = 3):
        self.dataset, self.size, self.channels = dataset, int(size), int(channels)

    def __len__(self) -> int:
        return len(self.dataset)

    def __getitem__(self, index: int):
        image, *rest = self.dataset[index]
        if tuple(image.shape[-2:]) != (self.size, self.size):
            image = F.interpolate(image[None].float(), size=(self.size, self.size), mode="bilinear",
                                  align_corners=False, antialias=True)[0].clamp(0, 1)
        if image.shape[0] == 1 and self.channels == 3:
            image = image.expand(3, -1, -1)
        return (image, *rest)

    def __getattr__(self, name: str) -> Any:
        if name == "dataset":
            raise AttributeError(name)
        return getattr(self.dataset, name)


class ModelOnData:
    """A run-like pairing of a loaded model and a dataset spec, for ``embed_run``.

    The task is "features": the model's own predictions (ImageNet classes, say) are not
    the dataset's labels, so no prediction is stored.
    """

    task = "features"

    classes: list[str] = []  # the dataset's own class names label the points

    def __init__(self, loaded: Any, data: str, size: int):
        self.model, self.path, self.data, self.size = loaded.model, loaded.name.replace(":", "-"), data, size

    def dataset(self, split: str) -> ResizedPictures:
        from netgaze.lab.datasets import load_dataset

        return ResizedPictures(load_dataset(self.data, split), self.size, 3)


__all__ = ["ResizedPictures", "ModelOnData"]

"""Pictures with their dataset index, for the one-pass analyses that must say which picture scored."""
from __future__ import annotations

import torch
from torch.utils.data import Dataset


def picture_of(item) -> torch.Tensor:
    """The picture of a dataset item: ``(picture, label, ...)`` or a bare picture."""
    return item[0] if isinstance(item, (tuple, list)) else item


class IndexedPictures(Dataset):
    """``dataset[i]`` as ``(picture, i)``: a DataLoader over it yields each batch's dataset indices."""

    def __init__(self, dataset: Dataset):
        self.dataset = dataset

    def __len__(self) -> int:
        return len(self.dataset)

    def __getitem__(self, i: int):
        return picture_of(self.dataset[i]), i

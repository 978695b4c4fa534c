"""Worker for the torchrun test: explains a fixed toy dataset into the folder given as argv[1]."""
import sys

import torch
import torch.nn as nn
from torch.utils.data import TensorDataset

from netgaze.analyses.dataset_explanations import explain_dataset


def toy_model() -> nn.Module:
    torch.manual_seed(0)
    return nn.Sequential(nn.Conv2d(3, 6, 3, padding=1), nn.ReLU(), nn.Conv2d(6, 6, 3, padding=1), nn.ReLU(),
                         nn.AdaptiveAvgPool2d(1), nn.Flatten(), nn.Linear(6, 4))


def toy_dataset() -> TensorDataset:
    g = torch.Generator().manual_seed(1)
    return TensorDataset(torch.rand(23, 3, 10, 10, generator=g), torch.arange(23) % 4)


def run(out: str) -> None:
    explain_dataset(toy_model(), toy_dataset(), "gradcam", "2", out=out, shard_size=5, batch_size=3, progress=False)


if __name__ == "__main__":
    run(sys.argv[1])

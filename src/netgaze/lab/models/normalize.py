"""The first layer of every lab model: pictures in [0, 1] -> normalised network input."""
from __future__ import annotations

from typing import Sequence

import torch
import torch.nn as nn

from netgaze.errors import ArgumentError


class Normalize(nn.Module):
    """``(x - mean) / std`` per channel, with mean and std stored as buffers.

    Args:
        mean: per-channel mean of the training pictures (values in [0, 1]).
        std: per-channel standard deviation.
        out_channels: channels the network after this layer expects. A 1-channel input
            (digits, MNIST) is repeated to 3 channels for ImageNet-style backbones.

    Being part of the model, the normalisation travels with its checkpoint: every
    explanation works on pictures in [0, 1] with nothing to remember.
    """

    def __init__(self, mean: Sequence[float], std: Sequence[float], out_channels: int | None = None):
        super().__init__()
        if len(mean) != len(std):
            raise ArgumentError(f"mean has {len(mean)} channels but std has {len(std)}")
        if any(s <= 0 for s in std):
            raise ArgumentError(f"std must be positive, got {list(std)}")
        self.register_buffer("mean", torch.tensor(list(mean), dtype=torch.float32).view(1, -1, 1, 1))
        self.register_buffer("std", torch.tensor(list(std), dtype=torch.float32).view(1, -1, 1, 1))
        self.in_channels = len(mean)
        self.out_channels = out_channels or len(mean)
        if self.out_channels != self.in_channels and self.in_channels != 1:
            raise ArgumentError(f"cannot map {self.in_channels} input channels to {self.out_channels}")

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if x.shape[1] != self.in_channels:
            raise ArgumentError(f"the model expects pictures with {self.in_channels} channel(s), got {x.shape[1]}")
        x = (x - self.mean) / self.std
        if self.out_channels != self.in_channels:
            x = x.expand(-1, self.out_channels, -1, -1)
        return x

    def extra_repr(self) -> str:
        return f"channels={self.in_channels}->{self.out_channels}"


def default_stats(in_channels: int) -> tuple[list[float], list[float]]:
    """Mean 0.5 / std 0.25 per channel: a neutral default when no dataset statistics are given."""
    return [0.5] * in_channels, [0.25] * in_channels


IMAGENET_MEAN = (0.485, 0.456, 0.406)
IMAGENET_STD = (0.229, 0.224, 0.225)

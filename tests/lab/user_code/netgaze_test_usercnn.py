"""A user's own model, in a module of their own: what RunWriter's tests train and rebuild by import path.

Tests put this folder on ``sys.path`` / ``PYTHONPATH`` (as a user's package would be installed)
and name the class ``netgaze_test_usercnn:SmallCNN``.
"""
from __future__ import annotations

import torch
import torch.nn as nn


class SmallCNN(nn.Module):
    """Two convs, global average pooling, a linear head: 1-channel 8x8 pictures, ``classes`` outputs."""

    def __init__(self, width: int = 4, classes: int = 3):
        super().__init__()
        self.features = nn.Sequential(nn.Conv2d(1, width, 3, padding=1), nn.ReLU(),
                                      nn.Conv2d(width, width, 3, padding=1), nn.ReLU())
        self.head = nn.Linear(width, classes)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.head(self.features(x).mean(dim=(2, 3)))


class DictCNN(SmallCNN):
    """The same network returning a dict without a ``logits`` entry: explained through ``--output scores``."""

    def forward(self, x: torch.Tensor) -> dict[str, torch.Tensor]:
        pooled = self.features(x).mean(dim=(2, 3))
        return {"embedding": pooled, "scores": self.head(pooled)}


def make_small_cnn(width: int = 4, classes: int = 3) -> nn.Module:
    """The same model from a function (a builder that is not a class)."""
    return SmallCNN(width, classes)


def not_a_model(width: int = 4) -> int:
    """A function that returns no module: refused."""
    return width

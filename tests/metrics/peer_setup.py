"""Shared tiny model and inputs of the metric parity tests (test_metric_peers_*.py)."""
from __future__ import annotations

import numpy as np
import torch
import torch.nn as nn

REL = 1e-5


class Tiny(nn.Module):
    def __init__(self, channels: int = 1, classes: int = 4):
        super().__init__()
        torch.manual_seed(0)
        self.features = nn.Sequential(nn.Conv2d(channels, 6, 3, padding=1), nn.ReLU(),
                                      nn.Conv2d(6, 8, 3, padding=1, stride=2), nn.ReLU())
        self.pool = nn.AdaptiveAvgPool2d(1)
        self.fc = nn.Linear(8, classes)

    def forward(self, x):
        return self.fc(torch.flatten(self.pool(self.features(x)), 1))


def setup(channels: int = 1, n: int = 3, size: int = 10, seed: int = 1, linear: float = 0.0):
    model = Tiny(channels).eval()
    if linear:  # a linear model, weights times ``linear``, on inputs around 0: its top class moves with the pixels
        torch.manual_seed(0)
        model = nn.Sequential(nn.Flatten(), nn.Linear(channels * size * size, 4)).eval()
        with torch.no_grad():
            model[1].weight.mul_(linear)
    g = torch.Generator().manual_seed(seed)
    x = torch.rand(n, channels, size, size, generator=g) - (0.5 if linear else 0.0)
    maps = torch.rand(n, size, size, generator=g)  # distinct values: no ties for the sorts to break
    classes = model(x).argmax(1)
    return model, x, maps, classes


def close(ours, theirs, rel=REL):
    ours, theirs = np.asarray(ours, dtype=np.float64), np.asarray(theirs, dtype=np.float64)
    np.testing.assert_allclose(ours, theirs, rtol=rel, atol=1e-7)



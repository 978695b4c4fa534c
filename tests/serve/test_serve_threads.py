"""Without --threads a worker takes one PyTorch thread for small models and PyTorch's default for big ones."""
from __future__ import annotations

import time
from types import SimpleNamespace

import torch
import torch.nn as nn

from netgaze.serve.threads import SMALL_FORWARD_MS, choose_threads


class Slow(nn.Module):
    def forward(self, x):
        time.sleep(2 * SMALL_FORWARD_MS / 1000)
        return x.mean(dim=(2, 3))


def _source(model):
    return SimpleNamespace(model=model.eval(), channels=3, size=(16, 16))


def test_small_models_get_one_thread_and_big_ones_keep_pytorchs():
    before = torch.get_num_threads()
    try:
        torch.set_num_threads(2)
        small = nn.Sequential(nn.Conv2d(3, 4, 3), nn.AdaptiveAvgPool2d(1), nn.Flatten(), nn.Linear(4, 2))
        assert choose_threads([_source(small)]) == 1 and torch.get_num_threads() == 1
        torch.set_num_threads(2)
        assert choose_threads([_source(small), _source(Slow())]) is None and torch.get_num_threads() == 2
    finally:
        torch.set_num_threads(before)

"""Toy models with hand-set weights whose explanations are computed by hand in the tests."""
from __future__ import annotations

import torch
import torch.nn as nn


def set_conv1x1(conv: nn.Conv2d, weights: list[list[float]]) -> nn.Conv2d:
    with torch.no_grad():
        conv.weight.copy_(torch.tensor(weights, dtype=torch.float32)[:, :, None, None])
        if conv.bias is not None:
            conv.bias.zero_()
    return conv


def gap_classifier() -> nn.Sequential:
    """x [B,1,2,2] -> conv1x1 (A1 = x, A2 = -x) -> global average pool -> linear [[2, 3], [1, -1]]."""
    conv = set_conv1x1(nn.Conv2d(1, 2, 1), [[1.0], [-1.0]])
    head = nn.Linear(2, 2, bias=False)
    with torch.no_grad():
        head.weight.copy_(torch.tensor([[2.0, 3.0], [1.0, -1.0]]))
    return nn.Sequential(conv, nn.AdaptiveAvgPool2d(1), nn.Flatten(), head)


def relu_net(inplace: bool = False, activation: nn.Module | None = None) -> nn.Sequential:
    """x [B,1,1,2] -> conv1x1 [1, -1] -> ReLU -> conv1x1 [2, -3] -> mean -> one logit."""
    first = set_conv1x1(nn.Conv2d(1, 2, 1), [[1.0], [-1.0]])
    second = set_conv1x1(nn.Conv2d(2, 1, 1), [[2.0, -3.0]])
    act = activation if activation is not None else nn.ReLU(inplace=inplace)
    return nn.Sequential(first, act, second, nn.AdaptiveAvgPool2d(1), nn.Flatten())


def scaled_image_model(scale: float = 2.0) -> nn.Module:
    """A dense 'reconstruction' [B,1,H,W] = scale * x through a 1x1 conv."""
    return set_conv1x1(nn.Conv2d(1, 1, 1), [[scale]])


class TwoHeads(nn.Module):
    """Returns (reconstruction, latent) like a VAE: recon = conv(x), latent = mean over space."""

    def __init__(self):
        super().__init__()
        self.encoder = set_conv1x1(nn.Conv2d(1, 2, 1), [[1.0], [3.0]])

    def forward(self, x):
        features = self.encoder(x)
        return features, features.mean(dim=(2, 3))


class SharedTwice(nn.Module):
    """Runs the same conv twice in one forward pass."""

    def __init__(self):
        super().__init__()
        self.conv = nn.Conv2d(3, 3, 3, padding=1)
        self.head = nn.Linear(3, 4)

    def forward(self, x):
        return self.head(self.conv(self.conv(x)).mean(dim=(2, 3)))

"""Confidence change, average drop and increase in confidence (Chattopadhay et al. 2018,
Grad-CAM++), as torchcam's ``ClassificationMetric`` and pytorch-grad-cam's
``CamMultImageConfidenceChange`` compute them: the image is multiplied by its map
(min-max normalised to [0, 1]) and the target's score is compared with the clean image's.
"""
from __future__ import annotations

from dataclasses import dataclass

import torch
import torch.nn as nn

from netgaze.core.recorder import OutputSelector
from netgaze.core.targets import TargetLike
from netgaze.methods.templates import check_image_batch, fixed_target
from netgaze.metrics.scoring import check_maps, minmax, score_rows

DROP_EPS = 1e-7  # torchcam's: drop = relu(before - after) / (before + 1e-7)


@dataclass
class ConfidenceResult:
    """Scores [N] on the clean image (``before``) and on the image times its map (``after``)."""

    before: torch.Tensor
    after: torch.Tensor

    @property
    def change(self) -> torch.Tensor:
        """[N] after - before (pytorch-grad-cam's confidence change)."""
        return self.after - self.before

    @property
    def drop(self) -> torch.Tensor:
        """[N] ``max(0, before - after) / (before + 1e-7)`` (torchcam); a fraction, not a percentage."""
        return torch.relu(self.before - self.after) / (self.before + DROP_EPS)

    @property
    def increase(self) -> torch.Tensor:
        """[N] whether the score rose (strictly)."""
        return self.before < self.after

    @property
    def average_drop(self) -> float:
        return float(self.drop.mean())

    @property
    def increase_rate(self) -> float:
        return float(self.increase.float().mean())


def confidence_change(model: nn.Module, x: torch.Tensor, maps: torch.Tensor, target: TargetLike = None, *,
                      normalise: bool = True, score: str = "probability", batch_size: int = 128,
                      output: OutputSelector = None) -> ConfidenceResult:
    """The target's score on ``x`` and on ``x * map`` (one forward pass of each, batched).

    Args:
        maps: [N, H, W] at the input size.
        normalise: min-max normalise each map first, ``(m - min) / (max - min + 1e-8)``
            (torchcam's CAM normalisation; pytorch-grad-cam's maps arrive normalised alike,
            with 1e-7). False multiplies by the maps as given.
        score: ``"probability"`` (softmax, torchcam's usual ``logits_fn``) or ``"raw"``.
    """
    check_image_batch(x)
    maps = check_maps(x, maps)
    if normalise:
        maps = minmax(maps)
    n = x.shape[0]
    target = fixed_target(model, x, target, output)
    index = torch.arange(n)
    before, _ = score_rows(model, n, lambda lo, hi: x[lo:hi], index, target, score=score,
                           batch_size=batch_size, output=output)
    after, _ = score_rows(model, n, lambda lo, hi: x[lo:hi] * maps[lo:hi, None].to(x.dtype), index, target,
                          score=score, batch_size=batch_size, output=output)
    return ConfidenceResult(before=before, after=after)


def average_drop(model: nn.Module, x: torch.Tensor, maps: torch.Tensor, target: TargetLike = None, *,
                 score: str = "probability", batch_size: int = 128, output: OutputSelector = None) -> float:
    """Mean of ``max(0, before - after) / before`` (lower = better); see ``confidence_change``."""
    return confidence_change(model, x, maps, target, score=score, batch_size=batch_size, output=output).average_drop


def average_increase(model: nn.Module, x: torch.Tensor, maps: torch.Tensor, target: TargetLike = None, *,
                     score: str = "probability", batch_size: int = 128, output: OutputSelector = None) -> float:
    """Share of images whose score rises on ``x * map`` (higher = better); see ``confidence_change``."""
    return confidence_change(model, x, maps, target, score=score, batch_size=batch_size, output=output).increase_rate

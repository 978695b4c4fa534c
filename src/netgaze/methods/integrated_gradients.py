"""Integrated Gradients (Sundararajan et al. 2017)."""
from __future__ import annotations

import torch
import torch.nn as nn

from netgaze.errors import ArgumentError
from netgaze.methods.base import check_image_batch, fixed_target
from netgaze.methods.saliency import input_gradient
from netgaze.recorder import OutputSelector
from netgaze.targets import TargetLike


def integrated_gradients(model: nn.Module, x: torch.Tensor, target: TargetLike = None, *,
                         baseline: torch.Tensor | float = 0.0, steps: int = 50, batch_size: int = 64,
                         output: OutputSelector = None) -> torch.Tensor:
    """Attributions [B, C, H, W] whose sum approximates ``score(x) - score(baseline)``.

    The path integral uses the midpoint rule over ``steps`` points; path points of all
    samples are stacked on the batch axis, ``batch_size`` rows per pass.
    """
    check_image_batch(x)
    if steps < 1:
        raise ArgumentError(f"steps must be >= 1, got {steps}")
    target = fixed_target(model, x, target, output)
    base = torch.as_tensor(baseline, dtype=x.dtype, device=x.device).expand_as(x)
    delta = x - base
    alphas = (torch.arange(steps, dtype=x.dtype, device=x.device) + 0.5) / steps
    per_call = max(1, batch_size // x.shape[0])
    total = torch.zeros_like(x)
    for start in range(0, steps, per_call):
        a = alphas[start:start + per_call]
        points = (base[None] + a.view(-1, 1, 1, 1, 1) * delta[None]).flatten(0, 1)
        grads = input_gradient(model, points, target.repeat(len(a)), output=output)
        total += grads.view(len(a), *x.shape).sum(0)
    return delta * total / steps

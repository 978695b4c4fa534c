"""SmoothGrad (Smilkov et al. 2017): average a gradient method over noisy copies."""
from __future__ import annotations

from typing import Callable

import torch
import torch.nn as nn

from netgaze.errors import ArgumentError
from netgaze.methods.base import check_image_batch, fixed_target
from netgaze.methods.saliency import saliency
from netgaze.recorder import OutputSelector
from netgaze.targets import TargetLike


def smoothgrad(model: nn.Module, x: torch.Tensor, target: TargetLike = None, *,
               method: Callable[..., torch.Tensor] = saliency, n: int = 25, sigma: float = 0.15,
               squared: bool = False, batch_size: int = 64, random_state: int | None = 0,
               output: OutputSelector = None) -> torch.Tensor:
    """Mean of ``method`` over ``n`` noisy copies of each sample.

    Args:
        method: any ``(model, x, target=..., output=...)`` method, e.g. ``saliency``,
            ``guided_backprop`` or ``functools.partial(gradcam, layer="layer4")``.
        sigma: noise standard deviation as a share of each sample's value range.
        squared: average the squared attributions (SmoothGrad-Squared).
        batch_size: rows per call of ``method``; noisy copies are stacked on the batch axis.
        random_state: seed of the noise (None: torch's global generator).

    The target is fixed on the clean input first, so noise never changes the explained
    class.
    """
    check_image_batch(x)
    if n < 1:
        raise ArgumentError(f"n must be >= 1, got {n}")
    target = fixed_target(model, x, target, output)
    generator = None if random_state is None else torch.Generator(device=x.device).manual_seed(random_state)
    low = x.flatten(1).amin(1).view(-1, 1, 1, 1)
    high = x.flatten(1).amax(1).view(-1, 1, 1, 1)
    std = sigma * (high - low)
    copies_per_call = max(1, batch_size // x.shape[0])
    total = None
    done = 0
    while done < n:
        m = min(copies_per_call, n - done)
        # One draw per copy, so the noise does not depend on batch_size.
        noise = torch.cat([torch.randn(x.shape, generator=generator, device=x.device, dtype=x.dtype)
                           for _ in range(m)])
        noisy = x.repeat(m, 1, 1, 1) + noise * std.repeat(m, 1, 1, 1)
        attributions = method(model, noisy, target=target.repeat(m), output=output)
        attributions = attributions.pow(2) if squared else attributions
        chunk = attributions.view(m, x.shape[0], *attributions.shape[1:]).sum(0)
        total = chunk if total is None else total + chunk
        done += m
    return total / n

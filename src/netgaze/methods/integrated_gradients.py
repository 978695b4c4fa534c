"""Integrated Gradients (Sundararajan et al. 2017)."""
from __future__ import annotations

import torch
import torch.nn as nn

from netgaze.errors import ArgumentError
from netgaze.core.inputs import Inputs, as_tuple, check_inputs, differentiable, from_tuple, is_multi
from netgaze.methods.templates import fixed_target
from netgaze.methods.saliency import Attribution, input_gradient
from netgaze.core.recorder import OutputSelector
from netgaze.core.targets import TargetLike

Baseline = torch.Tensor | float | tuple


def integrated_gradients(model: nn.Module, x: Inputs, target: TargetLike = None, *,
                         baseline: Baseline = 0.0, steps: int = 50, batch_size: int = 64,
                         output: OutputSelector = None) -> Attribution:
    """Attributions [B, C, H, W] whose sum approximates ``score(x) - score(baseline)``.

    The path integral uses the midpoint rule over ``steps`` points; path points of all
    samples are stacked on the batch axis, ``batch_size`` rows per pass. With several
    inputs (a tuple ``x``) every floating input walks its own path (``baseline`` is one
    value for all or a tuple, one per input), integer inputs stay fixed, and the result
    is a tuple (None for an integer input); the attributions of all inputs together sum
    to the score difference.
    """
    check_inputs(x)
    if steps < 1:
        raise ArgumentError(f"steps must be >= 1, got {steps}")
    target = fixed_target(model, x, target, output)
    parts = as_tuple(x)
    baselines = baseline if isinstance(baseline, tuple) else (baseline,) * len(parts)
    if len(baselines) != len(parts):
        raise ArgumentError(f"{len(baselines)} baselines given for {len(parts)} inputs")
    bases = [torch.as_tensor(b, dtype=t.dtype, device=t.device).expand_as(t) if differentiable(t) else None
             for b, t in zip(baselines, parts)]
    per_call = max(1, batch_size // parts[0].shape[0])
    totals = [torch.zeros_like(t) if base is not None else None for t, base in zip(parts, bases)]
    for start in range(0, steps, per_call):
        count = min(per_call, steps - start)
        points = [_path_points(t, base, start, count, steps) for t, base in zip(parts, bases)]
        grads = as_tuple(input_gradient(model, from_tuple(points, is_multi(x)), target.repeat(count),
                                        output=output))
        for i, g in enumerate(grads):
            if totals[i] is not None:
                totals[i] += g.view(count, *parts[i].shape).sum(0)
    result = [None if total is None else (t - base) * total / steps
              for t, base, total in zip(parts, bases, totals)]
    return from_tuple(result, is_multi(x))


def _path_points(t: torch.Tensor, base: torch.Tensor | None, start: int, count: int, steps: int) -> torch.Tensor:
    """Midpoints ``start .. start + count - 1`` of the path ``base -> t``, stacked on the batch axis.

    A fixed (integer) input is repeated instead.
    """
    if base is None:
        return t.repeat(count, *[1] * (t.dim() - 1))
    a = (torch.arange(start, start + count, dtype=t.dtype, device=t.device) + 0.5) / steps
    a = a.view(-1, *[1] * t.dim())
    return (base[None] + a * (t - base)[None]).flatten(0, 1)

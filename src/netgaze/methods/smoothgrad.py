"""SmoothGrad (Smilkov et al. 2017): average a gradient method over noisy copies."""
from __future__ import annotations

from typing import Callable

import torch
import torch.nn as nn

from netgaze.errors import ArgumentError
from netgaze.core.inputs import Inputs, as_tuple, check_inputs, differentiable, from_tuple, is_multi, repeat
from netgaze.methods.templates import fixed_target
from netgaze.methods.saliency import Attribution, saliency
from netgaze.core.recorder import OutputSelector
from netgaze.core.targets import TargetLike


def smoothgrad(model: nn.Module, x: Inputs, target: TargetLike = None, *,
               method: Callable[..., torch.Tensor] = saliency, n: int = 25, sigma: float = 0.15,
               squared: bool = False, kind: str = "smoothgrad", batch_size: int = 64,
               random_state: int | None = 0, output: OutputSelector = None) -> Attribution:
    """Mean of ``method`` over ``n`` noisy copies of each sample (or of its square, or its variance).

    Args:
        method: any ``(model, x, target=..., output=...)`` method, e.g. ``saliency``,
            ``guided_backprop`` or ``functools.partial(gradcam, layer="layer4")``.
        sigma: noise standard deviation as a share of each sample's value range.
        squared: average the squared attributions (the same as ``kind="smoothgrad_sq"``).
        kind: ``"smoothgrad"`` (mean), ``"smoothgrad_sq"`` (mean of squares, SmoothGrad²) or
            ``"vargrad"`` (variance over the copies, ``mean(a^2) - mean(a)^2``, as Captum's
            NoiseTunnel computes it; Adebayo et al. 2018).
        batch_size: rows per call of ``method``; noisy copies are stacked on the batch axis.
        random_state: seed of the noise (None: torch's global generator).

    The target is fixed on the clean input first, so noise never changes the explained
    class. With several inputs (a tuple ``x``) every floating input gets its own noise
    (scaled to its own range) and the result is a tuple, one attribution per input.
    """
    check_inputs(x)
    if kind not in KINDS:
        raise ArgumentError(f"kind={kind!r} is not one of {', '.join(KINDS)}")
    if squared:
        if kind == "vargrad":
            raise ArgumentError("squared=True is kind='smoothgrad_sq'; it does not combine with kind='vargrad'")
        kind = "smoothgrad_sq"
    if n < 1:
        raise ArgumentError(f"n must be >= 1, got {n}")
    target = fixed_target(model, x, target, output)
    rows = as_tuple(x)[0].shape[0]
    parts = as_tuple(x)
    generator = None if random_state is None else torch.Generator(device=parts[0].device).manual_seed(random_state)
    stds = [sigma * _value_range(t) if differentiable(t) else None for t in parts]
    copies_per_call = max(1, batch_size // rows)
    total: list | None = None
    total_sq: list | None = None
    done = 0
    while done < n:
        m = min(copies_per_call, n - done)
        # One draw per copy and input, so the noise does not depend on batch_size.
        noises = [[torch.randn(t.shape, generator=generator, device=t.device, dtype=t.dtype)
                   if differentiable(t) else None for t in parts] for _ in range(m)]
        noisy = [torch.cat([t + noise[i] * stds[i] for noise in noises]) if stds[i] is not None
                 else as_tuple(repeat(t, m))[0] for i, t in enumerate(parts)]
        result = as_tuple(method(model, from_tuple(noisy, is_multi(x)), target=target.repeat(m), output=output))
        chunks = [None if a is None else (a.pow(2) if kind == "smoothgrad_sq" else a).view(m, rows, *a.shape[1:]).sum(0)
                  for a in result]
        total = chunks if total is None else [None if t is None else t + c for t, c in zip(total, chunks)]
        if kind == "vargrad":
            squares = [None if a is None else a.pow(2).view(m, rows, *a.shape[1:]).sum(0) for a in result]
            total_sq = squares if total_sq is None else [None if t is None else t + c
                                                         for t, c in zip(total_sq, squares)]
        done += m
    if kind == "vargrad":
        return from_tuple([None if t is None else s / n - (t / n).pow(2) for t, s in zip(total, total_sq)],
                          is_multi(x))
    return from_tuple([None if t is None else t / n for t in total], is_multi(x))


KINDS = ("smoothgrad", "smoothgrad_sq", "vargrad")


def _value_range(t: torch.Tensor) -> torch.Tensor:
    """Each sample's max - min, shaped to broadcast over the sample."""
    flat = t.flatten(1) if t.dim() > 1 else t[:, None]
    span = flat.amax(1) - flat.amin(1)
    return span.view(-1, *[1] * (t.dim() - 1))

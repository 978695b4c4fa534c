"""GradientSHAP (Lundberg & Lee 2017): gradients at random points between the picture and random baselines."""
from __future__ import annotations

import torch
import torch.nn as nn

from netgaze.core.recorder import OutputSelector
from netgaze.core.targets import TargetLike
from netgaze.errors import ArgumentError
from netgaze.methods.saliency import input_gradient
from netgaze.methods.templates import check_image_batch, fixed_target


def draws(rows: int, n: int, count: int, generator: torch.Generator | None) -> tuple[torch.Tensor, torch.Tensor]:
    """``(baseline indices [rows, n], alphas [rows, n])``: uniform picks and uniform(0, 1) points."""
    return (torch.randint(count, (rows, n), generator=generator), torch.rand(rows, n, generator=generator))


def gradient_shap(model: nn.Module, x: torch.Tensor, target: TargetLike = None, *,
                  baselines: float | torch.Tensor = 0.0, n: int = 50, stdev: float = 0.0, seed: int | None = 0,
                  generator: torch.Generator | None = None, batch_size: int = 64,
                  output: OutputSelector = None) -> torch.Tensor:
    """GradientSHAP attributions [B, C, H, W] (Captum's GradientShap).

    For each picture, ``n`` draws of a baseline ``b`` (uniformly from ``baselines``), a point
    ``a ~ U(0, 1)`` and noise ``e ~ N(0, stdev^2)``; the attribution is the mean of
    ``(x + e - b) * gradient at a (x + e) + (1 - a) b``. In expectation its sum is
    ``score(x) - mean score(baselines)`` (exactly for a linear model).

    Args:
        baselines: a number, one picture [C, H, W] or pictures [N, C, H, W] to draw from.
        n: draws per picture.
        stdev: standard deviation of the noise, in the picture's units (Captum's ``stdevs``).
        seed, generator: the (CPU) random stream of the draws; None and None: torch's global one.
        batch_size: rows per gradient pass.

    The target is fixed on the clean picture. One picture batch only.
    """
    if isinstance(x, tuple):
        raise ArgumentError("gradient_shap takes one picture batch [B, C, H, W], not a tuple of inputs")
    check_image_batch(x)
    if n < 1 or stdev < 0 or batch_size < 1:
        raise ArgumentError(f"gradient_shap needs n >= 1, stdev >= 0 and batch_size >= 1; got {n}, {stdev}, "
                            f"{batch_size}")
    refs = torch.as_tensor(baselines, dtype=x.dtype, device=x.device)
    if refs.dim() < 4:
        try:
            refs = refs.expand(x.shape[1:])[None]
        except RuntimeError as err:
            raise ArgumentError(f"baselines of shape {tuple(refs.shape)} do not broadcast to a picture "
                                f"{tuple(x.shape[1:])}") from err
    if refs.dim() != 4 or refs.shape[1:] != x.shape[1:]:
        raise ArgumentError(f"baselines must be a number, [C, H, W] or [N, C, H, W] for pictures {tuple(x.shape)}, "
                            f"got {tuple(refs.shape)}")
    if generator is None and seed is not None:
        generator = torch.Generator().manual_seed(seed)
    target = fixed_target(model, x, target, output)
    rows = len(x)
    picks, alphas = draws(rows, n, len(refs), generator)
    picks, alphas = picks.to(x.device), alphas.to(device=x.device, dtype=x.dtype)
    total = torch.zeros_like(x)
    per_call = max(1, batch_size // rows)
    for start in range(0, n, per_call):                 # draws start .. start + k - 1 of every picture
        k = min(per_call, n - start)
        noisy = x.repeat(k, 1, 1, 1)
        if stdev > 0:
            noisy = noisy + stdev * torch.randn(noisy.shape, generator=generator).to(x.device, x.dtype)
        base = refs[picks[:, start:start + k].T.reshape(-1)]
        a = alphas[:, start:start + k].T.reshape(-1, 1, 1, 1)
        grads = input_gradient(model, a * noisy + (1 - a) * base, target.repeat(k), output=output)
        total += ((noisy - base) * grads).view(k, *x.shape).sum(0)
    return total / n

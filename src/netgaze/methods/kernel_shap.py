"""KernelSHAP (Lundberg & Lee 2017): Shapley values of superpixels from a weighted linear fit."""
from __future__ import annotations

import itertools
import math

import torch
import torch.nn as nn

from netgaze.core.recorder import OutputSelector
from netgaze.core.targets import TargetLike
from netgaze.errors import ArgumentError
from netgaze.methods.coalitions import baseline_like, clean_pass, coalition_scores, rows_per_pass
from netgaze.methods.feature_masks import pictures, resolve_masks, spread
from netgaze.methods.surrogate import weighted_least_squares

END_WEIGHT = 1e6        # Captum's stand-in for the infinite weight of the empty and the full coalition


def shapley_coalitions(count: int, n: int, generator: torch.Generator | None,
                       device: torch.device | str = "cpu") -> tuple[torch.Tensor, torch.Tensor]:
    """``(coalitions [m, F], weights [m])``: every coalition weighted by the Shapley kernel when
    ``n >= 2^F`` (the fit is then the exact Shapley values), else ``n`` coalitions as Captum draws
    them (all, none, then sizes k with probability proportional to ``(F-1) / (k (F-k))`` and a
    uniform subset of that size), each weighted 1."""
    if count <= 62 and 2 ** count <= n:
        z = torch.tensor(list(itertools.product((0, 1), repeat=count)), dtype=torch.long, device=device)
        k = z.sum(1)
        inner = (k > 0) & (k < count)
        weights = torch.full((len(z),), END_WEIGHT, dtype=torch.float64, device=device)
        sizes = k[inner].double()
        combinations = torch.tensor([math.comb(count, int(s)) for s in k[inner]], dtype=torch.float64, device=device)
        weights[inner] = (count - 1) / (combinations * sizes * (count - sizes))
        return z, weights
    ends = torch.stack([torch.ones(count, dtype=torch.long), torch.zeros(count, dtype=torch.long)]).to(device)
    drawn = n - 2                       # n >= 2, and count >= 2 here (one feature is enumerated)
    sizes = torch.arange(1, count, dtype=torch.float64)
    chosen = torch.multinomial((count - 1) / (sizes * (count - sizes)), drawn, replacement=True,
                               generator=generator) + 1
    ranks = torch.rand(drawn, count, generator=generator).argsort(1).argsort(1)
    z = torch.cat([ends, (ranks < chosen[:, None]).long().to(device)])
    weights = torch.ones(len(z), dtype=torch.float64, device=device)
    weights[:2] = END_WEIGHT
    return z, weights


def kernel_shap(model: nn.Module, x: torch.Tensor, target: TargetLike = None, *,
                feature_mask: torch.Tensor | None = None, grid: int | tuple[int, int] = 8,
                baseline: float | torch.Tensor = 0.0, n: int = 1000, seed: int | None = 0,
                generator: torch.Generator | None = None, coalitions: torch.Tensor | None = None,
                batch_size: int | None = None, output: OutputSelector = None) -> torch.Tensor:
    """KernelSHAP attributions [B, C, H, W]: each feature's coefficient on all its elements.

    Args:
        feature_mask, grid, baseline, batch_size: as in ``feature_ablation``.
        n: coalitions scored per picture (the empty and the full one included). With
            ``n >= 2^F`` every coalition is scored once and weighted by the Shapley kernel:
            the result is then the exact Shapley value of every feature.
        seed: seed of the coalitions when no ``generator`` is given (None: torch's global generator).
        generator: the (CPU) random generator to draw from (takes precedence over ``seed``).
        coalitions: your own coalitions [m, F] of 0/1 (1: the feature keeps its value), each
            weighted 1 except the empty and the full one (``END_WEIGHT``), as Captum weighs its
            samples; overrides ``n``.

    The fit is Captum's: weighted least squares with an intercept, the empty and the full
    coalition weighted 1e6 instead of infinitely, so the attributions sum to
    ``score(x) - score(baseline)`` up to that approximation. The same coalitions serve every
    picture that shares a feature mask, so a batch equals its pictures one by one; the target
    is fixed on the clean picture. One picture batch only.
    """
    if n < 2:
        raise ArgumentError(f"n must be >= 2 (the empty and the full coalition), got {n}")
    if generator is None and seed is not None:
        generator = torch.Generator().manual_seed(seed)
    target, _, per_row = clean_pass(model, x, target, output, "kernel_shap")
    rows = rows_per_pass(x, per_row, batch_size)
    base = baseline_like(x, baseline)
    result = torch.empty_like(x)
    for index, ids, count in resolve_masks(x, feature_mask, grid):
        if coalitions is None:
            z, weights = shapley_coalitions(count, n, generator, x.device)
        else:
            z = check_coalitions(coalitions, count, x.device)
            weights = torch.where((z.sum(1) == 0) | (z.sum(1) == count), END_WEIGHT, 1.0).double()
        scores, _ = coalition_scores(model, pictures(x, index), target if index is None else target.sample(index),
                                     ids, z, pictures(base, index), rows=rows, output=output)
        values = weighted_least_squares(z, scores, weights).to(x.dtype)
        part = slice(None) if index is None else slice(index, index + 1)
        result[part] = spread(values, ids, x[part].shape)
    return result


def check_coalitions(coalitions: torch.Tensor, count: int, device: torch.device) -> torch.Tensor:
    """User coalitions as a long tensor [m, F] of 0/1, or a one-line error."""
    z = torch.as_tensor(coalitions, device=device)
    if z.dim() != 2 or z.shape[1] != count or len(z) == 0 or not bool(((z == 0) | (z == 1)).all()):
        raise ArgumentError(f"coalitions must be 0/1 of shape [m, {count}] (one column per feature), "
                            f"got shape {tuple(z.shape)}")
    return z.long()

"""How concentrated a map is: sparseness (Chalasani et al. 2020) and complexity (Bhatt et al. 2020).

Both take the absolute value of the map first, as Quantus' ``Sparseness`` and ``Complexity``
do (its default division by the maximum cancels here), so the sign carries no weight.
"""
from __future__ import annotations

import torch

from netgaze.metrics.pointing import _check_maps


def sparseness(maps: torch.Tensor, eps: float = 0.0) -> torch.Tensor:
    """Gini index [N] of each map's absolute values: 1 - 1/n for a one-hot map of n pixels, 0 for a flat one.

    ``G = sum_i (2i - n - 1) a_(i) / (n * sum_i a_(i))`` with ``a`` sorted ascending. An
    all-zero map scores 0. ``eps`` is added to every value first: Quantus adds 1e-7 after
    dividing by the maximum, so ``sparseness(m / m.abs().amax((1, 2), keepdim=True), eps=1e-7)``
    equals ``quantus.Sparseness()`` (higher = sparser).
    """
    a = _check_maps(maps).double().abs().flatten(1) + eps
    n = a.shape[1]
    a, _ = torch.sort(a, dim=1)
    weights = 2 * torch.arange(1, n + 1, dtype=a.dtype, device=a.device) - n - 1
    total = a.sum(1)
    gini = (weights * a).sum(1) / (n * torch.where(total > 0, total, torch.ones_like(total)))
    return torch.where(total > 0, gini, torch.zeros_like(gini)).float()


def complexity(maps: torch.Tensor) -> torch.Tensor:
    """Entropy [N] (natural log) of each map's fractional contribution ``|a_i| / sum |a|``.

    ``log n`` for a flat map of n pixels, 0 for a one-hot map; an all-zero map scores 0.
    Quantus adds 1e-12 inside the log (``p log(p + 1e-12)``); netgaze uses ``0 log 0 = 0``,
    a difference below 1e-10 (lower = simpler).
    """
    a = _check_maps(maps).double().abs().flatten(1)
    total = a.sum(1, keepdim=True)
    p = a / torch.where(total > 0, total, torch.ones_like(total))
    return (-torch.special.xlogy(p, p).sum(1)).float()

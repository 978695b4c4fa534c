"""LIME (Ribeiro et al. 2016): a sparse linear surrogate of the score over random superpixel coalitions."""
from __future__ import annotations

import torch
import torch.nn as nn

from netgaze.core.recorder import OutputSelector
from netgaze.core.targets import TargetLike
from netgaze.errors import ArgumentError
from netgaze.methods.coalitions import baseline_like, clean_pass, coalition_scores, rows_per_pass
from netgaze.methods.feature_masks import pictures, resolve_masks, spread
from netgaze.methods.kernel_shap import check_coalitions
from netgaze.methods.surrogate import lasso, weighted_least_squares


def lime(model: nn.Module, x: torch.Tensor, target: TargetLike = None, *,
         feature_mask: torch.Tensor | None = None, grid: int | tuple[int, int] = 8,
         baseline: float | torch.Tensor = 0.0, n: int = 1000, kernel_width: float = 1.0, alpha: float | None = None,
         seed: int | None = 0, generator: torch.Generator | None = None, coalitions: torch.Tensor | None = None,
         batch_size: int | None = None, output: OutputSelector = None) -> torch.Tensor:
    """LIME attributions [B, C, H, W]: each feature's surrogate coefficient on all its elements.

    Captum's defaults: ``n`` coalitions, each feature kept with probability 1/2; each
    perturbed picture weighted ``exp(-d^2 / (2 kernel_width^2))`` with ``d`` its cosine
    distance to the picture; a weighted ``Lasso(alpha)`` with an intercept (scikit-learn's,
    so ``alpha`` is scaled as there). ``alpha=0``: weighted least squares instead, solved
    exactly in float64 (no scikit-learn).

    ``alpha=None`` (the default) is 0.01 times the standard deviation of each picture's sampled
    scores, so the surrogate does not depend on the scale of the logits; Captum's fixed
    ``alpha=0.01`` zeroes every superpixel of a model whose scores move less than that (a
    blank map that looks like an answer). Pass ``alpha=0.01`` for Captum's numbers.

    Args:
        feature_mask, grid, baseline, batch_size: as in ``feature_ablation``.
        n: coalitions scored per picture.
        seed, generator: as in ``kernel_shap``.
        coalitions: your own coalitions [m, F] of 0/1 (1: the feature keeps its value); overrides ``n``.

    The coefficients are not Shapley values and depend on the samples; the same coalitions
    serve every picture sharing a feature mask, so a batch equals its pictures one by one.
    The target is fixed on the clean picture. One picture batch only.
    """
    if n < 1 or kernel_width <= 0 or (alpha is not None and alpha < 0):
        raise ArgumentError(f"lime needs n >= 1, kernel_width > 0 and alpha >= 0; got {n}, {kernel_width}, {alpha}")
    if generator is None and seed is not None:
        generator = torch.Generator().manual_seed(seed)
    target, _, per_row = clean_pass(model, x, target, output, "lime")
    rows = rows_per_pass(x, per_row, batch_size)
    base = baseline_like(x, baseline)
    result = torch.empty_like(x)
    for index, ids, count in resolve_masks(x, feature_mask, grid):
        if coalitions is None:
            z = (torch.rand(n, count, generator=generator) < 0.5).long().to(x.device)
        else:
            z = check_coalitions(coalitions, count, x.device)
        scores, cosine = coalition_scores(model, pictures(x, index), target if index is None else target.sample(index),
                                          ids, z, pictures(base, index), rows=rows, output=output, cosine=True)
        weights = torch.exp(-(1 - cosine.double()) ** 2 / (2 * kernel_width ** 2))
        if alpha == 0:
            values = weighted_least_squares(z, scores, weights)
        else:
            values = lasso(z, scores, weights, 0.01 if alpha is None else alpha, relative=alpha is None)
        part = slice(None) if index is None else slice(index, index + 1)
        result[part] = spread(values.to(x.dtype), ids, x[part].shape)
    return result

"""Feature ablation: the score drop when one feature (a superpixel) is set to a baseline."""
from __future__ import annotations

import torch
import torch.nn as nn

from netgaze.core.recorder import OutputSelector
from netgaze.core.targets import TargetLike
from netgaze.methods.coalitions import baseline_like, clean_pass, coalition_scores, rows_per_pass
from netgaze.methods.feature_masks import pictures, resolve_masks, spread


def feature_ablation(model: nn.Module, x: torch.Tensor, target: TargetLike = None, *,
                     feature_mask: torch.Tensor | None = None, grid: int | tuple[int, int] = 8,
                     baseline: float | torch.Tensor = 0.0, batch_size: int | None = None,
                     output: OutputSelector = None) -> torch.Tensor:
    """Attributions [B, C, H, W]: ``score(x) - score(x with feature f at the baseline)`` on every
    element of feature f (Captum's FeatureAblation).

    Args:
        feature_mask: integer feature ids [H, W] or [1 or B, 1 or C, H, W] (e.g. SLIC superpixels);
            None: a ``grid x grid`` grid of patches, the same for every picture and channel.
        grid: patches per side (or ``(rows, cols)``) when no ``feature_mask`` is given.
        baseline: a number, or a tensor broadcastable to one picture [C, H, W] or to [B, C, H, W].
        batch_size: pictures per forward pass; None: the most that fit the memory budget
            (``netgaze.methods.coalitions.rows_per_pass``).

    One picture batch only; the target is fixed on the clean picture. Features do not
    interact here: a pair's joint effect is not the sum of the two attributions.
    """
    target, clean, per_row = clean_pass(model, x, target, output, "feature_ablation")
    rows = rows_per_pass(x, per_row, batch_size)
    base = baseline_like(x, baseline)
    result = torch.empty_like(x)
    for index, ids, count in resolve_masks(x, feature_mask, grid):
        part = slice(None) if index is None else slice(index, index + 1)
        ablated = 1 - torch.eye(count, dtype=torch.long, device=x.device)   # coalition f: all but f
        scores, _ = coalition_scores(model, pictures(x, index), target if index is None else target.sample(index),
                                     ids, ablated, pictures(base, index), rows=rows, output=output)
        result[part] = spread((clean[part][None] - scores).T, ids, x[part].shape)
    return result

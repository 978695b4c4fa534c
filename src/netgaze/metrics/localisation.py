"""Relevance mass and relevance rank accuracy (Arras et al. 2022, CLEVR-XAI) against
ground-truth masks, e.g. the shapes dataset's object masks.

Both follow Quantus (``RelevanceMassAccuracy``, ``RelevanceRankAccuracy``): the map is
used as given (signed values count; Quantus' default division by the maximum cancels in
both ratios), and an empty mask gives NaN for that image.
"""
from __future__ import annotations

import torch

from netgaze.metrics.pointing import Regions, _check_maps, as_masks


def relevance_mass_accuracy(maps: torch.Tensor, regions: Regions) -> torch.Tensor:
    """Per image [N]: the map's sum inside the object divided by its total sum.

    Unlike ``energy_inside``, negative values are not clipped (take ``maps.clamp(min=0)`` or
    ``maps.abs()`` first for that), and a map summing to 0 gives NaN (0 / 0), as Quantus.

    Args:
        maps: [N, H, W].
        regions: bool masks [N, H, W] (or one [H, W]) or boxes [N, 4] ``(y0, x0, y1, x1)``.
    """
    maps = _check_maps(maps).double()
    masks = as_masks(regions, maps).flatten(1)
    flat = maps.flatten(1)
    result = (flat * masks).sum(1) / flat.sum(1)
    return torch.where(masks.any(1), result, torch.full_like(result, float("nan"))).float()


def relevance_rank_accuracy(maps: torch.Tensor, regions: Regions) -> torch.Tensor:
    """Per image [N]: with K the object's pixel count, the share of the map's K highest
    pixels that lie on the object (ties broken by position; Quantus leaves them to numpy's sort)."""
    maps = _check_maps(maps)
    masks = as_masks(regions, maps).flatten(1)
    order = torch.argsort(maps.flatten(1), dim=1, descending=True, stable=True)
    k = masks.sum(1)
    ranked = torch.gather(masks, 1, order)
    in_top = ranked & (torch.arange(masks.shape[1], device=masks.device)[None] < k[:, None])
    result = in_top.sum(1).double() / k.clamp(min=1)
    return torch.where(k > 0, result, torch.full_like(result, float("nan"))).float()

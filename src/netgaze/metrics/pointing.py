"""Pointing game and energy pointing game against ground-truth masks or boxes.

Pointing game (Zhang et al. 2016): a map scores a hit when its maximum falls inside the
object, optionally within ``tolerance`` pixels of it (the paper uses 15 px at 224 px).
Energy pointing game (Wang et al. 2020, Score-CAM): the share of the map's mass that lies
inside the object.
"""
from __future__ import annotations

from typing import Sequence, Union

import numpy as np
import torch

from netgaze.errors import ArgumentError

Box = tuple[int, int, int, int]
Regions = Union[torch.Tensor, np.ndarray, Sequence[Box]]


def boxes_to_masks(boxes: Sequence[Box] | torch.Tensor, size: Sequence[int]) -> torch.Tensor:
    """Bool masks [N, H, W] from boxes ``(y0, x0, y1, x1)``, end-exclusive like a slice."""
    h, w = int(size[0]), int(size[1])
    boxes = torch.as_tensor(boxes, dtype=torch.long).reshape(-1, 4)
    ys = torch.arange(h)[None, :, None]
    xs = torch.arange(w)[None, None, :]
    y0, x0, y1, x1 = (boxes[:, i].view(-1, 1, 1) for i in range(4))
    return (ys >= y0) & (ys < y1) & (xs >= x0) & (xs < x1)


def as_masks(regions: Regions, maps: torch.Tensor) -> torch.Tensor:
    """Ground truth as bool masks [N, H, W] on the maps' device: masks pass, boxes are drawn.

    A tensor/array of shape [N, 4] (or a list of 4-tuples) is read as boxes; anything
    with the maps' spatial size as masks (non-zero = object).
    """
    n, h, w = maps.shape
    if isinstance(regions, (list, tuple)) or (hasattr(regions, "shape") and tuple(regions.shape) == (n, 4)
                                              and (h, w) != (n, 4)):
        masks = boxes_to_masks(regions, (h, w))
    else:
        masks = torch.as_tensor(np.asarray(regions) if isinstance(regions, np.ndarray) else regions)
        masks = masks != 0
    if masks.dim() == 2:
        masks = masks.expand(n, h, w)
    if tuple(masks.shape) != (n, h, w):
        raise ArgumentError(f"ground truth of shape {tuple(masks.shape)} does not match maps of shape {(n, h, w)}; "
                            "give masks [N, H, W] or boxes [N, 4] as (y0, x0, y1, x1)")
    return masks.to(maps.device)


def _check_maps(maps: torch.Tensor) -> torch.Tensor:
    maps = torch.as_tensor(maps)
    if maps.dim() != 3:
        raise ArgumentError(f"maps must be [N, H, W], got shape {tuple(maps.shape)} "
                            "(reduce per-channel attributions first, e.g. netgaze.metrics.as_map)")
    return maps.detach().float()


def _grow(masks: torch.Tensor, tolerance: float) -> torch.Tensor:
    """Masks grown by every pixel within Euclidean ``tolerance`` pixels of the object."""
    if tolerance <= 0:
        return masks
    from scipy.ndimage import distance_transform_edt

    grown = []
    for mask in masks.cpu().numpy():
        if not mask.any():
            grown.append(mask)
            continue
        grown.append(distance_transform_edt(~mask) <= tolerance)
    return torch.from_numpy(np.stack(grown)).to(masks.device)


def pointing_hits(maps: torch.Tensor, regions: Regions, tolerance: float = 0.0) -> torch.Tensor:
    """Per-map hit scores [N] in [0, 1].

    A map hits when its maximum lies inside the object or within ``tolerance`` pixels
    (Euclidean) of it. When several pixels share the maximum, the score is the share of
    them that hit, so a flat map scores the (grown) object's area share, never 1 for free.
    """
    maps = _check_maps(maps)
    masks = _grow(as_masks(regions, maps), tolerance)
    flat = maps.flatten(1)
    is_max = flat == flat.amax(dim=1, keepdim=True)
    hits = (is_max & masks.flatten(1)).sum(1).float()
    return hits / is_max.sum(1).float()


def pointing_game(maps: torch.Tensor, regions: Regions, tolerance: float = 0.0) -> float:
    """Share of maps whose maximum falls on the object (see ``pointing_hits``).

    Args:
        maps: [N, H, W] maps (any scale; only the argmax matters).
        regions: bool masks [N, H, W] (or one [H, W] for all) or boxes [N, 4] ``(y0, x0, y1, x1)``.
        tolerance: pixels of slack around the object (0 = the maximum must be on it).
    """
    return float(pointing_hits(maps, regions, tolerance).mean())


def energy_inside(maps: torch.Tensor, regions: Regions) -> torch.Tensor:
    """Per-map share [N] of the map's mass inside the object.

    Negative values are clipped to 0 first (take ``abs`` of signed maps yourself if their
    sign carries no meaning). A map with no mass counts as flat: it scores the object's
    area share.
    """
    maps = _check_maps(maps).clamp(min=0)
    masks = as_masks(regions, maps)
    total = maps.flatten(1).sum(1)
    inside = (maps * masks).flatten(1).sum(1)
    area_share = masks.flatten(1).float().mean(1)
    return torch.where(total > 0, inside / torch.where(total > 0, total, torch.ones_like(total)), area_share)


def energy_pointing_game(maps: torch.Tensor, regions: Regions) -> float:
    """Mean share of each map's (non-negative) mass that falls inside the object."""
    return float(energy_inside(maps, regions).mean())


def centre_baseline(n: int, size: Sequence[int], device: torch.device | str | None = None) -> torch.Tensor:
    """The centre-prior maps [n, H, W] (1 at the image centre, falling linearly with distance).

    Scoring these with the pointing game gives the baseline a method must beat: how
    often the object simply covers the image centre.
    """
    h, w = int(size[0]), int(size[1])
    ys = torch.arange(h, dtype=torch.float32, device=device) - (h - 1) / 2
    xs = torch.arange(w, dtype=torch.float32, device=device) - (w - 1) / 2
    dist = (ys[:, None] ** 2 + xs[None, :] ** 2).sqrt()
    centre = 1 - dist / dist.max().clamp(min=1e-12)
    return centre.expand(n, h, w).clone()

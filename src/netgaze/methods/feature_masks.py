"""Feature masks of the superpixel methods (feature ablation, KernelSHAP, LIME): which
picture elements move together, as integer ids."""
from __future__ import annotations

import torch

from netgaze.errors import ArgumentError


def grid_mask(size: tuple[int, int], grid: int | tuple[int, int], device: torch.device | str = "cpu") -> torch.Tensor:
    """Ids [H, W] of a ``rows x cols`` grid of patches, numbered row by row from 0.

    Patch borders are ``floor(i * H / rows)``, so patches differ by at most one pixel in
    size and every pixel belongs to exactly one patch (also when H is not a multiple).
    """
    rows, cols = (grid, grid) if isinstance(grid, int) else tuple(grid)
    height, width = size
    if not (1 <= rows <= height and 1 <= cols <= width):
        raise ArgumentError(f"grid={grid} needs between 1 and the picture's {height} x {width} patches per side")
    ys = torch.arange(height, device=device) * rows // height
    xs = torch.arange(width, device=device) * cols // width
    return ys[:, None] * cols + xs[None, :]


def resolve_masks(x: torch.Tensor, feature_mask: torch.Tensor | None, grid: int | tuple[int, int]
                  ) -> list[tuple[int | None, torch.Tensor, int]]:
    """``(picture index or None for all, ids [1, C or 1, H, W] numbered 0..F-1, F)`` per group of
    pictures sharing a mask.

    ``feature_mask``: integer ids [H, W] (every picture and channel), or [1 or B, 1 or C, H, W]
    (one mask per picture and/or per channel, Captum's broadcastable form). Any integers: they
    are renumbered 0..F-1 in increasing order, so ids that already run 0..F-1 keep their number.
    None: ``grid_mask`` of ``grid``, the same patches for every picture and channel.
    """
    rows, channels, height, width = x.shape
    if feature_mask is None:
        return [(None, grid_mask((height, width), grid, x.device)[None, None], _count(grid))]
    mask = torch.as_tensor(feature_mask, device=x.device)
    if mask.is_floating_point() or mask.is_complex() or mask.dtype == torch.bool:
        raise ArgumentError(f"feature_mask holds integer feature ids, got dtype {mask.dtype}")
    if mask.dim() == 2:
        mask = mask[None, None]
    if (mask.dim() != 4 or tuple(mask.shape[-2:]) != (height, width) or mask.shape[0] not in (1, rows)
            or mask.shape[1] not in (1, channels)):
        raise ArgumentError(f"feature_mask must be [H, W] or [1 or B, 1 or C, H, W] for pictures {tuple(x.shape)}, "
                            f"got {tuple(mask.shape)}")
    groups = []
    for i in range(mask.shape[0]):
        ids, numbered = torch.unique(mask[i], return_inverse=True)
        groups.append((None if mask.shape[0] == 1 else i, numbered[None], len(ids)))
    return groups


def _count(grid: int | tuple[int, int]) -> int:
    rows, cols = (grid, grid) if isinstance(grid, int) else tuple(grid)
    return rows * cols


def pictures(x: torch.Tensor, index: int | None) -> torch.Tensor:
    """All pictures (None) or picture ``index`` as a batch of one."""
    return x if index is None else x[index:index + 1]


def spread(values: torch.Tensor, ids: torch.Tensor, shape: torch.Size) -> torch.Tensor:
    """Feature values [B, F] written on every element of their feature: [B, C, H, W]."""
    per_element = values[:, ids[0]]                     # [B, C or 1, H, W]
    return per_element.expand(shape).contiguous()

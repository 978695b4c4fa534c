"""RISE (Petsiuk et al. 2018): the score-weighted mean of random smooth masks."""
from __future__ import annotations

import math

import torch
import torch.nn as nn
import torch.nn.functional as F

from netgaze.core.detection import DetectionMatchError
from netgaze.core.recorder import OutputSelector, Recorder
from netgaze.core.targets import TargetLike
from netgaze.errors import ArgumentError
from netgaze.methods.templates import check_image_batch, fixed_target, target_scores


def rise_masks(count: int, size: tuple[int, int], grid: int, p: float, generator: torch.Generator | None,
               device: torch.device | str = "cpu", dtype: torch.dtype = torch.float32) -> torch.Tensor:
    """``count`` RISE masks [count, H, W]: a ``grid x grid`` Bernoulli(p) grid, upsampled
    bilinearly to ``(grid + 1)`` cells and cropped at a random shift within one cell."""
    height, width = size
    cell_h, cell_w = math.ceil(height / grid), math.ceil(width / grid)
    cells = (torch.rand(count, 1, grid, grid, generator=generator, device=device) < p).to(dtype)
    up = F.interpolate(cells, size=((grid + 1) * cell_h, (grid + 1) * cell_w), mode="bilinear",
                       align_corners=False).clamp(0, 1)     # rounding may step just past 1
    shifts = torch.randint(0, cell_h * cell_w, (count,), generator=generator, device=device).tolist()
    return torch.stack([up[k, 0, s // cell_w:s // cell_w + height, s % cell_w:s % cell_w + width]
                        for k, s in enumerate(shifts)])


def rise(model: nn.Module, x: torch.Tensor, target: TargetLike = None, *, n: int = 2000, grid: int = 7,
         p: float = 0.5, seed: int | None = 0, generator: torch.Generator | None = None, batch_size: int = 64,
         output: OutputSelector = None) -> torch.Tensor:
    """RISE saliency [B, 1, H, W]: ``sum_i score(x * M_i) M_i / (n p)``, not normalised.

    One map per picture, on a channel axis of one so that it reads like the input
    attributions [B, C, H, W] everywhere they go (``viz.attribution_image``, the metrics).

    Args:
        n: random masks (the paper uses 4000 to 8000 for ImageNet models).
        grid: cells per side of the small random grid.
        p: probability that a cell is kept.
        seed: seed of the masks when no ``generator`` is given (None: torch's global generator).
        generator: the random generator to draw from (takes precedence over ``seed``).
        batch_size: masked pictures per forward pass.

    The same masks serve every picture of the batch (drawn in chunks, so ``batch_size``
    does not change them), so a batch equals its pictures one by one. One picture batch
    only; the target is fixed on the clean picture.
    """
    if isinstance(x, tuple):
        raise ArgumentError("rise takes one picture batch [B, C, H, W], not a tuple of inputs")
    check_image_batch(x)
    if n < 1 or grid < 1 or not 0 < p <= 1 or batch_size < 1:
        raise ArgumentError(f"rise needs n >= 1, grid >= 1, 0 < p <= 1 and batch_size >= 1; got {n}, {grid}, {p}, "
                            f"{batch_size}")
    if generator is None and seed is not None:
        generator = torch.Generator(device=x.device).manual_seed(seed)
    rows = x.shape[0]
    target = fixed_target(model, x, target, output)
    total = torch.zeros(rows, *x.shape[-2:], dtype=x.dtype, device=x.device)
    draw = 256                       # masks drawn per chunk: the same stream whatever batch_size is
    per_call = max(1, batch_size // rows)
    with Recorder(model, [], output=output, grads=False) as plain:
        for start in range(0, n, draw):
            masks = rise_masks(min(draw, n - start), tuple(x.shape[-2:]), grid, p, generator, x.device, x.dtype)
            for part in masks.split(per_call):
                masked = (x[None] * part[:, None, None]).flatten(0, 1)
                try:
                    scores = target_scores(target.repeat(len(part)), plain.forward(masked), len(masked))
                    if scores.dim() != 1:
                        raise ArgumentError("rise explains one score per sample; use TopClass(1) or Class(...)")
                    scores = scores.view(len(part), rows)
                except DetectionMatchError:
                    scores = torch.zeros(len(part), rows, dtype=x.dtype, device=x.device)
                total += torch.einsum("kb,khw->bhw", scores, part)
    return (total / (n * p))[:, None]


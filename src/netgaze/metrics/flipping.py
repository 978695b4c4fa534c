"""Pixel flipping (Bach et al. 2015) and IROF (Rieger & Hansen 2020): remove pixels or
segments in order of importance, cumulatively, and follow the target's score.

Both follow Quantus' definitions (``PixelFlipping``, ``IROF``); where the baseline
differs the docstrings say so. Every step of every image is one row of a batched stream.
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch
import torch.nn as nn

from netgaze.errors import ArgumentError
from netgaze.core.recorder import OutputSelector
from netgaze.core.targets import TargetLike
from netgaze.methods.templates import check_image_batch, fixed_target
from netgaze.metrics.deletion import BaselineLike, make_baseline, pixel_order
from netgaze.metrics.scoring import check_maps, score_rows


@dataclass
class FlipCurve:
    """Scores after each removal step.

    Attributes:
        scores: [N, S] the target's score after step 1..S (pixel flipping), or that score
            divided by the clean image's (IROF); NaN past an image's own last segment.
        auc: [N] trapezoid area under ``scores`` with unit spacing (pixel flipping), or
            the area over it, ``S_i - area`` (IROF, Quantus' value).
        steps: [N] number of steps of each image.
    """

    scores: torch.Tensor
    auc: torch.Tensor
    steps: torch.Tensor

    @property
    def mean_auc(self) -> float:
        return float(self.auc.mean())

    @property
    def normalised(self) -> torch.Tensor:
        """[N] ``auc / steps``: comparable across image sizes and segment counts."""
        return self.auc / self.steps


def _baseline(x: torch.Tensor, baseline: BaselineLike) -> torch.Tensor:
    if isinstance(baseline, str) and baseline in ("black", "mean"):
        flat = x.flatten(1)
        value = flat.amin(1) if baseline == "black" else flat.mean(1)
        return value.view(-1, 1, 1, 1).expand_as(x)
    return make_baseline(x, baseline)


def pixel_flipping(model: nn.Module, x: torch.Tensor, maps: torch.Tensor, target: TargetLike = None, *,
                   pixels_per_step: int = 1, baseline: BaselineLike = "black", score: str = "probability",
                   batch_size: int = 128, output: OutputSelector = None) -> FlipCurve:
    """Pixel flipping: replace the most important pixels first, ``pixels_per_step`` at a time.

    Convention (Quantus ``PixelFlipping``): the curve holds the score after each of the
    ``ceil(H * W / pixels_per_step)`` steps (not the clean image), its area uses unit
    spacing (``np.trapz(dx=1)``); ``baseline="black"`` is each image's minimum over all
    channels and pixels. Quantus counts channel values, netgaze pixels (all channels
    together): Quantus' ``features_in_step = C * pixels_per_step`` gives the same curve.
    Lower area = more faithful.

    Args:
        maps: importance [N, H, W] (ties broken by position).
        baseline: ``"black"``, ``"mean"`` (each image's mean), or anything ``make_baseline`` takes.
        score: ``"probability"`` (softmax) or ``"raw"``.
    """
    check_image_batch(x)
    if pixels_per_step < 1:
        raise ArgumentError(f"pixels_per_step must be >= 1, got {pixels_per_step}")
    maps = check_maps(x, maps)
    n, _, h, w = x.shape
    target = fixed_target(model, x, target, output)
    base = _baseline(x, baseline)
    ranks = pixel_order(maps).view(n, 1, h, w)
    steps = -(-h * w // pixels_per_step)
    counts = torch.clamp(torch.arange(1, steps + 1, device=x.device) * pixels_per_step, max=h * w)
    image_of_row = torch.arange(n, device=x.device).repeat_interleave(steps)
    count_of_row = counts.repeat(n)

    def build(lo: int, hi: int) -> torch.Tensor:
        idx = image_of_row[lo:hi]
        return torch.where(ranks[idx] < count_of_row[lo:hi].view(-1, 1, 1, 1), base[idx], x[idx])

    scores, _ = score_rows(model, n * steps, build, image_of_row, target, score=score, batch_size=batch_size,
                           output=output)
    scores = scores.view(n, steps)
    auc = torch.trapezoid(scores.double(), dx=1.0, dim=1).float()
    return FlipCurve(scores=scores, auc=auc, steps=torch.full((n,), steps))


def _segments(x: torch.Tensor, segments: torch.Tensor | None, grid: int) -> list[torch.Tensor]:
    """Per image, segment ids [H, W] renumbered 0..S-1."""
    from netgaze.methods.feature_masks import grid_mask

    n, _, h, w = x.shape
    if segments is None:
        ids = grid_mask((h, w), grid, x.device)
        return [ids] * n
    seg = torch.as_tensor(segments, device=x.device)
    if seg.is_floating_point() or seg.dtype == torch.bool:
        raise ArgumentError(f"segments holds integer segment ids, got dtype {seg.dtype}")
    if seg.dim() == 2:
        seg = seg.expand(n, h, w)
    if tuple(seg.shape) != (n, h, w):
        raise ArgumentError(f"segments of shape {tuple(seg.shape)} do not match images {tuple(x.shape)}: "
                            "need [N, H, W] or [H, W]")
    return [torch.unique(s, return_inverse=True)[1].view(h, w) for s in seg]


def irof(model: nn.Module, x: torch.Tensor, maps: torch.Tensor, target: TargetLike = None, *,
         segments: torch.Tensor | np.ndarray | None = None, grid: int = 8, baseline: BaselineLike = "mean",
         score: str = "probability", batch_size: int = 128, output: OutputSelector = None) -> FlipCurve:
    """IROF (Rieger & Hansen 2020): remove segments by mean importance, most important first.

    Each step replaces one more segment; the curve is the target's score divided by the
    clean image's, and the value is Quantus' area over it, ``S - np.trapz(curve, dx=1)``
    over the S steps (higher = more faithful; ``FlipCurve.normalised`` divides by S).
    Conventions: ``segments=None`` uses a ``grid x grid`` patch grid (Quantus: SLIC
    superpixels from scikit-image; pass them as ``segments`` to match). ``baseline="mean"``
    is each clean image's mean over channels and pixels, fixed; Quantus recomputes the
    mean of the whole partly-replaced batch before every step, so the two agree only with
    a number as the baseline.

    Args:
        maps: importance [N, H, W]; a segment's importance is the mean of its pixels (ties by id).
        segments: integer segment ids [N, H, W] or [H, W] (any integers).
        grid: patches per side when ``segments`` is None.
        baseline: ``"mean"``, ``"black"`` or anything ``make_baseline`` takes.
    """
    check_image_batch(x)
    maps = check_maps(x, maps)
    n = x.shape[0]
    target = fixed_target(model, x, target, output)
    base = _baseline(x, baseline)
    seg = _segments(x, segments, grid)
    counts = [int(s.max()) + 1 for s in seg]
    orders = []
    for m, s, count in zip(maps, seg, counts):
        means = torch.zeros(count, device=x.device).scatter_add_(0, s.reshape(-1), m.reshape(-1))
        means = means / torch.bincount(s.reshape(-1), minlength=count).float()
        rank = torch.empty(count, dtype=torch.long, device=x.device)
        rank[torch.argsort(means, descending=True, stable=True)] = torch.arange(count, device=x.device)
        orders.append(rank[s])  # [H, W] the step at which each pixel goes
    image_of_row = torch.cat([torch.full((c,), i, dtype=torch.long) for i, c in enumerate(counts)])
    step_of_row = torch.cat([torch.arange(c) for c in counts])

    def build(lo: int, hi: int) -> torch.Tensor:
        out = []
        for i, k in zip(image_of_row[lo:hi].tolist(), step_of_row[lo:hi].tolist()):
            out.append(torch.where((orders[i] <= k)[None], base[i], x[i]))
        return torch.stack(out)

    rows = len(image_of_row)
    scores, _ = score_rows(model, rows, build, image_of_row, target, score=score, batch_size=batch_size,
                           output=output)
    clean, _ = score_rows(model, n, lambda lo, hi: x[lo:hi], torch.arange(n), target, score=score,
                          batch_size=batch_size, output=output)
    longest = max(counts)
    curve = torch.full((n, longest), float("nan"))
    aoc = torch.empty(n)
    start = 0
    for i, c in enumerate(counts):
        ratio = scores[start:start + c].double() / float(clean[i])
        curve[i, :c] = ratio.float()
        aoc[i] = float(c - torch.trapezoid(ratio, dx=1.0))
        start += c
    return FlipCurve(scores=curve, auc=aoc, steps=torch.tensor(counts))

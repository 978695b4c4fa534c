"""ROAD: RemOve And Debias (Rong, Leemann et al. 2022), MoRF and LeRF orders.

Removed pixels are filled by noisy linear imputation: each removed pixel is the weighted
mean of its 8 neighbours (1/6 for edge neighbours, 1/12 for corners), one sparse linear
system per image and channel set, plus Gaussian noise. The fill carries no trace of the
removed shape, so a dropping score means the pixels mattered, not that the model saw a hole.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Sequence

import numpy as np
import torch
import torch.nn as nn

from netgaze.errors import ArgumentError
from netgaze.core.recorder import OutputSelector
from netgaze.core.targets import TargetLike
from netgaze.methods.templates import check_image_batch, fixed_target
from netgaze.metrics.deletion import pixel_order
from netgaze.metrics.scoring import check_maps, score_rows, target_classes

NEIGHBOURS = (((1, 1), 1 / 12), ((0, 1), 1 / 6), ((-1, 1), 1 / 12), ((1, -1), 1 / 12),
              ((0, -1), 1 / 6), ((-1, -1), 1 / 12), ((1, 0), 1 / 6), ((-1, 0), 1 / 6))
PERCENTAGES = (10, 20, 30, 40, 50, 60, 70, 80, 90)


def noisy_linear_imputation(image: torch.Tensor, removed: torch.Tensor, noise: float = 0.01,
                            generator: torch.Generator | None = None) -> torch.Tensor:
    """``image`` [C, H, W] with the pixels of bool ``removed`` [H, W] imputed (ROAD's imputer).

    Solved in float64 with scipy's sparse solver, as the reference code (tleemann/road_evaluation,
    copied by pytorch-grad-cam and Quantus); ``noise`` is the standard deviation of the Gaussian
    noise added to every imputed value (0: none), drawn from ``generator`` on the CPU.
    """
    from scipy.sparse import coo_matrix
    from scipy.sparse.linalg import spsolve

    c, h, w = image.shape
    flat = removed.detach().reshape(-1).cpu().numpy().astype(bool)
    if flat.all():
        raise ArgumentError("noisy linear imputation needs at least one kept pixel; remove less than 100%")
    idx = np.flatnonzero(flat)
    k = len(idx)
    if k == 0:
        return image.clone()
    pixels = image.detach().reshape(c, -1).cpu().double().numpy()
    var = np.full(h * w, -1, dtype=np.int64)
    var[idx] = np.arange(k)
    r, col = idx // w, idx % w
    rows, cols, vals = [], [], []
    diag = np.zeros(k)
    b = np.zeros((k, c))
    ids = np.arange(k)
    for (dr, dc), weight in NEIGHBOURS:
        rr, cc = r + dr, col + dc
        valid = (rr >= 0) & (rr < h) & (cc >= 0) & (cc < w)
        nb, at = rr[valid] * w + cc[valid], ids[valid]
        known = ~flat[nb]
        b[at[known]] -= weight * pixels[:, nb[known]].T
        rows.append(at[~known])
        cols.append(var[nb[~known]])
        vals.append(np.full(int((~known).sum()), weight))
        diag[at] += weight
    rows.append(ids)
    cols.append(ids)
    vals.append(-diag)
    a = coo_matrix((np.concatenate(vals), (np.concatenate(rows), np.concatenate(cols))), shape=(k, k)).tocsc()
    solved = np.asarray(spsolve(a, b)).reshape(k, c).T
    fill = torch.from_numpy(solved).to(image.dtype)
    if noise:
        fill = fill + noise * torch.randn(fill.shape, generator=generator, dtype=torch.float64).to(image.dtype)
    out = image.detach().reshape(c, -1).clone()
    out[:, torch.from_numpy(idx).to(out.device)] = fill.to(out.device)
    return out.view_as(image)


@dataclass
class RoadCurve:
    """ROAD scores after removing each percentage of pixels.

    Attributes:
        order: ``"morf"`` (most relevant removed first) or ``"lerf"`` (least relevant first).
        percentages: [P] share of pixels removed, in percent.
        scores: [N, P] the target's score on each imputed image.
        before: [N] the target's score on the clean images.
        correct: [N, P] whether the top class is still the explained class (None when the
            target is not a ``Class``); Quantus' ROAD reports its mean per percentage.
    """

    order: str
    percentages: list[float]
    scores: torch.Tensor
    before: torch.Tensor
    correct: torch.Tensor | None

    @property
    def mean_score(self) -> float:
        """The score averaged over images and percentages (MoRF: lower is better; LeRF: higher)."""
        return float(self.scores.mean())

    @property
    def mean_change(self) -> torch.Tensor:
        """[N] score after minus before, averaged over percentages (pytorch-grad-cam's ROAD value)."""
        return (self.scores - self.before[:, None]).mean(1)

    @property
    def accuracy(self) -> torch.Tensor | None:
        """[P] share of images still classified as the explained class (Quantus' ROAD curve)."""
        return None if self.correct is None else self.correct.float().mean(0)


def road(model: nn.Module, x: torch.Tensor, maps: torch.Tensor, target: TargetLike = None, *,
         order: str = "morf", percentages: Sequence[float] = PERCENTAGES, noise: float = 0.01,
         score: str = "probability", random_state: int | None = 0, batch_size: int = 128,
         output: OutputSelector = None) -> RoadCurve:
    """ROAD (Rong, Leemann et al. 2022): remove a share of pixels by importance, impute, rescore.

    Convention: at ``p`` percent, the first ``int(H * W * p / 100)`` pixels in importance order
    are imputed (Quantus' count; ties by position), all channels of a pixel together;
    pytorch-grad-cam's thresholds at ``np.percentile`` agree wherever H * W * p / 100 is whole.
    ``noise``: standard deviation of the added Gaussian noise (0.01, as both peers), drawn
    from a generator seeded by ``random_state``, so draws differ from the peers' global RNGs.

    Args:
        model: a classifier; run in eval mode without gradients.
        x: images [N, C, H, W].
        maps: importance [N, H, W] at the input size (higher = more important).
        target: None fixes each image's top class on the clean image.
        order: ``"morf"`` (most relevant first; lower scores are better) or ``"lerf"``
            (least relevant first; higher scores are better).
        percentages: shares removed, each in [0, 100).
        score: ``"probability"`` (softmax) or ``"raw"``.
        batch_size: imputed images per forward pass, mixed across images and percentages.
    """
    check_image_batch(x)
    if order not in ("morf", "lerf"):
        raise ArgumentError(f"order must be 'morf' or 'lerf', got {order!r}")
    percentages = [float(p) for p in percentages]
    if not percentages or any(not 0 <= p < 100 for p in percentages):
        raise ArgumentError(f"percentages must be a non-empty list of values in [0, 100), got {percentages}")
    maps = check_maps(x, maps)
    n, _, h, w = x.shape
    target = fixed_target(model, x, target, output)
    ranks = pixel_order(maps).view(n, h, w).cpu()
    counts = [int(h * w * p / 100) for p in percentages]
    generator = torch.Generator().manual_seed(random_state if random_state is not None else torch.seed())
    rows = n * len(percentages)
    image_of_row = torch.arange(n).repeat_interleave(len(percentages))
    x_cpu = x.detach().cpu()

    def build(lo: int, hi: int) -> torch.Tensor:
        out = []
        for row in range(lo, hi):
            i, count = divmod(row, len(percentages))
            removed = ranks[i] < counts[count] if order == "morf" else ranks[i] >= h * w - counts[count]
            out.append(noisy_linear_imputation(x_cpu[i], removed, noise, generator))
        return torch.stack(out).to(x.device)

    scores, top = score_rows(model, rows, build, image_of_row, target, score=score, batch_size=batch_size,
                             output=output, with_top=True)
    before, _ = score_rows(model, n, lambda lo, hi: x[lo:hi], torch.arange(n), target, score=score,
                           batch_size=batch_size, output=output)
    classes = target_classes(target, n)
    correct = None
    if classes is not None and top is not None:
        correct = (top.view(n, -1) == classes[:, None])
    return RoadCurve(order=order, percentages=percentages, scores=scores.view(n, -1), before=before,
                     correct=correct)

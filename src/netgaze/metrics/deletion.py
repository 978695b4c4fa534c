"""Deletion and insertion curves and their areas (RISE; Petsiuk et al. 2018).

Deletion replaces the most important pixels first with a baseline and watches the
target's score fall (lower area = more faithful map); insertion starts from the
baseline and puts the most important pixels back first (higher area = better).

Speed: the perturbed images of every step of every image are one stream of rows,
built and run ``batch_size`` rows at a time, so the model sees full batches instead of
one image per step.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Union

import torch
import torch.nn as nn
import torch.nn.functional as F

from netgaze.errors import ArgumentError
from netgaze.methods.templates import check_image_batch, fixed_target
from netgaze.core.recorder import OutputSelector, Recorder
from netgaze.core.targets import TargetLike

BaselineLike = Union[str, float, torch.Tensor]
BASELINES = ("blur", "constant", "noise")
SCORES = ("probability", "raw")


@dataclass
class Curve:
    """A deletion or insertion curve.

    Attributes:
        mode: ``"deletion"`` or ``"insertion"``.
        fractions: [S + 1] share of pixels removed (deletion) or inserted (insertion).
        scores: [N, S + 1] the target's score at each step, per image.
        auc: [N] area under each curve (trapezoid rule over ``fractions``).
    """

    mode: str
    fractions: torch.Tensor
    scores: torch.Tensor
    auc: torch.Tensor

    @property
    def mean_auc(self) -> float:
        return float(self.auc.mean())


def blur(x: torch.Tensor, sigma: float = 5.0) -> torch.Tensor:
    """Gaussian blur of an image batch [B, C, H, W] (edges replicated), as RISE's insertion baseline."""
    radius = max(1, min(int(3 * sigma + 0.5), min(x.shape[-2:]) - 1))
    t = torch.arange(-radius, radius + 1, dtype=x.dtype, device=x.device)
    kernel = torch.exp(-0.5 * (t / sigma) ** 2)
    kernel = kernel / kernel.sum()
    c = x.shape[1]
    out = F.pad(x, (radius, radius, radius, radius), mode="replicate")
    out = F.conv2d(out, kernel.view(1, 1, 1, -1).repeat(c, 1, 1, 1), groups=c)
    return F.conv2d(out, kernel.view(1, 1, -1, 1).repeat(c, 1, 1, 1), groups=c)


def make_baseline(x: torch.Tensor, baseline: BaselineLike = "blur", *, value: float = 0.0,
                  blur_sigma: float = 5.0, random_state: int | None = 0) -> torch.Tensor:
    """The image each pixel is replaced by (deletion) or starts from (insertion), [B, C, H, W].

    Args:
        baseline: ``"blur"`` (Gaussian blur, ``blur_sigma`` pixels), ``"constant"``
            (``value``), ``"noise"`` (uniform noise between each image's min and max,
            seeded by ``random_state``), a number (a constant), or a tensor broadcastable to x.
    """
    if isinstance(baseline, torch.Tensor):
        return baseline.to(device=x.device, dtype=x.dtype).expand_as(x)
    if isinstance(baseline, (int, float)) and not isinstance(baseline, bool):
        return torch.full_like(x, float(baseline))
    if baseline == "blur":
        return blur(x, blur_sigma)
    if baseline == "constant":
        return torch.full_like(x, float(value))
    if baseline == "noise":
        generator = None if random_state is None else torch.Generator(device=x.device).manual_seed(random_state)
        low = x.flatten(1).amin(1).view(-1, 1, 1, 1)
        high = x.flatten(1).amax(1).view(-1, 1, 1, 1)
        u = torch.rand(x.shape, generator=generator, device=x.device, dtype=x.dtype)
        return low + u * (high - low)
    raise ArgumentError(f"unknown baseline {baseline!r}; valid: {', '.join(BASELINES)}, a number or a tensor")


def pixel_order(maps: torch.Tensor) -> torch.Tensor:
    """Rank [N, H*W] of each pixel by importance (0 = most important; ties by position)."""
    flat = maps.detach().flatten(1).float()
    order = torch.argsort(flat, dim=1, descending=True, stable=True)
    ranks = torch.empty_like(order)
    ranks.scatter_(1, order, torch.arange(flat.shape[1], device=flat.device).expand_as(order))
    return ranks


def step_counts(pixels: int, steps: int) -> torch.Tensor:
    """Pixels changed after each of ``steps`` equal steps: ``round(k * pixels / steps)``, k = 0..steps."""
    if steps < 1:
        raise ArgumentError(f"steps must be >= 1, got {steps}")
    k = torch.arange(steps + 1, dtype=torch.float64)
    return torch.round(k * pixels / steps).long()


def perturbation_curve(model: nn.Module, x: torch.Tensor, maps: torch.Tensor, mode: str = "deletion",
                       target: TargetLike = None, *, steps: int = 20, baseline: BaselineLike = "blur",
                       value: float = 0.0, blur_sigma: float = 5.0, random_state: int | None = 0,
                       score: str = "probability", batch_size: int = 128,
                       output: OutputSelector = None) -> Curve:
    """Deletion or insertion curve of ``maps`` on images ``x``.

    Args:
        model: any module; run in eval mode without gradients and left as found.
        x: images [N, C, H, W].
        maps: importance [N, H, W] at the input size (higher = more important); all
            channels of a pixel change together.
        mode: ``"deletion"`` or ``"insertion"``.
        target: the explained score; None fixes each image's top class on the clean
            image, so every step scores the same class.
        steps: the curve has ``steps + 1`` points, at ``k / steps`` of the pixels.
        baseline: see ``make_baseline``.
        value: see ``make_baseline``.
        blur_sigma: see ``make_baseline``.
        random_state: see ``make_baseline``.
        score: ``"probability"`` (softmax over classes before the target, as RISE) or
            ``"raw"`` (the target on the model's output as is: a logit, a dense sum).
        batch_size: perturbed images per forward pass, mixed across steps and images.
        output: selects the explained tensor of a tuple/dict output.
    """
    check_image_batch(x)
    if mode not in ("deletion", "insertion"):
        raise ArgumentError(f"mode must be 'deletion' or 'insertion', got {mode!r}")
    if score not in SCORES:
        raise ArgumentError(f"score must be one of {SCORES}, got {score!r}")
    maps = torch.as_tensor(maps).to(x.device)
    n, _, h, w = x.shape
    if tuple(maps.shape) != (n, h, w):
        raise ArgumentError(f"maps of shape {tuple(maps.shape)} do not match images {tuple(x.shape)}: need [N, H, W]")
    target = fixed_target(model, x, target, output)
    base = make_baseline(x, baseline, value=value, blur_sigma=blur_sigma, random_state=random_state)
    start, end = (x, base) if mode == "deletion" else (base, x)
    ranks = pixel_order(maps).view(n, 1, h, w)
    counts = step_counts(h * w, steps).to(x.device)
    rows = n * (steps + 1)
    image_of_row = torch.arange(n, device=x.device).repeat_interleave(steps + 1)
    count_of_row = counts.repeat(n)
    scores = torch.empty(rows, dtype=torch.float32)
    with Recorder(model, [], output=output, grads=False) as rec:
        for lo in range(0, rows, batch_size):
            idx = image_of_row[lo:lo + batch_size]
            changed = ranks[idx] < count_of_row[lo:lo + batch_size].view(-1, 1, 1, 1)
            batch = torch.where(changed, end[idx], start[idx])
            out = rec.forward(batch)
            if score == "probability":
                if out.dim() != 2:
                    raise ArgumentError(f"score='probability' needs class scores [B, K]; the output has shape "
                                        f"{tuple(out.shape)}: use score='raw'")
                out = out.float().softmax(dim=1)
            scores[lo:lo + len(idx)] = _row_scores(target, out, idx).float().cpu()
    scores = scores.view(n, steps + 1)
    fractions = counts.double().cpu() / (h * w)
    auc = torch.trapezoid(scores.double(), fractions, dim=1).float()
    return Curve(mode=mode, fractions=fractions.float(), scores=scores, auc=auc)


def _row_scores(target, out: torch.Tensor, image_index: torch.Tensor) -> torch.Tensor:
    """Each row's score under its own image's target."""
    result = torch.empty(len(image_index), dtype=out.dtype, device=out.device)
    for i in image_index.unique().tolist():
        rows = (image_index == i).nonzero()[:, 0]
        result[rows] = target.sample(i)(out[rows]).reshape(-1)
    return result


def deletion_curve(model: nn.Module, x: torch.Tensor, maps: torch.Tensor, target: TargetLike = None, *,
                   steps: int = 20, baseline: BaselineLike = "blur", value: float = 0.0,
                   blur_sigma: float = 5.0, random_state: int | None = 0, score: str = "probability",
                   batch_size: int = 128, output: OutputSelector = None) -> Curve:
    """Deletion curve (most important pixels replaced by the baseline first); lower AUC is better.

    See ``perturbation_curve`` for the arguments.
    """
    return perturbation_curve(model, x, maps, "deletion", target, steps=steps, baseline=baseline, value=value,
                              blur_sigma=blur_sigma, random_state=random_state, score=score,
                              batch_size=batch_size, output=output)


def insertion_curve(model: nn.Module, x: torch.Tensor, maps: torch.Tensor, target: TargetLike = None, *,
                    steps: int = 20, baseline: BaselineLike = "blur", value: float = 0.0,
                    blur_sigma: float = 5.0, random_state: int | None = 0, score: str = "probability",
                    batch_size: int = 128, output: OutputSelector = None) -> Curve:
    """Insertion curve (most important pixels put back onto the baseline first); higher AUC is better.

    See ``perturbation_curve`` for the arguments.
    """
    return perturbation_curve(model, x, maps, "insertion", target, steps=steps, baseline=baseline, value=value,
                              blur_sigma=blur_sigma, random_state=random_state, score=score,
                              batch_size=batch_size, output=output)

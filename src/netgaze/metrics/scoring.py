"""The loop every perturbation metric shares: score many perturbed images, batched.

Rows (one perturbed image each, any mix of images and steps) are built ``batch_size`` at
a time by the caller's ``build`` and scored under each row's own image's target, so the
model sees full batches instead of one image per step.
"""
from __future__ import annotations

from typing import Callable

import torch
import torch.nn as nn

from netgaze.errors import ArgumentError
from netgaze.core.recorder import OutputSelector, Recorder

SCORES = ("probability", "raw")


def check_maps(x: torch.Tensor, maps: torch.Tensor) -> torch.Tensor:
    """``maps`` as float [N, H, W] on x's device, checked against images [N, C, H, W]."""
    maps = torch.as_tensor(maps).detach().to(x.device)
    n, _, h, w = x.shape
    if tuple(maps.shape) != (n, h, w):
        raise ArgumentError(f"maps of shape {tuple(maps.shape)} do not match images {tuple(x.shape)}: need [N, H, W]")
    return maps.float()


def check_score(score: str) -> None:
    if score not in SCORES:
        raise ArgumentError(f"score must be one of {SCORES}, got {score!r}")


def row_scores(target, out: torch.Tensor, image_index: torch.Tensor) -> torch.Tensor:
    """Each row's score under its own image's target."""
    result = torch.empty(len(image_index), dtype=out.dtype, device=out.device)
    for i in image_index.unique().tolist():
        rows = (image_index == i).nonzero()[:, 0]
        result[rows] = target.sample(i)(out[rows]).reshape(-1)
    return result


def score_rows(model: nn.Module, rows: int, build: Callable[[int, int], torch.Tensor], image_of_row: torch.Tensor,
               target, *, score: str = "probability", batch_size: int = 128, output: OutputSelector = None,
               with_top: bool = False) -> tuple[torch.Tensor, torch.Tensor | None]:
    """Scores [rows] (float32, CPU) of ``build(lo, hi)`` batches; with ``with_top`` also each
    row's top class [rows] (None when the output is not class scores [B, K]).

    ``score="probability"`` takes the softmax over classes before the target (RISE, Quantus'
    ``softmax=True``); ``"raw"`` the target on the output as is (a logit).
    """
    check_score(score)
    if batch_size < 1:
        raise ArgumentError(f"batch_size must be >= 1, got {batch_size}")
    scores = torch.empty(rows, dtype=torch.float32)
    top = torch.empty(rows, dtype=torch.long) if with_top else None
    image_of_row = image_of_row.cpu()
    with Recorder(model, [], output=output, grads=False) as rec:
        for lo in range(0, rows, batch_size):
            hi = min(rows, lo + batch_size)
            out = rec.forward(build(lo, hi))
            if score == "probability":
                if out.dim() != 2:
                    raise ArgumentError(f"score='probability' needs class scores [B, K]; the output has shape "
                                        f"{tuple(out.shape)}: use score='raw'")
                out = out.float().softmax(dim=1)
            scores[lo:hi] = row_scores(target, out, image_of_row[lo:hi].to(out.device)).float().cpu()
            if top is not None:
                if out.dim() != 2:
                    top = None
                else:
                    top[lo:hi] = out.argmax(dim=1).cpu()
    return scores, top


def target_classes(target, n: int) -> torch.Tensor | None:
    """The explained class of each of n images [n] when the target is a ``Class``, else None."""
    from netgaze.core.targets import Class

    if not isinstance(target, Class):
        return None
    if isinstance(target.c, int):
        return torch.full((n,), target.c, dtype=torch.long)
    return torch.as_tensor([int(c) for c in target.c], dtype=torch.long)


def minmax(maps: torch.Tensor, eps: float = 1e-8) -> torch.Tensor:
    """Each map shifted to minimum 0 and divided by its new maximum + ``eps`` (torchcam's CAM normalisation)."""
    flat = maps.flatten(1)
    shifted = flat - flat.amin(1, keepdim=True)
    return (shifted / (shifted.amax(1, keepdim=True) + eps)).view_as(maps)

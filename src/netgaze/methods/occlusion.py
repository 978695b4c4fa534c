"""Occlusion (Zeiler & Fergus 2014): the score drop when a sliding window is replaced by a baseline."""
from __future__ import annotations

import itertools
import math
from typing import Sequence

import torch
import torch.nn as nn

from netgaze.core.detection import DetectionMatchError
from netgaze.core.recorder import OutputSelector, Recorder
from netgaze.core.targets import TargetLike
from netgaze.errors import ArgumentError
from netgaze.methods.templates import check_image_batch, fixed_target, target_scores


def occlusion(model: nn.Module, x: torch.Tensor, target: TargetLike = None, *,
              window: Sequence[int] = (8, 8), strides: int | Sequence[int] | None = None,
              baseline: float | torch.Tensor = 0.0, batch_size: int = 64,
              output: OutputSelector = None) -> torch.Tensor:
    """Occlusion attributions [B, C, H, W] with Captum's conventions.

    A window slides over the picture; where it sits, the picture is replaced by
    ``baseline`` and the target's score drop ``score(x) - score(occluded)`` is added to every
    element under the window; each element's sum is divided by the number of windows that
    covered it. Along each axis the window starts at ``0, s, 2s, ...``, ``ceil((size -
    window) / s) + 1`` times, the last one clipped at the border (as Captum does).

    Args:
        window: ``(h, w)`` (all channels at once) or ``(c, h, w)``, Captum's
            ``sliding_window_shapes``.
        strides: one int or one per window axis; None uses the window itself (tiles that do
            not overlap; Captum's default stride is 1).
        baseline: a number, or a tensor broadcastable to one picture [C, H, W] or to [B, C, H, W].
        batch_size: occluded pictures per forward pass.

    One picture batch only (a tuple of inputs is refused). The target is fixed on the clean
    picture. A window covering the whole picture gives ``score(x) - score(baseline)`` everywhere.
    """
    if isinstance(x, tuple):
        raise ArgumentError("occlusion takes one picture batch [B, C, H, W], not a tuple of inputs")
    check_image_batch(x)
    rows, channels, height, width = x.shape
    window = tuple(int(w) for w in window)
    if len(window) == 2:
        window = (channels, *window)
    if len(window) != 3 or any(w < 1 for w in window):
        raise ArgumentError(f"window is (h, w) or (c, h, w) of positive sizes, got {window}")
    strides = window if strides is None else (strides,) * 3 if isinstance(strides, int) else tuple(strides)
    if len(strides) == 2:
        strides = (channels, *strides)
    if len(strides) != 3 or any(s < 1 for s in strides):
        raise ArgumentError(f"strides is one int, (h, w) or (c, h, w) of positive sizes, got {strides}")
    sizes = (channels, height, width)
    for size, w, s in zip(sizes, window, strides):
        if w > size:
            raise ArgumentError(f"window {window} is larger than the picture {sizes}")
        if s > w and size != w:
            raise ArgumentError(f"a stride {strides} larger than the window {window} would skip pixels")
    if batch_size < 1:
        raise ArgumentError(f"batch_size must be >= 1, got {batch_size}")
    starts = [range(0, s * (math.ceil((size - w) / s) + 1), s) for size, w, s in zip(sizes, window, strides)]
    positions = list(itertools.product(*starts))
    base = torch.as_tensor(baseline, dtype=x.dtype, device=x.device)
    base = base.expand_as(x) if base.dim() == 4 else base.expand(sizes)[None].expand_as(x)
    target = fixed_target(model, x, target, output)
    total = torch.zeros_like(x)
    count = torch.zeros(sizes, dtype=x.dtype, device=x.device)
    per_call = max(1, batch_size // rows)
    with Recorder(model, [], output=output, grads=False) as plain:
        clean = plain.forward(x)
        scores = target_scores(target, clean, rows)
        if scores.dim() != 1:
            raise ArgumentError("occlusion explains one score per sample; use TopClass(1) or Class(...)")
        for chunk_start in range(0, len(positions), per_call):
            chunk = positions[chunk_start:chunk_start + per_call]
            masks = torch.zeros(len(chunk), *sizes, dtype=x.dtype, device=x.device)
            for j, (c0, y0, x0) in enumerate(chunk):
                masks[j, c0:c0 + window[0], y0:y0 + window[1], x0:x0 + window[2]] = 1
            occluded = x[None] * (1 - masks[:, None]) + base[None] * masks[:, None]
            try:
                got = target.repeat(len(chunk))(plain.forward(occluded.flatten(0, 1)))
            except DetectionMatchError:
                got = torch.zeros(len(chunk) * rows, device=x.device, dtype=x.dtype)
            drops = scores[None] - got.view(len(chunk), rows)
            total += torch.einsum("kb,kchw->bchw", drops, masks)
            count += masks.sum(0)
    return total / count

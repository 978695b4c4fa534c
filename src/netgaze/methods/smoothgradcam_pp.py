"""Smooth Grad-CAM++ (Omeiza et al. 2019): Grad-CAM++ with gradients averaged over noisy copies."""
from __future__ import annotations

from typing import Sequence

import torch
import torch.nn as nn

from netgaze.core.inputs import Inputs, as_tuple, check_inputs, differentiable, from_tuple, is_multi
from netgaze.core.layers import LayerRef
from netgaze.core.layouts import LayoutArg, ReshapeArg
from netgaze.core.recorder import OutputSelector, Recorder, RecorderError
from netgaze.core.targets import TargetLike
from netgaze.errors import ArgumentError
from netgaze.methods.smoothgrad import _value_range
from netgaze.methods.templates import (fixed_target, layer_readers, map_size, needs_sources, picture_shape,
                                       target_scores, upsample)


def smoothgradcam_pp(model: nn.Module, x: Inputs, layer: LayerRef | Sequence[LayerRef] = -1,
                     target: TargetLike = None, *, n: int = 4, sigma: float = 0.15, seed: int | None = 0,
                     generator: torch.Generator | None = None, batch_size: int = 64,
                     output: OutputSelector = None, layout: LayoutArg = None, reshape: ReshapeArg = None
                     ) -> torch.Tensor | dict[str, torch.Tensor]:
    """Smooth Grad-CAM++ maps; same layers and return values as ``gradcam``.

    The layer's gradients on ``n`` noisy copies of each picture give the means of ``g``,
    ``g^2`` and ``g^3``; Grad-CAM++'s closed form then weighs the clean picture's
    activations ``A``: ``alpha = mean(g^2) / (2 mean(g^2) + sum(A) mean(g^3))`` (0 where
    the denominator vanishes), ``w = sum_ij alpha relu(mean(g))``, map ``relu(sum_k w_k A_k)``.
    torchcam departs from the paper: it weights ``relu`` of the LAST copy's gradient, sums
    ``A * mean(g^3)`` in the denominator and weighs the last copy's activations.

    Args:
        n: noisy copies (torchcam's default 4).
        sigma: noise standard deviation as a share of each picture's value range (as in
            ``smoothgrad``; torchcam's ``std`` is absolute: ``sigma = std / range``).
        seed: seed of the noise when no ``generator`` is given (None: torch's global generator).
        generator: the random generator to draw from (takes precedence over ``seed``).
        batch_size: rows per forward and backward pass; copies stack on the batch axis.

    One standard-normal draw per copy is shared by the pictures of a batch (each scaled by
    its own range), so a batch equals its pictures one by one. The target is fixed on the
    clean picture, so noise never changes the explained class.
    """
    check_inputs(x)
    if n < 1 or batch_size < 1:
        raise ArgumentError(f"n and batch_size must be >= 1, got {n}, {batch_size}")
    many = isinstance(layer, (list, tuple))
    layers = list(layer) if many else [layer]
    target = fixed_target(model, x, target, output)
    parts = as_tuple(x)
    rows = parts[0].shape[0]
    if generator is None and seed is not None:
        generator = torch.Generator(device=parts[0].device).manual_seed(seed)
    traced = needs_sources(x)
    with Recorder(model, layers, output=output, grads=traced, input_grad=traced, input_shape=picture_shape(x)) as rec:
        rec.forward(x)
        sizes = {name: map_size(x, rec, name) for name in rec.names}
        readers = layer_readers(rec, sizes, layout, reshape)
        clean = {name: readers[name](rec.activations[name]).detach() for name in rec.names}
    for name, acts in clean.items():
        if acts.dim() != 4:
            raise RecorderError(f"layer {name!r} gives shape {tuple(acts.shape)} after reshape=; "
                                "CAM methods need [B, C, h, w]")
    moments = {name: [torch.zeros_like(a) for _ in range(3)] for name, a in clean.items()}
    stds = [sigma * _value_range(t) if differentiable(t) else None for t in parts]
    per_call = max(1, batch_size // rows)
    with Recorder(model, layers, output=output, input_grad=traced, input_shape=picture_shape(x)) as rec:
        for start in range(0, n, per_call):
            m = min(per_call, n - start)
            noisy = []
            for t, std in zip(parts, stds):
                if std is None:
                    noisy.append(t.repeat(m, *[1] * (t.dim() - 1)))
                    continue
                draws = [torch.randn((1, *t.shape[1:]), generator=generator, device=t.device, dtype=t.dtype)
                         for _ in range(m)]
                noisy.append(torch.cat([t + d * std for d in draws]))
            out = rec.forward(from_tuple(noisy, is_multi(x)))
            scores = target_scores(target.repeat(m), out, m * rows)
            if scores.dim() != 1:
                raise ArgumentError("smoothgradcam_pp explains one score per sample; use TopClass(1) or Class(...)")
            grads = rec.gradients(scores, input=False)
            for name in rec.names:
                g = readers[name](grads[name]).detach()
                g = g.view(m, rows, *g.shape[1:])
                for power, total in enumerate(moments[name], start=1):
                    total += g.pow(power).sum(0)
    maps = {}
    for name, acts in clean.items():
        g1, g2, g3 = (total / n for total in moments[name])
        denominator = 2 * g2 + acts.sum(dim=(2, 3), keepdim=True) * g3
        alpha = g2 / torch.where(denominator != 0, denominator, torch.ones_like(denominator))
        weights = (alpha * g1.clamp(min=0)).sum(dim=(2, 3), keepdim=True)
        maps[name] = upsample((weights * acts).sum(1).clamp(min=0), sizes[name])
    return maps if many else next(iter(maps.values()))

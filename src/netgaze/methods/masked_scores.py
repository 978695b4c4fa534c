"""Shared by the Score-CAM family (SS-CAM, IS-CAM): channel weights from scores of inputs masked
by each channel's upsampled, min-max scaled activation, perturbed per iteration."""
from __future__ import annotations

from typing import Callable, Sequence

import torch
import torch.nn as nn

from netgaze.core.inputs import Inputs, as_tuple, check_inputs, is_multi
from netgaze.core.layers import LayerRef
from netgaze.core.layouts import LayoutArg, ReshapeArg
from netgaze.core.recorder import OutputSelector, Recorder, RecorderError
from netgaze.core.targets import TargetLike, as_target
from netgaze.errors import ArgumentError
from netgaze.methods.scorecam import _channel_masks, _masked, _masked_scores
from netgaze.methods.templates import (layer_readers, map_size, needs_sources, picture_shape, source_picture,
                                       target_scores, upsample)

# (iteration, masks' shape [C, H, W]) -> (masks [n, H, W] of channels ``start .. start + n - 1``, start) -> perturbed
Perturbation = Callable[[int, torch.Size], Callable[[torch.Tensor, int], torch.Tensor]]


def iterated_score_cams(model: nn.Module, x: Inputs, layer: LayerRef | Sequence[LayerRef], target: TargetLike,
                        perturbation: Perturbation, iterations: int, *, batch_size: int, output: OutputSelector,
                        layout: LayoutArg, reshape: ReshapeArg, restart: Callable[[], None] | None = None
                        ) -> torch.Tensor | dict[str, torch.Tensor]:
    """Maps ``relu(sum_k w_k A_k)`` with ``w = softmax_k(mean over iterations of the masked scores)``.

    Every iteration scores all channels of all samples; ``perturbation(it)`` turns the
    masks of that iteration, given the masks' shape [C, H, W] (the same perturbation for every sample, so a batch equals
    its samples one by one). ``restart()`` runs before each layer (random perturbations
    start over, so several layers at once equal one at a time).
    """
    check_inputs(x)
    if iterations < 1 or batch_size < 1:
        raise ArgumentError(f"the number of samples and batch_size must be >= 1, got {iterations}, {batch_size}")
    target = as_target(target)
    many = isinstance(layer, (list, tuple))
    traced = needs_sources(x)
    parts = as_tuple(x)
    rows = parts[0].shape[0]
    with Recorder(model, list(layer) if many else [layer], output=output, grads=traced, input_grad=traced,
                  input_shape=picture_shape(x)) as rec:
        out = rec.forward(x)
        sizes = {n: map_size(x, rec, n) for n in rec.names}
        sources = {n: source_picture(x, rec, n) for n in rec.names}
        readers = layer_readers(rec, sizes, layout, reshape)
        activations = {n: readers[n](rec.activations[n]).detach() for n in rec.names}
    target = target.resolve(out)
    if target_scores(target, out, rows).dim() != 1:
        raise ArgumentError("this method explains one score per sample; use TopClass(1) or Class(...)")
    maps = {}
    with Recorder(model, [], output=output, grads=False) as plain:
        for name, acts in activations.items():
            if acts.dim() != 4:
                raise RecorderError(f"layer {name!r} gives shape {tuple(acts.shape)} after reshape=; "
                                    "Score-CAM methods need [B, C, h, w]")
            masks = [_channel_masks(acts[i], sizes[name]) for i in range(rows)]
            if restart is not None:
                restart()
            totals = torch.zeros(rows, acts.shape[1], dtype=acts.dtype, device=acts.device)
            for it in range(iterations):
                perturb = perturbation(it, masks[0].shape)
                for i in range(rows):
                    for start in range(0, acts.shape[1], batch_size):
                        chunk = perturb(masks[i][start:start + batch_size], start)
                        masked = _masked(parts, i, sources[name], chunk, is_multi(x))
                        totals[i, start:start + len(chunk)] += _masked_scores(target.sample(i), plain, masked)
            weights = (totals / iterations).softmax(dim=1)
            maps[name] = upsample((weights[:, :, None, None] * acts).sum(1).clamp(min=0), sizes[name])
    return maps if many else next(iter(maps.values()))

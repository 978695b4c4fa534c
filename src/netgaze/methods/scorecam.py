"""Score-CAM (Wang et al. 2020): channels weighted by the score of the input they mask."""
from __future__ import annotations

import torch
import torch.nn as nn

from netgaze.errors import ArgumentError
from netgaze.core.detection import DetectionMatchError
from netgaze.core.inputs import Inputs, as_tuple, check_inputs, from_tuple, is_multi
from netgaze.core.layers import LayerRef
from netgaze.core.layouts import LayoutArg, ReshapeArg
from netgaze.methods.templates import (layer_readers, map_size, needs_sources, picture_shape, source_picture, target_scores,
                                 upsample)
from netgaze.core.recorder import OutputSelector, Recorder, RecorderError
from netgaze.core.targets import TargetLike, as_target


def scorecam(model: nn.Module, x: Inputs, layer: LayerRef = -1, target: TargetLike = None, *,
             batch_size: int = 64, output: OutputSelector = None,
             layout: LayoutArg = None, reshape: ReshapeArg = None) -> torch.Tensor:
    """Score-CAM map [B, H, W] of one layer, gradient-free.

    Each channel's activation, upsampled and min-max scaled to [0, 1], masks the input;
    the target's score on the masked inputs, softmaxed over channels, weights the
    channels (as the reference implementations do, without the baseline subtraction).
    Masked inputs run ``batch_size`` at a time. ``layer``, ``layout`` and ``reshape`` as
    in ``gradcam``. With several inputs (a tuple ``x``) the masks cover the picture input
    the layer is computed from; the other inputs are passed unchanged.
    """
    check_inputs(x)
    if isinstance(layer, (list, tuple)):
        raise ArgumentError("scorecam explains one layer; call it once per layer")
    target = as_target(target)
    traced = needs_sources(x)
    rows, chunk_size = as_tuple(x)[0].shape[0], batch_size
    with Recorder(model, [layer], output=output, grads=traced, input_grad=traced,
                  input_shape=picture_shape(x)) as rec:
        out = rec.forward(x)
        name = rec.names[0]
        source, size = source_picture(x, rec, name), map_size(x, rec, name)
        activations = layer_readers(rec, {name: size}, layout, reshape)[name](rec.activations[name]).detach()
    target = target.resolve(out)
    target_scores(target, out, rows)
    parts = as_tuple(x)
    if activations.dim() != 4:
        raise RecorderError(f"layer {name!r} gives shape {tuple(activations.shape)} after reshape=; "
                            "Score-CAM needs [B, C, h, w]")
    maps = []
    with Recorder(model, [], output=output, grads=False) as plain:
        for i in range(rows):
            masks = _channel_masks(activations[i], size)
            scores = torch.cat([_masked_scores(target.sample(i), plain, _masked(parts, i, source, chunk, is_multi(x)))
                                for chunk in masks.split(chunk_size)])
            weights = scores.softmax(dim=0)
            maps.append((weights[:, None, None] * activations[i]).sum(0).clamp(min=0))
    return upsample(torch.stack(maps), size)


def _masked_scores(target, plain: Recorder, masked: Inputs) -> torch.Tensor:
    """The target's score on masked inputs; a detection that vanished under its mask scores 0."""
    out = plain.forward(masked)
    try:
        return target(out)
    except DetectionMatchError:
        return torch.zeros(len(out), device=out[0]["scores"].device)


def _masked(parts: tuple[torch.Tensor, ...], i: int, source: int, masks: torch.Tensor, multi: bool) -> Inputs:
    """Sample ``i``'s inputs, one copy per mask, the picture at ``source`` masked."""
    n = masks.shape[0]
    copies = [t[i:i + 1] * masks[:, None] if k == source else t[i:i + 1].repeat(n, *[1] * (t.dim() - 1))
              for k, t in enumerate(parts)]
    return from_tuple(copies, multi)


def _channel_masks(activation: torch.Tensor, size) -> torch.Tensor:
    up = upsample(activation[None], size)[0]
    low = up.flatten(1).amin(1).view(-1, 1, 1)
    high = up.flatten(1).amax(1).view(-1, 1, 1)
    span = high - low
    return torch.where(span > 0, (up - low) / torch.where(span > 0, span, torch.ones_like(span)),
                       torch.zeros_like(up))

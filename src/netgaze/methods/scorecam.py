"""Score-CAM (Wang et al. 2020): channels weighted by the score of the input they mask."""
from __future__ import annotations

import torch
import torch.nn as nn

from netgaze.layers import LayerRef
from netgaze.layouts import LayoutArg, ReshapeArg
from netgaze.methods.base import check_image_batch, layer_readers, target_scores, upsample
from netgaze.recorder import OutputSelector, Recorder, RecorderError
from netgaze.targets import TargetLike, as_target


def scorecam(model: nn.Module, x: torch.Tensor, layer: LayerRef = -1, target: TargetLike = None, *,
             batch_size: int = 64, output: OutputSelector = None,
             layout: LayoutArg = None, reshape: ReshapeArg = None) -> torch.Tensor:
    """Score-CAM map [B, H, W] of one layer, gradient-free.

    Each channel's activation, upsampled and min-max scaled to [0, 1], masks the input;
    the target's score on the masked inputs, softmaxed over channels, weights the
    channels (as the reference implementations do, without the baseline subtraction).
    Masked inputs run ``batch_size`` at a time. ``layer``, ``layout`` and ``reshape`` as
    in ``gradcam``.
    """
    check_image_batch(x)
    if isinstance(layer, (list, tuple)):
        raise ValueError("scorecam explains one layer; call it once per layer")
    target = as_target(target)
    with Recorder(model, [layer], output=output, grads=False, input_shape=x.shape) as rec:
        out = rec.forward(x)
        name = rec.names[0]
        activations = layer_readers(rec, x, layout, reshape)[name](rec.activations[name])
    target = target.resolve(out)
    target_scores(target, out, x.shape[0])
    if activations.dim() != 4:
        raise RecorderError(f"layer {name!r} gives shape {tuple(activations.shape)} after reshape=; "
                            "Score-CAM needs [B, C, h, w]")
    maps = []
    with Recorder(model, [], output=output, grads=False) as plain:
        for i in range(x.shape[0]):
            masks = _channel_masks(activations[i], x.shape[-2:])
            scores = torch.cat([target.sample(i)(plain.forward(x[i:i + 1] * chunk[:, None]))
                                for chunk in masks.split(batch_size)])
            weights = scores.softmax(dim=0)
            maps.append((weights[:, None, None] * activations[i]).sum(0).clamp(min=0))
    return upsample(torch.stack(maps), x.shape[-2:])


def _channel_masks(activation: torch.Tensor, size) -> torch.Tensor:
    up = upsample(activation[None], size)[0]
    low = up.flatten(1).amin(1).view(-1, 1, 1)
    high = up.flatten(1).amax(1).view(-1, 1, 1)
    span = high - low
    return torch.where(span > 0, (up - low) / torch.where(span > 0, span, torch.ones_like(span)),
                       torch.zeros_like(up))

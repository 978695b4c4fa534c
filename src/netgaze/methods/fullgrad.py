"""FullGrad (Srinivas & Fleuret 2019): the input-gradient term plus every layer's bias-gradient
term, each made positive, scaled and upsampled, summed into one map."""
from __future__ import annotations

import torch
import torch.nn as nn
import torch.nn.functional as F

from netgaze.core.inputs import Inputs, batch_size, check_inputs, is_multi
from netgaze.core.recorder import OutputSelector, Recorder
from netgaze.core.targets import TargetLike, as_target
from netgaze.errors import ArgumentError
from netgaze.methods.templates import check_image_batch, target_scores

EPS = 1e-7
BIAS_LAYERS = (nn.Conv2d, nn.BatchNorm2d)


def bias_layers(model: nn.Module) -> list[tuple[str, torch.Tensor]]:
    """``(name, effective bias [C])`` of every Conv2d with a bias and every BatchNorm2d.

    A batch norm in eval mode adds ``beta - mean * gamma / sqrt(var + eps)`` per channel.
    """
    found = []
    for name, module in model.named_modules():
        if isinstance(module, nn.Conv2d) and module.bias is not None:
            found.append((name, module.bias.detach()))
        elif isinstance(module, nn.BatchNorm2d) and module.running_mean is not None:
            scale = torch.rsqrt(module.running_var + module.eps)
            gamma = module.weight.detach() if module.affine else torch.ones_like(scale)
            beta = module.bias.detach() if module.affine else torch.zeros_like(scale)
            found.append((name, beta - module.running_mean * gamma * scale))
    return found


def scaled_channels(maps: torch.Tensor, size) -> torch.Tensor:
    """[B, C, h, w] -> [B, C, H, W]: each channel min-max scaled to [0, 1] at its own resolution,
    then bilinearly upsampled (pytorch-grad-cam's ``scale_accross_batch_and_channels``)."""
    low = maps.flatten(2).amin(2)[:, :, None, None]
    shifted = maps - low
    shifted = shifted / (EPS + shifted.flatten(2).amax(2)[:, :, None, None])
    if tuple(shifted.shape[-2:]) == tuple(size):
        return shifted
    return F.interpolate(shifted, size=tuple(size), mode="bilinear", align_corners=False)


def fullgrad(model: nn.Module, x: Inputs, target: TargetLike = None, *,
             output: OutputSelector = None) -> torch.Tensor:
    """FullGrad maps [B, H, W] (or [B, K, H, W] for a K-score target), raw sums.

    The map is ``sum_c s(|x_c g_c|) + sum_layers sum_c s(|b_c G_c|)`` where ``g`` is the input
    gradient, ``G`` the gradient at a Conv2d or BatchNorm2d output, ``b`` its (effective)
    bias, and ``s`` scales each channel to [0, 1] at its own resolution and upsamples it
    bilinearly (pytorch-grad-cam's convention; the authors' code scales per picture across
    channels). Every bias layer of the model is used: there is no ``layer`` argument. One
    forward and one backward pass. Min-max scale the result to compare with pytorch-grad-cam.
    """
    check_inputs(x)
    if is_multi(x):
        raise ArgumentError("fullgrad explains one picture input [B, C, H, W], not a tuple of inputs")
    check_image_batch(x)
    target = as_target(target)
    layers = bias_layers(model)
    biases = dict(layers)
    size = x.shape[-2:]
    with Recorder(model, [n for n, _ in layers], output=output, input_grad=True) as rec:
        out = rec.forward(x)
        scores = target_scores(target, out, batch_size(x))
        columns = [scores] if scores.dim() == 1 else list(scores.unbind(1))
        maps = []
        for k, column in enumerate(columns):
            grads = rec.gradients(column, input=True, retain_graph=k < len(columns) - 1)
            with torch.no_grad():
                total = scaled_channels((rec.input.detach() * grads["input"]).abs(), size).sum(1)
                for name in rec.names:
                    bias = biases[name].to(grads[name])[None, :, None, None]
                    total = total + scaled_channels((bias * grads[name]).abs(), size).sum(1)
            maps.append(total)
    return maps[0] if scores.dim() == 1 else torch.stack(maps, 1)

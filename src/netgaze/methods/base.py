"""Shared machinery of the methods: target scores per sample, CAM assembly, upsampling."""
from __future__ import annotations

from typing import Callable, Sequence

import torch
import torch.nn as nn
import torch.nn.functional as F

from netgaze import layouts
from netgaze.layers import LayerRef
from netgaze.layouts import LayoutArg, ReshapeArg
from netgaze.recorder import OutputSelector, Recorder, RecorderError
from netgaze.targets import TargetLike, TopClass, as_target

# (activations [B, C, h, w], gradients [B, C, h, w]) -> map [B, h, w]
CamFormula = Callable[[torch.Tensor, torch.Tensor], torch.Tensor]


def target_scores(target, output: torch.Tensor, batch: int) -> torch.Tensor:
    """Scores [B] or [B, K] of a target on an output, checked against the batch size."""
    scores = target(output)
    if scores.dim() not in (1, 2) or scores.shape[0] != batch:
        raise RecorderError(f"the target gave scores of shape {tuple(scores.shape)} for a batch of {batch}; "
                            "a target must give one score per sample")
    return scores


def upsample(maps: torch.Tensor, size: Sequence[int]) -> torch.Tensor:
    """Bilinear resize of [B, h, w] or [B, K, h, w] maps to ``size`` (no normalisation)."""
    if tuple(maps.shape[-2:]) == tuple(size):
        return maps
    flat = maps if maps.dim() == 4 else maps[:, None]
    up = F.interpolate(flat, size=tuple(size), mode="bilinear", align_corners=False)
    return up if maps.dim() == 4 else up[:, 0]


def check_image_batch(x: torch.Tensor) -> None:
    if not isinstance(x, torch.Tensor) or x.dim() != 4:
        shape = tuple(x.shape) if isinstance(x, torch.Tensor) else type(x).__name__
        raise ValueError(f"x must be an image batch [B, C, H, W], got {shape}")


def layer_cams(model: nn.Module, x: torch.Tensor, layer: LayerRef | Sequence[LayerRef],
               target: TargetLike, formula: CamFormula, *, output: OutputSelector = None,
               layout: LayoutArg = None, reshape: ReshapeArg = None
               ) -> torch.Tensor | dict[str, torch.Tensor]:
    """Gradient-weighted CAMs of one or many layers from one forward and one backward pass.

    Returns [B, H, W] (or [B, K, H, W] for a K-score target) at the input size for one
    layer, or a dict name -> map for a list of layers. Layer outputs laid out channels
    last or as tokens are read as [B, C, h, w] (``netgaze.layouts``).
    """
    check_image_batch(x)
    target = as_target(target)
    many = isinstance(layer, (list, tuple))
    with Recorder(model, list(layer) if many else [layer], output=output, input_shape=x.shape) as rec:
        out = rec.forward(x)
        scores = target_scores(target, out, x.shape[0])
        readers = layer_readers(rec, x, layout, reshape)
        columns = [scores] if scores.dim() == 1 else list(scores.unbind(1))
        per_column = []
        for k, column in enumerate(columns):
            grads = rec.gradients(column, retain_graph=k < len(columns) - 1)
            per_column.append({n: _cam(formula, readers[n](rec.activations[n]), readers[n](grads[n]), n)
                               for n in rec.names})
        maps = {n: (per_column[0][n] if scores.dim() == 1 else torch.stack([c[n] for c in per_column], 1))
                for n in rec.names}
    maps = {n: upsample(m, x.shape[-2:]) for n, m in maps.items()}
    return maps if many else next(iter(maps.values()))


def layer_readers(rec: Recorder, x: torch.Tensor, layout: LayoutArg, reshape: ReshapeArg) -> dict:
    """Per recorded layer, the function that reads its output as [B, C, h, w]."""
    return {name: layouts.reader(rec.activations[name].shape, x.shape[-2:], name=name, module=module,
                                 model=rec.model, layout=layout, reshape=reshape)
            for name, module in rec.layers}


def _cam(formula: CamFormula, activations: torch.Tensor, grads: torch.Tensor, name: str) -> torch.Tensor:
    if activations.dim() != 4:
        raise RecorderError(f"layer {name!r} gives shape {tuple(activations.shape)} after reshape=; "
                            "CAM methods need [B, C, h, w]")
    with torch.no_grad():
        return formula(activations.detach(), grads)


def fixed_target(model: nn.Module, x: torch.Tensor, target: TargetLike, output: OutputSelector):
    """The target resolved on the clean input (top class -> explicit classes)."""
    target = as_target(target)
    if not isinstance(target, TopClass):
        return target
    with Recorder(model, [], output=output, grads=False) as rec:
        out = rec.forward(x)
    return target.resolve(out)

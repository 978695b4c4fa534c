"""Shared machinery of the methods: target scores per sample, CAM assembly, upsampling."""
from __future__ import annotations

from typing import Callable, Sequence

import torch
import torch.nn as nn
import torch.nn.functional as F

from netgaze.core import layouts
from netgaze.errors import ArgumentError
from netgaze.core.inputs import Inputs, as_tuple, batch_size, check_inputs, is_multi, picture_indices, sources
from netgaze.core.layers import LayerRef
from netgaze.core.layouts import LayoutArg, ReshapeArg
from netgaze.core.recorder import OutputSelector, Recorder, RecorderError
from netgaze.core.targets import TargetLike, TopClass, as_target

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
        raise ArgumentError(f"x must be an image batch [B, C, H, W], got {shape}")


def layer_cams(model: nn.Module, x: Inputs, layer: LayerRef | Sequence[LayerRef],
               target: TargetLike, formula: CamFormula, *, output: OutputSelector = None,
               layout: LayoutArg = None, reshape: ReshapeArg = None
               ) -> torch.Tensor | dict[str, torch.Tensor]:
    """Gradient-weighted CAMs of one or many layers from one forward and one backward pass.

    Returns [B, H, W] (or [B, K, H, W] for a K-score target) at the input size for one
    layer, or a dict name -> map for a list of layers. With several inputs (a tuple
    ``x``) each map takes the size of the picture input its layer is computed from.
    Layer outputs laid out channels last or as tokens are read as [B, C, h, w]
    (``netgaze.core.layouts``).
    """
    check_inputs(x)
    target = as_target(target)
    many = isinstance(layer, (list, tuple))
    with Recorder(model, list(layer) if many else [layer], output=output,
                  input_grad=needs_sources(x), input_shape=picture_shape(x)) as rec:
        out = rec.forward(x)
        sizes = {n: map_size(x, rec, n) for n in rec.names}
        scores = target_scores(target, out, batch_size(x))
        readers = layer_readers(rec, sizes, layout, reshape)
        columns = [scores] if scores.dim() == 1 else list(scores.unbind(1))
        per_column = []
        for k, column in enumerate(columns):
            grads = rec.gradients(column, input=False, retain_graph=k < len(columns) - 1)
            per_column.append({n: _cam(formula, readers[n](rec.activations[n]), readers[n](grads[n]), n)
                               for n in rec.names})
        maps = {n: (per_column[0][n] if scores.dim() == 1 else torch.stack([c[n] for c in per_column], 1))
                for n in rec.names}
    maps = {n: upsample(m, sizes[n]) for n, m in maps.items()}
    return maps if many else next(iter(maps.values()))


def needs_sources(x: Inputs) -> bool:
    """Several picture inputs of different sizes: the layer's source input must be traced."""
    return is_multi(x) and len({tuple(x[i].shape[-2:]) for i in picture_indices(x)}) > 1


def source_picture(x: Inputs, rec: Recorder, name: str) -> int:
    """Position of the picture input a recorded layer is computed from (0 for one tensor)."""
    if not is_multi(x):
        return 0
    pictures = picture_indices(x)
    if not pictures:
        raise RecorderError("CAM methods need a picture input [B, C, H, W]; none of the inputs is one")
    if not needs_sources(x):
        return pictures[0]
    found = [i for i in sources(rec.activations[name], rec.inputs) if i in pictures]
    if not found:
        raise RecorderError(f"layer {name!r} is computed from none of the picture inputs")
    return found[0]


def map_size(x: Inputs, rec: Recorder, name: str) -> tuple[int, int]:
    """The size a layer's map is upsampled to: its picture input's height and width."""
    return tuple(as_tuple(x)[source_picture(x, rec, name)].shape[-2:])


def picture_shape(x: Inputs) -> torch.Size:
    """The shape of the (first) picture input: what integer layer references (stages) are resolved for."""
    if not is_multi(x):
        return x.shape
    pictures = picture_indices(x)
    return x[pictures[0]].shape if pictures else as_tuple(x)[0].shape


def layer_readers(rec: Recorder, sizes: dict[str, tuple[int, int]], layout: LayoutArg, reshape: ReshapeArg) -> dict:
    """Per recorded layer, the function that reads its output as [B, C, h, w] (``sizes``: its picture's size)."""
    return {name: layouts.reader(rec.activations[name].shape, sizes[name], name=name, module=module,
                                 model=rec.model, layout=layout, reshape=reshape)
            for name, module in rec.layers}


def _cam(formula: CamFormula, activations: torch.Tensor, grads: torch.Tensor, name: str) -> torch.Tensor:
    if activations.dim() != 4:
        raise RecorderError(f"layer {name!r} gives shape {tuple(activations.shape)} after reshape=; "
                            "CAM methods need [B, C, h, w]")
    with torch.no_grad():
        return formula(activations.detach(), grads)


def fixed_target(model: nn.Module, x: Inputs, target: TargetLike, output: OutputSelector):
    """The target resolved on the clean input (top class -> explicit classes)."""
    target = as_target(target)
    if not isinstance(target, TopClass):
        return target
    with Recorder(model, [], output=output, grads=False) as rec:
        out = rec.forward(x)
    return target.resolve(out)


# activations [B, C, h, w] -> map [B, h, w]
ActivationFormula = Callable[[torch.Tensor], torch.Tensor]


def activation_cams(model: nn.Module, x: Inputs, layer: LayerRef | Sequence[LayerRef],
                    formula: ActivationFormula, *, output: OutputSelector = None,
                    layout: LayoutArg = None, reshape: ReshapeArg = None
                    ) -> torch.Tensor | dict[str, torch.Tensor]:
    """Maps computed from layer activations alone (EigenCAM): one forward pass, no backward.

    Same layers, layouts, several inputs and return values as ``layer_cams``; no target.
    """
    check_inputs(x)
    many = isinstance(layer, (list, tuple))
    traced = needs_sources(x)
    with Recorder(model, list(layer) if many else [layer], output=output, grads=traced, input_grad=traced,
                  input_shape=picture_shape(x)) as rec:
        rec.forward(x)
        sizes = {n: map_size(x, rec, n) for n in rec.names}
        readers = layer_readers(rec, sizes, layout, reshape)
        maps = {}
        for n in rec.names:
            activations = readers[n](rec.activations[n].detach())
            if activations.dim() != 4:
                raise RecorderError(f"layer {n!r} gives shape {tuple(activations.shape)} after reshape=; "
                                    "CAM methods need [B, C, h, w]")
            with torch.no_grad():
                maps[n] = formula(activations)
    maps = {n: upsample(m, sizes[n]) for n, m in maps.items()}
    return maps if many else next(iter(maps.values()))

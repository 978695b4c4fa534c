"""Convolution kernels as pictures (SPEC S6).

The first convolution's kernels [out, 1|3, k, k] are pictures in input space: shown as grey
or RGB tiles, each min-max normalised on its own (so a kernel's sign pattern, not its
norm, is what one sees). Deeper kernels have many input channels; they are shown per input
channel (one grey tile per (output, input) pair), the first ``max_inputs`` inputs of each.
"""
from __future__ import annotations

import numpy as np
import torch
import torch.nn as nn

from netgaze import viz
from netgaze.errors import ArgumentError
from netgaze.core.layers import LayerRef, conv_layer_names, resolve_layer


def filters(model: nn.Module, layer: LayerRef | None = None) -> torch.Tensor:
    """A conv layer's kernels, each min-max normalised to [0, 1].

    Args:
        model: any module with 2-D convolutions.
        layer: the conv layer (default: the first one).

    Returns:
        [out, in, kh, kw] in [0, 1] (a constant kernel becomes 0); for an RGB or grey first
        layer each row is directly a [C, kh, kw] picture.
    """
    if layer is None:
        names = conv_layer_names(model)
        if not names:
            raise ArgumentError("the model has no convolution layer")
        layer = names[0]
    name, module = resolve_layer(model, layer)
    weight = getattr(module, "weight", None)
    if not isinstance(weight, torch.Tensor) or weight.dim() != 4:
        raise ArgumentError(f"layer {name!r} has no 2-D convolution kernels (weight [out, in, kh, kw])")
    w = weight.detach().float().cpu()
    return viz.normalize(w.reshape(w.shape[0], -1)).view_as(w)


def filter_grid(model: nn.Module, layer: LayerRef | None = None, max_inputs: int = 16,
                max_outputs: int = 64, scale: int | None = None) -> np.ndarray:
    """The kernels as a labelled uint8 grid: one tile per kernel (1 or 3 inputs) or one row
    per output channel with a grey tile per input channel (deeper layers).

    Args:
        model: any module with 2-D convolutions.
        layer: the conv layer (default: the first one).
        max_inputs: input channels shown per output channel for deeper layers.
        max_outputs: output channels shown.
        scale: tile enlargement (default: about 24 pixels per tile).
    """
    w = filters(model, layer)[:max_outputs]
    out_ch, in_ch, kh, _ = w.shape
    scale = scale or max(1, 24 // kh)
    if in_ch in (1, 3):
        ncols = max(1, int(np.ceil(np.sqrt(out_ch))))
        return viz.grid(list(viz.to_uint8(w)), ncols=ncols, scale=scale)
    shown = min(in_ch, max_inputs)
    per_input = viz.normalize(w[:, :shown].reshape(out_ch * shown, -1)).view(out_ch * shown, 1, kh, -1)
    return viz.grid(list(viz.to_uint8(per_input)), ncols=shown, scale=scale,
                    row_labels=[str(o) for o in range(out_ch)], col_labels=[f"in {i}" for i in range(shown)])


__all__ = ["filters", "filter_grid"]

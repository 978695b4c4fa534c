"""ShapleyCAM (Cai 2025): Grad-CAM's channel weights corrected by the second-order term of the
target's Taylor expansion, ``mean(g - H A / 2)``, a Shapley-value reading of CAM."""
from __future__ import annotations

from typing import Sequence

import torch
import torch.nn as nn

from netgaze.core.inputs import Inputs, batch_size, check_inputs
from netgaze.core.layers import LayerRef
from netgaze.core.layouts import LayoutArg, ReshapeArg
from netgaze.core.recorder import OutputSelector, Recorder, RecorderError
from netgaze.core.targets import TargetLike, as_target
from netgaze.methods.templates import (layer_readers, map_size, needs_sources, picture_shape,
                                       target_scores, upsample)


def shapley_formula(activations: torch.Tensor, grads: torch.Tensor, hvp: torch.Tensor) -> torch.Tensor:
    """``relu(sum_c mean_hw(g_c - 0.5 (H A)_c) A_c)``, all [B, C, h, w]."""
    weights = (grads - 0.5 * hvp).mean(dim=(2, 3), keepdim=True)
    return (weights * activations).sum(dim=1).clamp(min=0)


def shapleycam(model: nn.Module, x: Inputs, layer: LayerRef | Sequence[LayerRef] = -1,
               target: TargetLike = None, *, output: OutputSelector = None,
               layout: LayoutArg = None, reshape: ReshapeArg = None
               ) -> torch.Tensor | dict[str, torch.Tensor]:
    """ShapleyCAM maps; same arguments and return values as ``gradcam``.

    ``H A`` is the Hessian of the score with respect to the layer's output times that output
    (one double-backward pass per layer). Through ReLU networks with a logit target the
    Hessian is zero almost everywhere and the map equals Grad-CAM; it differs where the
    network or target is curved (GELU, softmax, attention). Maps are ReLU'd, not normalised.
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
        if not scores.requires_grad:
            raise RecorderError(f"the target is not connected to layer(s) {rec.names}")
        acts = [rec.activations[n] for n in rec.names]
        per_column = []
        for column in columns:
            grads = torch.autograd.grad(column.sum(), acts, create_graph=True, allow_unused=True)
            maps = {}
            for name, a, g in zip(rec.names, acts, grads):
                if g is None:
                    raise RecorderError(f"the target is not connected to layer {name!r}")
                hvp = torch.autograd.grad(g, a, grad_outputs=a.detach(), retain_graph=True,
                                          allow_unused=True)[0] if g.requires_grad else None
                hvp = torch.zeros_like(a) if hvp is None else hvp
                read = readers[name]
                activations = read(a.detach())
                if activations.dim() != 4:
                    raise RecorderError(f"layer {name!r} gives shape {tuple(activations.shape)} after "
                                        "reshape=; CAM methods need [B, C, h, w]")
                maps[name] = shapley_formula(activations, read(g.detach()), read(hvp.detach()))
            per_column.append(maps)
        result = {n: (per_column[0][n] if scores.dim() == 1 else torch.stack([c[n] for c in per_column], 1))
                  for n in rec.names}
    result = {n: upsample(m, sizes[n]) for n, m in result.items()}
    return result if many else next(iter(result.values()))

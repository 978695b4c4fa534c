"""Grad-CAM++ (Chattopadhyay et al. 2018)."""
from __future__ import annotations

from typing import Sequence

import torch
import torch.nn as nn

from netgaze.core.layers import LayerRef
from netgaze.core.layouts import LayoutArg, ReshapeArg
from netgaze.methods.eigencam import eigen_smoothed
from netgaze.methods.templates import layer_cams
from netgaze.core.recorder import OutputSelector
from netgaze.core.targets import TargetLike


def gradcam_pp_terms(activations: torch.Tensor, grads: torch.Tensor) -> torch.Tensor:
    """Per-channel terms [B, C, h, w]; the map is their channel sum, ReLU'd."""
    g2, g3 = grads.pow(2), grads.pow(3)
    denominator = 2 * g2 + activations.sum(dim=(2, 3), keepdim=True) * g3
    alpha = g2 / torch.where(denominator != 0, denominator, torch.ones_like(denominator))
    weights = (alpha * grads.clamp(min=0)).sum(dim=(2, 3), keepdim=True)
    return weights * activations


def gradcam_pp_formula(activations: torch.Tensor, grads: torch.Tensor) -> torch.Tensor:
    return gradcam_pp_terms(activations, grads).sum(dim=1).clamp(min=0)


def gradcam_pp(model: nn.Module, x: torch.Tensor, layer: LayerRef | Sequence[LayerRef] = -1,
               target: TargetLike = None, *, output: OutputSelector = None, eigen_smooth: bool = False,
               layout: LayoutArg = None, reshape: ReshapeArg = None
               ) -> torch.Tensor | dict[str, torch.Tensor]:
    """Grad-CAM++ maps; same arguments and return values as ``gradcam``.

    Uses the paper's closed form for an exponential of the score (higher derivatives as
    powers of the first), as the reference implementations do; alpha is 0 where its
    denominator vanishes.
    """
    formula = eigen_smoothed(gradcam_pp_terms) if eigen_smooth else gradcam_pp_formula
    return layer_cams(model, x, layer, target, formula, output=output,
                      layout=layout, reshape=reshape)

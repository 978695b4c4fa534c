"""FEM, the Feature Explanation Method (Fuad et al. 2020): channels weighted by how often they fire
far above their own mean."""
from __future__ import annotations

from typing import Sequence

import torch
import torch.nn as nn

from netgaze.core.inputs import Inputs
from netgaze.core.layers import LayerRef
from netgaze.core.layouts import LayoutArg, ReshapeArg
from netgaze.core.recorder import OutputSelector
from netgaze.core.targets import TargetLike
from netgaze.errors import ArgumentError
from netgaze.methods.templates import activation_cams


def fem_formula(activations: torch.Tensor, k: float = 2.0) -> torch.Tensor:
    """[B, C, h, w] -> [B, h, w]: ``relu(sum_c w_c A_c)``, ``w_c`` the share of positions where
    ``A_c > mean(A_c) + k std(A_c)`` (population std over the positions)."""
    mean = activations.mean(dim=(2, 3), keepdim=True)
    std = activations.std(dim=(2, 3), keepdim=True, correction=0)
    weights = (activations > mean + k * std).to(activations.dtype).mean(dim=(2, 3), keepdim=True)
    return (weights * activations).sum(dim=1).clamp(min=0)


def fem(model: nn.Module, x: Inputs, layer: LayerRef | Sequence[LayerRef] = -1,
        target: TargetLike = None, *, k: float = 2.0, output: OutputSelector = None,
        layout: LayoutArg = None, reshape: ReshapeArg = None
        ) -> torch.Tensor | dict[str, torch.Tensor]:
    """FEM maps; same arguments and return values as ``gradcam``, plus ``k`` (the k-sigma rule).

    Class-agnostic and gradient-free: ``target`` is accepted for the common signature and not
    used. A channel's weight is the fraction of its positions above ``mean + k * std`` (a
    channel that fires uniformly weighs 0); the map is ReLU'd, not normalised, upsampled
    bilinearly, as pytorch-grad-cam's ``FEM`` before its min-max scaling.
    """
    if not isinstance(k, (int, float)) or isinstance(k, bool) or not k == k:
        raise ArgumentError(f"k must be a number of standard deviations, got {k!r}")
    return activation_cams(model, x, layer, lambda a: fem_formula(a, float(k)),
                           output=output, layout=layout, reshape=reshape)

"""XGrad-CAM (Fu et al. 2020): activation-weighted average of the gradients."""
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

EPS = 1e-7


def xgradcam_terms(activations: torch.Tensor, grads: torch.Tensor) -> torch.Tensor:
    """Per-channel terms [B, C, h, w]; the map is their channel sum, ReLU'd."""
    total = activations.sum(dim=(2, 3), keepdim=True)
    weights = (grads * activations).sum(dim=(2, 3), keepdim=True) / (total + EPS)
    return weights * activations


def xgradcam_formula(activations: torch.Tensor, grads: torch.Tensor) -> torch.Tensor:
    return xgradcam_terms(activations, grads).sum(dim=1).clamp(min=0)


def xgradcam(model: nn.Module, x: torch.Tensor, layer: LayerRef | Sequence[LayerRef] = -1,
             target: TargetLike = None, *, output: OutputSelector = None, eigen_smooth: bool = False,
             layout: LayoutArg = None, reshape: ReshapeArg = None
             ) -> torch.Tensor | dict[str, torch.Tensor]:
    """XGrad-CAM maps; same arguments and return values as ``gradcam``."""
    formula = eigen_smoothed(xgradcam_terms) if eigen_smooth else xgradcam_formula
    return layer_cams(model, x, layer, target, formula, output=output,
                      layout=layout, reshape=reshape)

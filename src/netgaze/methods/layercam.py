"""LayerCAM (Jiang et al. 2021): positive gradients weight each location."""
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


def layercam_terms(activations: torch.Tensor, grads: torch.Tensor) -> torch.Tensor:
    """Per-channel terms [B, C, h, w]; the map is their channel sum, ReLU'd."""
    return grads.clamp(min=0) * activations


def layercam_formula(activations: torch.Tensor, grads: torch.Tensor) -> torch.Tensor:
    return layercam_terms(activations, grads).sum(dim=1).clamp(min=0)


def layercam(model: nn.Module, x: torch.Tensor, layer: LayerRef | Sequence[LayerRef] = -1,
             target: TargetLike = None, *, output: OutputSelector = None, eigen_smooth: bool = False,
             layout: LayoutArg = None, reshape: ReshapeArg = None
             ) -> torch.Tensor | dict[str, torch.Tensor]:
    """LayerCAM maps; same arguments and return values as ``gradcam``.

    Meant for shallow layers too, where Grad-CAM's averaged weights blur out.
    """
    formula = eigen_smoothed(layercam_terms) if eigen_smooth else layercam_formula
    return layer_cams(model, x, layer, target, formula, output=output,
                      layout=layout, reshape=reshape)

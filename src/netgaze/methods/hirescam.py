"""HiResCAM (Draelos & Carin 2020): gradients multiply activations element-wise, then sum."""
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


def hirescam_terms(activations: torch.Tensor, grads: torch.Tensor) -> torch.Tensor:
    """Per-channel terms [B, C, h, w]; the map is their channel sum, ReLU'd."""
    return grads * activations


def hirescam_formula(activations: torch.Tensor, grads: torch.Tensor) -> torch.Tensor:
    return hirescam_terms(activations, grads).sum(dim=1).clamp(min=0)


def hirescam(model: nn.Module, x: torch.Tensor, layer: LayerRef | Sequence[LayerRef] = -1,
             target: TargetLike = None, *, output: OutputSelector = None, eigen_smooth: bool = False,
             layout: LayoutArg = None, reshape: ReshapeArg = None
             ) -> torch.Tensor | dict[str, torch.Tensor]:
    """HiResCAM maps; same arguments and return values as ``gradcam``.

    Unlike Grad-CAM it does not average the gradients, so the map shows exactly which
    locations raise the score (for a final linear layer after global average pooling it
    equals Grad-CAM).
    """
    formula = eigen_smoothed(hirescam_terms) if eigen_smooth else hirescam_formula
    return layer_cams(model, x, layer, target, formula, output=output,
                      layout=layout, reshape=reshape)

"""Grad-CAM element-wise (pytorch-grad-cam's GradCAMElementWise): ReLU of gradients times activations, summed."""
from __future__ import annotations

from typing import Sequence

import torch
import torch.nn as nn

from netgaze.core.inputs import Inputs
from netgaze.core.layers import LayerRef
from netgaze.core.layouts import LayoutArg, ReshapeArg
from netgaze.core.recorder import OutputSelector
from netgaze.core.targets import TargetLike
from netgaze.methods.eigencam import eigen_smoothed
from netgaze.methods.templates import layer_cams


def gradcam_elementwise_terms(activations: torch.Tensor, grads: torch.Tensor) -> torch.Tensor:
    """Per-channel terms [B, C, h, w]; the map is their channel sum."""
    return (grads * activations).clamp(min=0)


def gradcam_elementwise_formula(activations: torch.Tensor, grads: torch.Tensor) -> torch.Tensor:
    return gradcam_elementwise_terms(activations, grads).sum(dim=1)


def gradcam_elementwise(model: nn.Module, x: Inputs, layer: LayerRef | Sequence[LayerRef] = -1,
                        target: TargetLike = None, *, output: OutputSelector = None, eigen_smooth: bool = False,
                        layout: LayoutArg = None, reshape: ReshapeArg = None
                        ) -> torch.Tensor | dict[str, torch.Tensor]:
    """Grad-CAM element-wise maps; same arguments and return values as ``gradcam``.

    Like HiResCAM, but each channel's product ``gradient * activation`` is ReLU'd before
    the channel sum, so negative evidence in one channel cannot cancel another's.
    """
    formula = eigen_smoothed(gradcam_elementwise_terms) if eigen_smooth else gradcam_elementwise_formula
    return layer_cams(model, x, layer, target, formula, output=output,
                      layout=layout, reshape=reshape)

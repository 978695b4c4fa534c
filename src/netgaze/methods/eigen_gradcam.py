"""Eigen-Grad-CAM (pytorch-grad-cam): EigenCAM of the activations times their gradients."""
from __future__ import annotations

from typing import Sequence

import torch
import torch.nn as nn

from netgaze.core.inputs import Inputs
from netgaze.core.layers import LayerRef
from netgaze.core.layouts import LayoutArg, ReshapeArg
from netgaze.core.recorder import OutputSelector
from netgaze.core.targets import TargetLike
from netgaze.methods.eigencam import principal_projection
from netgaze.methods.templates import layer_cams


def eigen_gradcam_formula(activations: torch.Tensor, grads: torch.Tensor) -> torch.Tensor:
    return principal_projection(grads * activations).clamp(min=0)


def eigen_gradcam(model: nn.Module, x: Inputs, layer: LayerRef | Sequence[LayerRef] = -1,
                  target: TargetLike = None, *, output: OutputSelector = None,
                  layout: LayoutArg = None, reshape: ReshapeArg = None
                  ) -> torch.Tensor | dict[str, torch.Tensor]:
    """Eigen-Grad-CAM maps; same arguments and return values as ``gradcam``.

    The first principal component of ``gradients * activations`` (centred over the
    positions, sign fixed as in ``eigencam``), ReLU'd, not normalised.
    """
    return layer_cams(model, x, layer, target, eigen_gradcam_formula, output=output,
                      layout=layout, reshape=reshape)

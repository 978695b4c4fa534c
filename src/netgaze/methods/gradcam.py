"""Grad-CAM (Selvaraju et al. 2017): channel weights are the spatially averaged gradients."""
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


def gradcam_terms(activations: torch.Tensor, grads: torch.Tensor) -> torch.Tensor:
    """Per-channel terms [B, C, h, w]; the map is their channel sum, ReLU'd."""
    weights = grads.mean(dim=(2, 3), keepdim=True)
    return weights * activations


def gradcam_formula(activations: torch.Tensor, grads: torch.Tensor) -> torch.Tensor:
    return gradcam_terms(activations, grads).sum(dim=1).clamp(min=0)


def gradcam(model: nn.Module, x: torch.Tensor, layer: LayerRef | Sequence[LayerRef] = -1,
            target: TargetLike = None, *, output: OutputSelector = None, eigen_smooth: bool = False,
            layout: LayoutArg = None, reshape: ReshapeArg = None
            ) -> torch.Tensor | dict[str, torch.Tensor]:
    """Grad-CAM of one layer ([B, H, W]) or of many layers at once (dict name -> map).

    Many layers cost one forward and one backward pass. Maps are ReLU'd as in the paper,
    not normalised, and bilinearly upsampled to the input size.

    Args:
        model: any module; left exactly as found.
        x: image batch [B, C, H, W].
        layer: a dotted name, a module, a negative stage index (-1: the output of the
            last spatial stage, see ``netgaze.core.stages``), or a list of those.
        target: None (top class), an int / list of ints, or a ``netgaze.core.targets`` target.
        output: selects the explained tensor of a tuple/dict output (see ``Recorder``).
        layout: how layer outputs are laid out, ``"nchw"``, ``"nhwc"`` or ``"tokens"``
            (one value, or a dict per layer name); None detects it (``netgaze.core.layouts``).
        reshape: a callable ``tensor -> [B, C, h, w]`` (or a dict per layer) for layouts
            detection cannot read; applied to activations and gradients alike.
        eigen_smooth: the first principal component of the per-channel terms ``w_c A_c``
            instead of their sum (pytorch-grad-cam's ``eigen_smooth``; also on Grad-CAM++,
            HiResCAM, LayerCAM, XGrad-CAM and element-wise Grad-CAM). Test-time augmentation
            for any method: ``ng.augmented``.
    """
    formula = eigen_smoothed(gradcam_terms) if eigen_smooth else gradcam_formula
    return layer_cams(model, x, layer, target, formula, output=output,
                      layout=layout, reshape=reshape)

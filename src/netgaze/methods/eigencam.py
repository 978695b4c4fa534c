"""EigenCAM (Muhammad & Yeasin 2020): the first principal component of a layer's activations."""
from __future__ import annotations

from typing import Sequence

import torch
import torch.nn as nn

from netgaze.core.inputs import Inputs
from netgaze.core.layers import LayerRef
from netgaze.core.layouts import LayoutArg, ReshapeArg
from netgaze.core.recorder import OutputSelector
from netgaze.core.targets import TargetLike
from netgaze.methods.templates import activation_cams


def principal_projection(maps: torch.Tensor) -> torch.Tensor:
    """[B, C, h, w] -> [B, h, w]: each position's channel vector, centred over the positions,
    projected on the first principal direction (the top right singular vector).

    The SVD runs in float64. Its sign is fixed so that the projection correlates positively
    with the channel sum of the centred maps (the direction's entries sum to >= 0); the
    peers leave it to the SVD routine.
    """
    b, c, h, w = maps.shape
    rows = maps.flatten(2).transpose(1, 2).double()               # [B, hw, C]
    rows = torch.nan_to_num(rows)
    rows = rows - rows.mean(dim=1, keepdim=True)
    _, _, vh = torch.linalg.svd(rows, full_matrices=False)
    direction = vh[:, 0, :]                                         # [B, C]
    sign = torch.where(direction.sum(1) < 0, -1.0, 1.0).to(direction)
    projection = (rows @ (direction * sign[:, None])[:, :, None])[:, :, 0]
    return projection.view(b, h, w).to(maps.dtype)


def eigen_smoothed(terms):
    """A CAM formula from a per-channel terms formula ``(A, G) -> [B, C, h, w]``: the terms' first
    principal component (``principal_projection``), ReLU'd, instead of their channel sum
    (pytorch-grad-cam's ``eigen_smooth``: less noise, same weighting)."""
    def formula(activations: torch.Tensor, grads: torch.Tensor) -> torch.Tensor:
        return principal_projection(terms(activations, grads)).clamp(min=0)
    return formula


def eigencam_formula(activations: torch.Tensor) -> torch.Tensor:
    return principal_projection(activations).clamp(min=0)


def eigencam(model: nn.Module, x: Inputs, layer: LayerRef | Sequence[LayerRef] = -1,
             target: TargetLike = None, *, output: OutputSelector = None,
             layout: LayoutArg = None, reshape: ReshapeArg = None
             ) -> torch.Tensor | dict[str, torch.Tensor]:
    """EigenCAM maps; same arguments and return values as ``gradcam``.

    Class-agnostic: ``target`` is accepted for the common signature and not used (no
    backward pass). The activations are centred over the positions before the SVD, as
    pytorch-grad-cam does; the map is ReLU'd, not normalised, and bilinearly upsampled.
    The sign of the component is fixed (see ``principal_projection``). For a rank-one
    activation ``a[c] * p[y, x]`` with ``sum(a) > 0`` the map is ``relu(|a| (p - mean(p)))``.
    """
    return activation_cams(model, x, layer, eigencam_formula, output=output, layout=layout, reshape=reshape)

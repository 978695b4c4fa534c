"""KPCA-CAM (Karmani et al. 2024): EigenCAM with kernel PCA, the first kernel principal component
of a layer's activations."""
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

KERNELS = ("sigmoid", "rbf", "poly", "linear", "cosine")


def _kernel(rows: torch.Tensor, kind: str, gamma: float | None) -> torch.Tensor:
    """[B, n, C] -> [B, n, n] with scikit-learn's defaults (gamma = 1/C, coef0 = 1, degree 3)."""
    g = 1.0 / rows.shape[-1] if gamma is None else gamma
    dots = rows @ rows.transpose(1, 2)
    if kind == "linear":
        return dots
    if kind == "sigmoid":
        return torch.tanh(g * dots + 1.0)
    if kind == "poly":
        return (g * dots + 1.0) ** 3
    if kind == "rbf":
        sq = (rows * rows).sum(-1)
        return torch.exp(-g * (sq[:, :, None] + sq[:, None, :] - 2 * dots).clamp(min=0))
    norms = rows.norm(dim=-1).clamp(min=1e-300)
    return dots / (norms[:, :, None] * norms[:, None, :])


def kernel_projection(maps: torch.Tensor, kernel: str = "sigmoid", gamma: float | None = None) -> torch.Tensor:
    """[B, C, h, w] -> [B, h, w]: each position's score on the first kernel principal component.

    Positions are centred over the picture, the kernel matrix is double-centred and its top
    eigenvector scaled by the square root of its eigenvalue (scikit-learn's ``KernelPCA``
    ``fit_transform``), in float64. The sign makes the component's largest-magnitude entry
    positive (scikit-learn's ``svd_flip`` rule).
    """
    b, c, h, w = maps.shape
    rows = torch.nan_to_num(maps.flatten(2).transpose(1, 2).double())
    rows = rows - rows.mean(dim=1, keepdim=True)
    n = rows.shape[1]
    k = _kernel(rows, kernel, gamma)
    k = k - k.mean(1, keepdim=True) - k.mean(2, keepdim=True) + k.mean((1, 2), keepdim=True)
    values, vectors = torch.linalg.eigh(k)
    top, vector = values[:, -1].clamp(min=0), vectors[:, :, -1]                   # [B], [B, n]
    biggest = vector.gather(1, vector.abs().argmax(1, keepdim=True))[:, 0]
    vector = vector * torch.where(biggest < 0, -1.0, 1.0).to(vector)[:, None]
    projection = vector * top.sqrt()[:, None]
    return projection.view(b, h, w).to(maps.dtype) if n else maps.new_zeros(b, h, w)


def kpca_cam(model: nn.Module, x: Inputs, layer: LayerRef | Sequence[LayerRef] = -1,
             target: TargetLike = None, *, kernel: str = "sigmoid", gamma: float | None = None,
             output: OutputSelector = None, layout: LayoutArg = None, reshape: ReshapeArg = None
             ) -> torch.Tensor | dict[str, torch.Tensor]:
    """KPCA-CAM maps; same arguments and return values as ``gradcam``, plus ``kernel`` (one of
    sigmoid, rbf, poly, linear, cosine; scikit-learn's definitions) and ``gamma`` (default 1/C).

    Class-agnostic and gradient-free (``target`` is not used). The map is ReLU'd, not
    normalised, upsampled bilinearly. ``kernel="linear"`` gives EigenCAM's map up to the
    scale ``sqrt(eigenvalue)`` and the sign rule (see ``kernel_projection``).
    """
    if kernel not in KERNELS:
        raise ArgumentError(f"unknown kernel {kernel!r}; choose one of {', '.join(KERNELS)}")
    if gamma is not None and (not isinstance(gamma, (int, float)) or isinstance(gamma, bool) or not gamma > 0):
        raise ArgumentError(f"gamma must be a positive number, got {gamma!r}")
    return activation_cams(model, x, layer, lambda a: kernel_projection(a, kernel, gamma).clamp(min=0),
                           output=output, layout=layout, reshape=reshape)

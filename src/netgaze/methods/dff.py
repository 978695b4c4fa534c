"""Deep Feature Factorization (Collins et al. 2018): a non-negative matrix factorization of a layer's
activations over a batch; each factor is a concept (a channel vector) with a map per picture."""
from __future__ import annotations

from dataclasses import dataclass
from typing import Callable

import numpy as np
import torch
import torch.nn as nn

from netgaze.core.inputs import Inputs
from netgaze.core.layers import LayerRef
from netgaze.core.layouts import LayoutArg, ReshapeArg
from netgaze.core.recorder import OutputSelector
from netgaze.core.targets import TargetLike
from netgaze.errors import ArgumentError
from netgaze.methods.templates import activation_cams, upsample


@dataclass
class Factorization:
    """The concepts of one batch.

    Attributes:
        layer: the factorized layer's name.
        concepts: float [C, K], each concept's channel vector (the NMF basis plus the per-channel
            offset that made the activations non-negative), as pytorch-grad-cam returns them.
        factors: float [B, K, h, w], each concept's weight at each position of the layer's grid.
        maps: float [B, K, H, W], ``factors`` upsampled bilinearly to the pictures (raw, not scaled).
        scores: float [K, N] or None, ``head(concepts.T)``: what the model's head makes of each concept.
    """

    layer: str
    concepts: torch.Tensor
    factors: torch.Tensor
    maps: torch.Tensor
    scores: torch.Tensor | None


def dff(model: nn.Module, x: Inputs, layer: LayerRef = -1, target: TargetLike = None, *, n_components: int = 5,
        head: Callable[[torch.Tensor], torch.Tensor] | None = None, output: OutputSelector = None,
        layout: LayoutArg = None, reshape: ReshapeArg = None) -> Factorization:
    """Deep Feature Factorization of one layer over the batch ``x``.

    The activations [B, C, h, w] become a matrix [C, B h w], shifted per channel to be
    non-negative, and factorized as ``W H`` with scikit-learn's ``NMF(n_components,
    init="random", random_state=0)`` (pytorch-grad-cam's settings, so the numbers are its own).
    ``head`` (e.g. the classifier's last ``nn.Linear``) scores each concept's channel vector.
    Class-agnostic: ``target`` is accepted for the common signature and not used.
    """
    from sklearn.decomposition import NMF     # imported here: `import netgaze` does not pay for it

    if not isinstance(n_components, int) or isinstance(n_components, bool) or n_components < 1:
        raise ArgumentError(f"n_components must be a positive number of concepts, got {n_components!r}")
    if isinstance(layer, (list, tuple)):
        raise ArgumentError("dff factorizes one layer; give one name or stage index")
    recorded: dict[str, torch.Tensor] = {}

    def keep(activations: torch.Tensor) -> torch.Tensor:
        recorded["a"] = activations
        return activations[:, 0]
    name = next(iter(activation_cams(model, x, [layer], keep, output=output, layout=layout, reshape=reshape)))
    activations = recorded["a"].detach().float().cpu()
    b, c, h, w = activations.shape
    matrix = torch.nan_to_num(activations).transpose(0, 1).reshape(c, -1).numpy()
    offset = matrix.min(axis=1)
    nmf = NMF(n_components=n_components, init="random", random_state=0)
    basis = nmf.fit_transform(matrix - offset[:, None])
    factors = np.ascontiguousarray(nmf.components_.reshape(n_components, b, h, w).transpose(1, 0, 2, 3))
    factors = torch.from_numpy(factors).float()
    concepts = torch.from_numpy(basis + offset[:, None]).float()
    size = (x[0] if isinstance(x, tuple) else x).shape[-2:]
    scores = None
    if head is not None:
        with torch.no_grad():
            scores = head(concepts.T).detach().float().cpu()
    return Factorization(layer=name, concepts=concepts, factors=factors, maps=upsample(factors, size),
                         scores=scores)

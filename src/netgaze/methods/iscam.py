"""IS-CAM (Naidu et al. 2020): Score-CAM with masks scaled along an integration path, scores averaged."""
from __future__ import annotations

from typing import Sequence

import torch
import torch.nn as nn

from netgaze.core.inputs import Inputs
from netgaze.core.layers import LayerRef
from netgaze.core.layouts import LayoutArg, ReshapeArg
from netgaze.core.recorder import OutputSelector
from netgaze.core.targets import TargetLike
from netgaze.methods.masked_scores import iterated_score_cams


def iscam(model: nn.Module, x: Inputs, layer: LayerRef | Sequence[LayerRef] = -1, target: TargetLike = None, *,
          n: int = 10, batch_size: int = 64, output: OutputSelector = None, layout: LayoutArg = None,
          reshape: ReshapeArg = None) -> torch.Tensor | dict[str, torch.Tensor]:
    """IS-CAM maps [B, H, W] (a dict for a list of layers), gradient-free and deterministic.

    Like ``scorecam``, each channel's activation, upsampled and min-max scaled to [0, 1],
    masks the input; at step ``i = 1 .. n`` the mask is scaled by ``sum_{j<=i} j / n`` (the
    cumulative coefficients of torchcam's implementation of the paper's sum). The mean of
    the ``n`` scores, softmaxed over channels, weights the channels.

    Masks are scaled after upsampling (the paper, pytorch-grad-cam); torchcam scales on
    the layer's grid, then upsamples: the same where each channel's extremes lie on the
    grid's border.

    Args:
        n: integration steps (torchcam's default 10).
        batch_size: masked inputs per forward pass.
    """
    coefficients = torch.arange(1, n + 1, dtype=torch.float64).cumsum(0) / n

    def perturbation(it: int, _shape: torch.Size):
        scale = float(coefficients[it])

        def perturb(masks: torch.Tensor, _start: int) -> torch.Tensor:
            return masks * scale
        return perturb

    return iterated_score_cams(model, x, layer, target, perturbation, n, batch_size=batch_size, output=output,
                               layout=layout, reshape=reshape)

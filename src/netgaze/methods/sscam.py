"""SS-CAM (Wang et al. 2020): Score-CAM with Gaussian noise on the masks, scores averaged."""
from __future__ import annotations

from typing import Sequence

import torch
import torch.nn as nn

from netgaze.core.inputs import Inputs, as_tuple
from netgaze.core.layers import LayerRef
from netgaze.core.layouts import LayoutArg, ReshapeArg
from netgaze.core.recorder import OutputSelector
from netgaze.core.targets import TargetLike
from netgaze.methods.masked_scores import iterated_score_cams


def sscam(model: nn.Module, x: Inputs, layer: LayerRef | Sequence[LayerRef] = -1, target: TargetLike = None, *,
          n: int = 35, sigma: float = 2.0, seed: int | None = 0, generator: torch.Generator | None = None,
          batch_size: int = 64, output: OutputSelector = None, layout: LayoutArg = None,
          reshape: ReshapeArg = None) -> torch.Tensor | dict[str, torch.Tensor]:
    """SS-CAM maps [B, H, W] (a dict for a list of layers), gradient-free.

    Like ``scorecam``, each channel's activation, upsampled and min-max scaled to [0, 1],
    masks the input; here ``n`` times with Gaussian noise of standard deviation ``sigma``
    added to the mask (torchcam's defaults: 35 samples, sigma 2). The mean score, softmaxed
    over channels, weights the channels (baseline subtraction omitted: softmax ignores it).
    One noise draw [C, H, W] per sample is shared by every picture of the batch, so a batch
    equals its pictures one by one and a batch of one draws what torchcam draws.

    Masks are scaled after upsampling (the paper, pytorch-grad-cam); torchcam scales on
    the layer's grid, then upsamples: the same where each channel's extremes lie on the
    grid's border.

    Args:
        n: noisy copies of every mask.
        sigma: noise standard deviation, in units of the [0, 1] mask.
        seed: seed of the noise when no ``generator`` is given (None: torch's global generator).
        generator: the random generator to draw from (takes precedence over ``seed``).
        batch_size: masked inputs per forward pass.
    """
    if generator is None and seed is not None:
        generator = torch.Generator(device=as_tuple(x)[0].device).manual_seed(seed)
    start = generator.get_state() if generator is not None else None

    def restart() -> None:          # every layer draws the same noise: layers at once equal one at a time
        if start is not None:
            generator.set_state(start)

    def perturbation(_it: int, shape: torch.Size):
        noise = torch.randn(shape, generator=generator, device=as_tuple(x)[0].device) * sigma

        def perturb(masks: torch.Tensor, start: int) -> torch.Tensor:
            return masks + noise[start:start + len(masks)].to(masks.dtype)
        return perturb

    return iterated_score_cams(model, x, layer, target, perturbation, n, batch_size=batch_size, output=output,
                               layout=layout, reshape=reshape, restart=restart)

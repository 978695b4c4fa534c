"""Vanilla gradient (Simonyan et al. 2014)."""
from __future__ import annotations

import torch
import torch.nn as nn

from netgaze.errors import ArgumentError
from netgaze.core.inputs import Inputs, batch_size, check_inputs
from netgaze.methods.templates import target_scores
from netgaze.core.recorder import OutputSelector, Recorder
from netgaze.core.targets import TargetLike, as_target

Attribution = torch.Tensor | tuple[torch.Tensor | None, ...]


def input_gradient(model: nn.Module, x: Inputs, target: TargetLike = None, *,
                   output: OutputSelector = None, guided: bool = False) -> Attribution:
    """Gradient of each sample's target score w.r.t. its input, [B, C, H, W].

    With several inputs (a tuple ``x``), a tuple with one gradient per input (None for
    an integer input). With ``guided=True`` every ``nn.ReLU`` module lets only positive
    gradients through (guided backpropagation).
    """
    check_inputs(x)
    target = as_target(target)
    with Recorder(model, [], output=output, input_grad=True, guided=guided) as rec:
        out = rec.forward(x)
        scores = target_scores(target.resolve(out), out, batch_size(x))
        if scores.dim() != 1:
            raise ArgumentError("gradient methods explain one score per sample; use TopClass(1) or Class(...)")
        rec.guided(guided)
        return rec.gradients(scores)["input"]


def saliency(model: nn.Module, x: Inputs, target: TargetLike = None, *,
             output: OutputSelector = None) -> Attribution:
    """Raw (signed) input gradient [B, C, H, W]; take ``.abs().amax(1)`` for the classic map.

    Several inputs (a tuple ``x``) give a tuple of gradients, one per input.
    """
    return input_gradient(model, x, target, output=output)

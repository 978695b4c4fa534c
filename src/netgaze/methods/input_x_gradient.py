"""Input times gradient (Shrikumar et al. 2016)."""
from __future__ import annotations

import torch.nn as nn

from netgaze.core.inputs import Inputs, as_tuple, from_tuple, is_multi
from netgaze.core.recorder import OutputSelector
from netgaze.core.targets import TargetLike
from netgaze.methods.saliency import Attribution, input_gradient


def input_x_gradient(model: nn.Module, x: Inputs, target: TargetLike = None, *,
                     output: OutputSelector = None) -> Attribution:
    """``x * d score / d x``, [B, C, H, W], signed and not normalised (Captum's InputXGradient).

    Several inputs (a tuple ``x``) give a tuple, one attribution per input (None for an
    integer input). For a model linear in ``x`` without bias it sums to the score.
    """
    grads = as_tuple(input_gradient(model, x, target, output=output))
    return from_tuple([None if g is None else t * g for t, g in zip(as_tuple(x), grads)], is_multi(x))

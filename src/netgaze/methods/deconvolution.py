"""Deconvolution (Zeiler & Fergus 2014): ReLUs pass the positive part of the gradient, whatever their input."""
from __future__ import annotations

from contextlib import contextmanager
from typing import Any, Iterator

import torch
import torch.nn as nn

from netgaze.core.inputs import Inputs, batch_size, check_inputs
from netgaze.core.recorder import OutputSelector, Recorder
from netgaze.core.targets import TargetLike, as_target
from netgaze.errors import ArgumentError
from netgaze.methods.saliency import Attribution
from netgaze.methods.templates import target_scores


class _DeconvReLU(torch.autograd.Function):
    """relu forward; backward relu(grad), ignoring where the input was negative."""

    @staticmethod
    def forward(ctx: Any, x: torch.Tensor) -> torch.Tensor:
        return x.clamp(min=0)

    @staticmethod
    def backward(ctx: Any, grad: torch.Tensor) -> torch.Tensor:
        return grad.clamp(min=0)


@contextmanager
def _deconv_relus(model: nn.Module) -> Iterator[None]:
    """Every ``nn.ReLU`` module's output comes from ``_DeconvReLU`` of its input while inside.

    A forward pre-hook keeps the input (a copy goes to an in-place ReLU, so the kept input
    is the pre-activation) and a forward hook returns the replacement; every handle is
    removed on exit, also when the block raises. ReLUs called as functions are untouched.
    """
    handles = []
    kept: list[torch.Tensor] = []

    def before(module: nn.Module, inputs: tuple):
        kept.append(inputs[0])
        return (inputs[0].clone(),) + tuple(inputs[1:]) if module.inplace else None

    def after(module: nn.Module, inputs: tuple, out: torch.Tensor):
        return _DeconvReLU.apply(kept.pop())

    try:
        for module in model.modules():
            if isinstance(module, nn.ReLU):
                handles.append(module.register_forward_pre_hook(before))
                handles.append(module.register_forward_hook(after))
        yield
    finally:
        for handle in handles:
            handle.remove()


def deconvolution(model: nn.Module, x: Inputs, target: TargetLike = None, *,
                  output: OutputSelector = None) -> Attribution:
    """Deconvolution attributions [B, C, H, W], signed, not normalised (Captum's Deconvolution).

    Every ``nn.ReLU`` module passes ``relu(gradient)`` backwards regardless of its input
    (guided backprop also masks by the input); ReLUs called as functions backpropagate as
    usual, as in Captum. An in-place ReLU is fed a copy during the call, so a model that
    relies on the in-place side effect itself (not on the returned value) differs.
    Several inputs (a tuple ``x``) give a tuple, one attribution per input.
    """
    check_inputs(x)
    target = as_target(target)
    with Recorder(model, [], output=output, input_grad=True) as rec, _deconv_relus(model):
        out = rec.forward(x)
        scores = target_scores(target.resolve(out), out, batch_size(x))
        if scores.dim() != 1:
            raise ArgumentError("gradient methods explain one score per sample; use TopClass(1) or Class(...)")
        return rec.gradients(scores)["input"]

"""DeepLift's rescale rules (Shrikumar et al. 2017) on the activation and max-pool modules, as Captum
applies them, for a forward pass of ``cat([x, baseline])``: the first half of every batch is the
picture, the second its reference."""
from __future__ import annotations

from contextlib import contextmanager
from typing import Any, Iterator

import torch
import torch.nn as nn
import torch.nn.functional as F
from torch.nn.modules.utils import _pair

# Captum's SUPPORTED_NON_LINEAR, less Softmax, MaxPool1d and MaxPool3d (see ``rescale_rules``).
RESCALED = (nn.ReLU, nn.ELU, nn.LeakyReLU, nn.Sigmoid, nn.Tanh, nn.Softplus)


def _halves(t: torch.Tensor) -> torch.Tensor:
    """``t[:half] - t[half:]`` repeated on both halves: each row's difference to its reference."""
    first, second = t.chunk(2)
    difference = first - second
    return torch.cat([difference, difference])


def _rescaled(inp: torch.Tensor, out: torch.Tensor, eps: float) -> torch.Tensor:
    """``out`` whose gradient to ``inp`` is ``delta out / delta in`` (the plain derivative where
    ``|delta in| < eps``): the forward value is unchanged."""
    d_in, d_out = _halves(inp.detach()), _halves(out.detach())
    small = d_in.abs() < eps
    multiplier = d_out / torch.where(small, torch.ones_like(d_in), d_in)
    return torch.where(small, out, out.detach() + (inp - inp.detach()) * multiplier)


class _MaxPoolRule(torch.autograd.Function):
    """max_pool2d forward; backward Captum's DeepLift max-pool rule: a window's ``max(o, o_ref) - o_ref``
    goes back to the picture's argmax and ``o - max(o, o_ref)`` to the reference's, divided by
    delta in there. Two departures from Captum 0.9, both keeping the sum to ``delta out``:
    overlapping windows add up at a shared argmax (Captum's ``max_unpool2d`` keeps one), and where
    ``|delta in| < eps`` each row takes its own gradient (Captum takes the first row's, its
    issue #1276)."""

    @staticmethod
    def forward(ctx: Any, inp: torch.Tensor, module: nn.MaxPool2d, eps: float) -> torch.Tensor:
        ctx.args = (_pair(module.kernel_size), _pair(module.stride or module.kernel_size), _pair(module.padding),
                    _pair(module.dilation), module.ceil_mode)
        out, indices = F.max_pool2d(inp, *ctx.args[:4], ceil_mode=ctx.args[4], return_indices=True)
        ctx.eps = eps
        ctx.save_for_backward(inp, out, indices)
        return out

    @staticmethod
    def backward(ctx: Any, grad: torch.Tensor):
        inp, out, indices = ctx.saved_tensors
        kernel, stride, padding, dilation, ceil_mode = ctx.args
        picture, reference = out.chunk(2)
        highest = torch.max(picture, reference)
        d_out = torch.cat([highest - reference, picture - highest])
        back = torch.ops.aten.max_pool2d_with_indices_backward     # scatter-adds overlapping windows
        summed = sum(back(grad * d_out, inp, kernel, stride, padding, dilation, ceil_mode, indices).chunk(2))
        d_in = _halves(inp)
        small = d_in.abs() < ctx.eps
        plain = back(grad, inp, kernel, stride, padding, dilation, ceil_mode, indices)
        rule = torch.cat([summed, summed]) / torch.where(small, torch.ones_like(d_in), d_in)
        return torch.where(small, plain, rule), None, None


@contextmanager
def rescale_rules(model: nn.Module, eps: float = 1e-10) -> Iterator[None]:
    """While inside, every ``RESCALED`` activation module and every ``nn.MaxPool2d`` backpropagates
    DeepLift multipliers; the forward values are unchanged.

    A forward pre-hook keeps each call's input (an in-place module is fed a copy) and a forward
    hook returns the rescaled output, so a module called several times (resnet's shared ReLU)
    gets its rule at every call. Every handle is removed on exit, also when the block raises.
    Activations called as functions, ``nn.Softmax``, ``nn.GELU``, ``nn.SiLU`` and other pools
    backpropagate their plain gradient (Captum's rule list; it also rescales Softmax, MaxPool1d/3d).
    """
    handles = []
    kept: list[torch.Tensor] = []

    def before(module: nn.Module, inputs: tuple):
        kept.append(inputs[0])
        return (inputs[0].clone(),) + tuple(inputs[1:]) if getattr(module, "inplace", False) else None

    def after(module: nn.Module, inputs: tuple, out: torch.Tensor):
        inp = kept.pop()
        if not (torch.is_grad_enabled() and isinstance(out, torch.Tensor) and out.requires_grad):
            return None
        return _rescaled(inp, out, eps)

    def pool(module: nn.MaxPool2d, inputs: tuple, out: torch.Tensor):
        if module.return_indices or not (torch.is_grad_enabled() and inputs[0].requires_grad):
            return None
        return _MaxPoolRule.apply(inputs[0], module, eps)

    try:
        for module in model.modules():
            if isinstance(module, RESCALED):
                handles.append(module.register_forward_pre_hook(before))
                handles.append(module.register_forward_hook(after))
            elif isinstance(module, nn.MaxPool2d):
                handles.append(module.register_forward_hook(pool))
        yield
    finally:
        for handle in handles:
            handle.remove()

"""Calling any explanation method the same way and reducing its output to one map per image."""
from __future__ import annotations

import inspect
from typing import Callable, Union

import torch
import torch.nn as nn

from netgaze.errors import ArgumentError, ArgumentTypeError
from netgaze.core.layers import LayerRef
from netgaze.core.recorder import OutputSelector
from netgaze.core.targets import TargetLike

MethodLike = Union[str, Callable[..., torch.Tensor]]


def resolve_method(method: MethodLike) -> tuple[str, Callable[..., torch.Tensor], bool]:
    """``(name, function, takes_layer)`` for a method name of ``netgaze.methods.METHODS`` or a callable.

    A callable takes a layer when its signature has a ``layer`` parameter.
    """
    from netgaze.methods import METHODS

    if isinstance(method, str):
        if method not in METHODS:
            raise ArgumentError(f"unknown method {method!r}; valid: {', '.join(METHODS)}")
        fn = METHODS[method]
        name = method
    elif callable(method):
        fn = method
        name = getattr(method, "__name__", None) or getattr(getattr(method, "func", None), "__name__", "method")
    else:
        raise ArgumentTypeError(f"a method is a name or a callable, not {type(method).__name__}")
    try:
        takes_layer = "layer" in inspect.signature(fn).parameters
    except (TypeError, ValueError):
        takes_layer = False
    return name, fn, takes_layer


def as_map(attributions: torch.Tensor) -> torch.Tensor:
    """One map per image, [B, H, W].

    Per-channel attributions [B, C, H, W] (gradients, guided backprop) become the largest
    absolute value over channels (Simonyan et al. 2014); [B, H, W] maps pass unchanged.
    """
    if attributions.dim() == 4:
        return attributions.abs().amax(dim=1)
    if attributions.dim() == 3:
        return attributions
    raise ArgumentError(f"expected maps [B, H, W] or attributions [B, C, H, W], got shape {tuple(attributions.shape)}")


def explain(method: MethodLike, model: nn.Module, x: torch.Tensor, layer: LayerRef | None = -1,
            target: TargetLike = None, output: OutputSelector = None, *,
            layout=None, reshape=None) -> torch.Tensor:
    """Maps [B, H, W] of ``method`` on ``x``; ``layer`` (and the ``layout`` / ``reshape``
    overrides of ``netgaze.core.layouts``) are used only by methods that take a layer."""
    _, fn, takes_layer = resolve_method(method)
    if takes_layer and layer is not None:
        extra = {k: v for k, v in (("layout", layout), ("reshape", reshape)) if v is not None}
        result = fn(model, x, layer, target=target, output=output, **extra)
    else:
        result = fn(model, x, target=target, output=output)
    if isinstance(result, dict):
        raise ArgumentError("explain() takes one layer; the method returned maps of several layers")
    return as_map(result.detach())

"""Model inputs: one picture batch, or a tuple of tensors for models with several inputs.

A tuple ``(x1, x2, ...)`` means ``model(x1, x2, ...)`` (Captum's convention): two
pictures, a picture and a vector, a picture and integer codes. Every tensor has the
same batch size. Gradient methods then return one attribution per input (a tuple, with
None for an integer input, which has no gradient); CAM maps take the spatial size of
the picture input the explained layer is computed from.
"""
from __future__ import annotations

from typing import Callable, Sequence, Union

import torch

from netgaze.errors import ArgumentError

Inputs = Union[torch.Tensor, tuple[torch.Tensor, ...]]


def is_multi(x: Inputs) -> bool:
    """True for a tuple of inputs (``model(*x)``), False for one tensor."""
    return isinstance(x, tuple)


def as_tuple(x: Inputs) -> tuple[torch.Tensor, ...]:
    return x if isinstance(x, tuple) else (x,)


def from_tuple(parts: Sequence, multi: bool):
    """The inverse of ``as_tuple``: a tuple when the call had several inputs, else the one value."""
    return tuple(parts) if multi else parts[0]


def check_inputs(x: Inputs) -> None:
    """One picture batch [B, C, H, W], or a tuple of tensors sharing the batch size B."""
    if isinstance(x, tuple):
        if not x or not all(isinstance(t, torch.Tensor) and t.dim() >= 1 for t in x):
            raise ArgumentError("several inputs are a non-empty tuple of tensors with a batch axis, got "
                             f"{tuple(type(t).__name__ for t in x)}")
        sizes = {t.shape[0] for t in x}
        if len(sizes) != 1:
            raise ArgumentError(f"the inputs have different batch sizes {[t.shape[0] for t in x]}; "
                             "every input needs one row per sample")
        return
    if not isinstance(x, torch.Tensor) or x.dim() != 4:
        shape = tuple(x.shape) if isinstance(x, torch.Tensor) else type(x).__name__
        hint = (" (stack pictures into one batch, which torchvision's detectors also take; several model "
                "inputs go in a tuple)" if isinstance(x, list) else "")
        raise ArgumentError(f"x must be an image batch [B, C, H, W], got {shape}{hint}")


def batch_size(x: Inputs) -> int:
    return as_tuple(x)[0].shape[0]


def differentiable(t: torch.Tensor) -> bool:
    """Inputs with a gradient: floating point (integer codes have none)."""
    return t.is_floating_point() or t.is_complex()


def picture_indices(x: Inputs) -> list[int]:
    """Positions of the picture inputs ([B, C, H, W])."""
    return [i for i, t in enumerate(as_tuple(x)) if t.dim() == 4]


def repeat(x: Inputs, n: int) -> Inputs:
    """Each input repeated ``n`` times along the batch axis, copy after copy."""
    parts = [t.repeat(n, *[1] * (t.dim() - 1)) for t in as_tuple(x)]
    return from_tuple(parts, is_multi(x))


def map_differentiable(x: Inputs, fn: Callable[[int, torch.Tensor], torch.Tensor]) -> Inputs:
    """Apply ``fn(position, tensor)`` to each floating input; integer inputs pass unchanged."""
    parts = [fn(i, t) if differentiable(t) else t for i, t in enumerate(as_tuple(x))]
    return from_tuple(parts, is_multi(x))


def sources(tensor: torch.Tensor, inputs: Sequence[torch.Tensor]) -> list[int]:
    """Positions of the ``inputs`` (autograd leaves) that ``tensor`` was computed from.

    Walks ``tensor``'s autograd graph once; no extra forward or backward pass.
    """
    ids = {id(t): i for i, t in enumerate(inputs)}
    found: set[int] = set()
    seen: set[int] = set()
    stack = [tensor.grad_fn] if tensor.grad_fn is not None else []
    if tensor.grad_fn is None and id(tensor) in ids:
        return [ids[id(tensor)]]
    while stack:
        node = stack.pop()
        if node is None or id(node) in seen:
            continue
        seen.add(id(node))
        variable = getattr(node, "variable", None)
        if variable is not None and id(variable) in ids:
            found.add(ids[id(variable)])
        stack.extend(next_node for next_node, _ in node.next_functions)
    return sorted(found)

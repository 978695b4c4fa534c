"""Test-time augmentation for any method: the maps of flipped and rescaled copies of the pictures,
each mapped back onto the original picture and averaged (pytorch-grad-cam's ``aug_smooth``)."""
from __future__ import annotations

from typing import Callable, Sequence

import torch
import torch.nn as nn

from netgaze.errors import ArgumentError
from netgaze.methods.templates import check_image_batch


def _unflip(maps, flipped: bool):
    if not flipped:
        return maps
    if isinstance(maps, dict):
        return {name: m.flip(-1) for name, m in maps.items()}
    return maps.flip(-1)


def _mean(total, maps, n: int):
    if isinstance(maps, dict):
        return {name: (0 if total is None else total[name]) + m / n for name, m in maps.items()}
    return (0 if total is None else total) + maps / n


def augmented(method: Callable, model: nn.Module, x: torch.Tensor, *args, flips: bool = True,
              factors: Sequence[float] = (0.9, 1.0, 1.1), **kwargs):
    """``method(model, x', *args, **kwargs)`` averaged over augmented copies ``x'`` of ``x``.

    The copies are every combination of a horizontal flip (if ``flips``) and a multiplication of
    the picture's values by each of ``factors`` — pytorch-grad-cam's default ``aug_smooth``
    (ttach's ``HorizontalFlip`` and ``Multiply([0.9, 1, 1.1])``: 6 copies). Each map is
    flipped back before averaging, so every map is on the original picture's pixels. Any method
    whose maps have the picture's width last (CAMs, attributions, a dict of layers) works; a
    ``TopClass`` target is fixed on the unaugmented picture first, so every copy explains the
    same classes. Maps are averaged raw: pytorch-grad-cam averages its min-max scaled maps
    (wrap the method in a scaling function for its numbers).
    """
    check_image_batch(x)
    factors = list(factors)
    if not factors or not all(isinstance(f, (int, float)) and not isinstance(f, bool) and f > 0 for f in factors):
        raise ArgumentError(f"factors must be positive numbers, got {factors!r}")
    if "target" in kwargs:
        kwargs["target"] = _fixed(model, x, kwargs["target"], kwargs.get("output"))
    copies = [(flip, f) for flip in ((False, True) if flips else (False,)) for f in factors]
    total = None
    for flip, factor in copies:
        picture = (x.flip(-1) if flip else x) * factor
        total = _mean(total, _unflip(method(model, picture, *args, **kwargs), flip), len(copies))
    return total


def _fixed(model, x, target, output):
    from netgaze.methods.templates import fixed_target
    from netgaze.core.targets import TopClass, as_target

    target = as_target(target)
    return fixed_target(model, x, target, output) if isinstance(target, TopClass) and target.k == 1 else target

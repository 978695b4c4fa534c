"""Resolve layer references to modules.

A layer is named by its dotted ``named_modules()`` name (``"layer4.1.conv2"``,
``"features.28"``), given as the module object itself, or as a negative integer that
counts the model's stages from the end (``-1`` = the output of the last spatial stage,
``-2`` the stage before; see ``netgaze.core.stages`` for the rule).

A third-party network wrapped by the training lab (``Normalized``: ``normalize`` then
``net``) keeps its own layer names: ``"layer4"`` finds ``net.layer4``, and suggestions and
figure titles show names without the internal ``net.`` prefix (``display_name``).
"""
from __future__ import annotations

import difflib
from typing import Sequence, Union

import torch.nn as nn

from netgaze.core.layer_entries import split_entry
from netgaze.core.stages import resolve_stage, stage_names
from netgaze.errors import LayerError

LayerRef = Union[str, int, nn.Module]

CONV_TYPES = (nn.Conv1d, nn.Conv2d, nn.Conv3d)


def conv_layer_names(model: nn.Module) -> list[str]:
    """Names of the model's convolution layers, in definition order.

    Definition order equals forward order for sequential models and torchvision /
    timm families; it is what negative integer layer references index.
    """
    return [name for name, module in model.named_modules() if isinstance(module, CONV_TYPES)]


def layer_names(model: nn.Module, stages: bool = False,
                input_shape: Sequence[int] | None = None) -> list[str]:
    """Every addressable module name (the root module has no name and is left out).

    With ``stages=True`` only the stages, first to last: the names that ``layer=-1``,
    ``-2``, ... pick (``input_shape`` as in ``netgaze.core.stages.stage_names``).
    """
    if stages:
        return list(stage_names(model, input_shape))
    return [name for name, _ in model.named_modules() if name]


def _wrapped(model: nn.Module) -> bool:
    return isinstance(getattr(model, "net", None), nn.Module)


def display_name(model: nn.Module, name: str) -> str:
    """``name`` as users type it: ``net.layer4`` of a wrapped network is ``layer4``."""
    if name.startswith("net.") and _wrapped(model):
        short = name[len("net."):]
        try:
            model.get_submodule(short)
        except AttributeError:
            return short
    return name


def resolve_layer(model: nn.Module, layer: LayerRef,
                  input_shape: Sequence[int] | None = None) -> tuple[str, nn.Module]:
    """Return ``(name, module)`` for one layer reference; raise LayerError otherwise.

    ``input_shape`` (``(C, H, W)`` or a batch shape) is the size of the pictures to
    explain; integer references (stages) depend on it where a stage shrinks to one cell.
    """
    if isinstance(layer, nn.Module):
        for name, module in model.named_modules():
            if module is layer:
                return name, module
        raise LayerError(f"the module {type(layer).__name__} given as layer is not part of the model")
    if isinstance(layer, bool) or not isinstance(layer, (int, str)):
        raise LayerError(f"a layer is a dotted name, a module or a negative int, not {type(layer).__name__}")
    if isinstance(layer, int):
        layer = resolve_stage(model, layer, input_shape)
    base, key = split_entry(layer)
    if key is not None and base:
        # "layer[key]" (a stage seen through a tuple): the module is the layer's, the name keeps the entry
        name, module = resolve_layer(model, base, input_shape)
        return f"{name}[{key}]", module
    if layer:
        candidates = [layer, f"net.{layer}"] if _wrapped(model) and not layer.startswith("net.") else [layer]
        for candidate in candidates:
            try:  # walks the dotted path: no traversal of the whole model on every call
                return candidate, model.get_submodule(candidate)
            except AttributeError:
                pass
    raise LayerError(_unknown_layer_message(layer, [display_name(model, n) for n in layer_names(model)]))


def resolve_layers(model: nn.Module, layers: LayerRef | Sequence[LayerRef],
                   input_shape: Sequence[int] | None = None) -> list[tuple[str, nn.Module]]:
    """Resolve one reference or a list of them, refusing duplicates."""
    refs = list(layers) if isinstance(layers, (list, tuple)) else [layers]
    if not refs:
        raise LayerError("no layer given")
    resolved = [resolve_layer(model, ref, input_shape) for ref in refs]
    names = [name for name, _ in resolved]
    if len(set(names)) != len(names):
        raise LayerError(f"the same layer is requested twice: {names}")
    return resolved


def _unknown_layer_message(name: str, valid: list[str]) -> str:
    close = difflib.get_close_matches(name, valid, n=5, cutoff=0.5)
    if not close:
        close = [v for v in valid if v.startswith(name.split(".")[0])][:5] or valid[:5]
    hint = ", ".join(repr(c) for c in close)
    return (f"unknown layer {name!r}; closest valid names: {hint} "
            f"({len(valid)} layers in all; netgaze.layer_names(model) lists them)")

"""The model registry: every model the lab can build, by name.

A builder is a function that returns an ``nn.Module`` from keyword arguments only; it
registers itself with ``@register_model("name")``. ``build_model`` checks the arguments
against the builder's signature, so a misspelt option is an error naming the valid ones,
and a run folder can rebuild its model from ``(name, args)`` alone (``run.json``).

Two name families are resolved by prefix instead of by registration:
``torchvision:NAME`` (any torchvision classification model) and ``timm:NAME``.
"""
from __future__ import annotations

import difflib
import inspect
from typing import Any, Callable

import torch.nn as nn

from netgaze.errors import UserError

Builder = Callable[..., nn.Module]

_BUILDERS: dict[str, Builder] = {}
_PREFIXES: dict[str, Builder] = {}


class ModelError(UserError):
    """An unknown model name, a bad builder argument, or missing pretrained weights."""


def register_model(name: str) -> Callable[[Builder], Builder]:
    """Decorator that registers a builder under ``name``.

    A name ending in ``":"`` registers a prefix family (``"torchvision:"``): the builder
    then receives the rest of the name as its first positional argument.
    """
    def decorate(builder: Builder) -> Builder:
        table = _PREFIXES if name.endswith(":") else _BUILDERS
        if name in table and table[name] is not builder:
            raise ModelError(f"a model named {name!r} is registered twice")
        table[name] = builder
        return builder
    return decorate


def model_names() -> list[str]:
    """Registered model names, sorted; prefix families appear as ``"torchvision:NAME"``."""
    return sorted(_BUILDERS) + sorted(f"{p}NAME" for p in _PREFIXES)


def builder_parameters(name: str) -> list[str]:
    """Names of the keyword arguments a model's builder accepts."""
    builder, _ = _lookup(name)
    params = list(inspect.signature(builder).parameters.values())
    if name.split(":", 1)[0] + ":" in _PREFIXES and ":" in name:
        params = params[1:]
    return [p.name for p in params]


def build_model(name: str, **args: Any) -> nn.Module:
    """Build the model registered as ``name`` with builder arguments ``args``.

    Raises:
        ModelError: unknown name (the message lists the known ones) or an argument the
            builder does not take (the message lists the ones it does).
    """
    builder, rest = _lookup(name)
    valid = builder_parameters(name)
    unknown = sorted(set(args) - set(valid))
    if unknown:
        raise ModelError(f"model {name!r} takes no argument {', '.join(map(repr, unknown))}; "
                         f"its arguments are: {', '.join(valid)}")
    return builder(rest, **args) if rest is not None else builder(**args)


def _lookup(name: str) -> tuple[Builder, str | None]:
    if name in _BUILDERS:
        return _BUILDERS[name], None
    prefix, sep, rest = name.partition(":")
    if sep and prefix + ":" in _PREFIXES:
        if not rest:
            raise ModelError(f"{name!r} needs a model name after the colon, e.g. {prefix}:resnet18")
        return _PREFIXES[prefix + ":"], rest
    close = difflib.get_close_matches(name, list(_BUILDERS), n=3)
    hint = f" (did you mean {', '.join(close)}?)" if close else ""
    raise ModelError(f"unknown model {name!r}{hint}; known models: {', '.join(model_names())}")

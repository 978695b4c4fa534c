"""The model registry: every model the lab can build, by name.

A builder is a function that returns an ``nn.Module`` from keyword arguments only; it
registers itself with ``@register_model("name")``. ``build_model`` checks the arguments
against the builder's signature, so a misspelt option is an error naming the valid ones,
and a run folder can rebuild its model from ``(name, args)`` alone (``run.json``).

Two name families are resolved by prefix instead of by registration:
``torchvision:NAME`` (any torchvision classification model) and ``timm:NAME``.

``build_from_spec`` is the one rule that turns a run's ``build`` string into a model, in every
process (the command line, the explorer's workers, ``load_run``): a registered name, a prefix
family, a name an installed package registers under the ``netgaze.models`` entry-point group,
or the user's own ``package.module:callable`` (imported only when trusted, see
``netgaze.lab.models.trust``).
"""
from __future__ import annotations

import difflib
import inspect
from typing import Any, Callable

import torch.nn as nn

from netgaze.lab.models.import_path import build_from_import_path, entry_point_builders, is_import_path, \
    load_entry_point
from netgaze.lab.models.model_error import ModelError
from netgaze.lab.models.trust import Trust

Builder = Callable[..., nn.Module]

_BUILDERS: dict[str, Builder] = {}
_PREFIXES: dict[str, Builder] = {}


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


def build_forms() -> str:
    """The accepted forms of a ``build`` string, for error messages."""
    installed = sorted(entry_point_builders())
    plugins = f", a name installed packages register ({', '.join(installed)})" if installed else ""
    return (f"torchvision:NAME, timm:NAME, a lab model ({', '.join(sorted(_BUILDERS))}){plugins}, "
            "or your own class or function as package.module:callable (with build_args={...} as JSON; "
            "imported only with trust_code=True / --trust-code)")


def build_from_spec(build: str, args: dict[str, Any] | None = None, trust_code: Trust = False) -> nn.Module:
    """The model a ``build`` string names, built with the JSON arguments ``args``.

    Args:
        build: ``torchvision:NAME``, ``timm:NAME``, a lab model name (``model_names()``), a
            name from the ``netgaze.models`` entry-point group, or ``package.module:callable``.
        args: keyword arguments of the builder (a JSON object).
        trust_code: allows importing the module of ``package.module:callable`` (``True``,
            a module name or names); see ``netgaze.lab.models.trust``.

    Raises:
        ModelError: an unknown name (the message lists the accepted forms) or a bad argument.
        UntrustedCodeError: an import path whose module is not trusted.
    """
    args = dict(args or {})
    if not isinstance(build, str) or not build.strip():
        raise ModelError(f"build must be a string naming the model; accepted forms: {build_forms()}")
    if build in _BUILDERS or build.partition(":")[0] + ":" in _PREFIXES or build in entry_point_builders():
        return build_model(build, **args)
    if is_import_path(build):
        return build_from_import_path(build, args, trust_code)
    close = difflib.get_close_matches(build, list(_BUILDERS), n=3)
    hint = f" (did you mean {', '.join(close)}?)" if close else ""
    raise ModelError(f"unknown model {build!r}{hint}; accepted forms: {build_forms()}")


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
    installed = load_entry_point(name) if not sep else None
    if installed is not None:
        return installed, None
    close = difflib.get_close_matches(name, list(_BUILDERS), n=3)
    hint = f" (did you mean {', '.join(close)}?)" if close else ""
    raise ModelError(f"unknown model {name!r}{hint}; known models: {', '.join(model_names())}")

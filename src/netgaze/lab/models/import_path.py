"""The user's own models, named ``package.module:callable``, and builders of installed packages.

``build_from_import_path("mypkg.models:SmallCNN", {"width": 16}, trust_code=True)`` imports
``mypkg.models`` (only when trusted, see ``netgaze.lab.models.trust``), takes ``SmallCNN``
and calls it with the JSON arguments. Only an ``nn.Module`` class or a plain Python function
defined in that module (or a submodule of the named package) is called, and a function must
return an ``nn.Module``.

Installed packages register builders under the ``netgaze.models`` entry-point group::

    [project.entry-points."netgaze.models"]
    my-net = "mypkg.models:build_my_net"

and the name (``my-net``) then works wherever a lab model name does.
"""
from __future__ import annotations

import importlib
import inspect
import re
from typing import Any, Callable

import torch.nn as nn

from netgaze.errors import one_line
from netgaze.lab.models.model_error import ModelError
from netgaze.lab.models.trust import Trust, UntrustedCodeError, is_trusted, refuse

ENTRY_POINT_GROUP = "netgaze.models"
_IMPORT_PATH = re.compile(r"^([A-Za-z_]\w*(?:\.[A-Za-z_]\w*)*):([A-Za-z_]\w*(?:\.[A-Za-z_]\w*)*)$")


def is_import_path(build: str) -> bool:
    """Whether ``build`` is written ``package.module:callable`` (dotted names on both sides)."""
    return bool(_IMPORT_PATH.match(build))


def split_import_path(build: str) -> tuple[str, str]:
    match = _IMPORT_PATH.match(build)
    if not match:
        raise ValueError(f"not an import path: {build!r}")
    return match.group(1), match.group(2)


def resolve_import_path(build: str, trust_code: Trust = False) -> Callable[..., Any]:
    """The class or function ``build`` names, imported only when its module is trusted.

    Raises:
        UntrustedCodeError: the module is not trusted (nothing was imported), or the name is
            not a class or function defined there (a built-in such as ``os:system``).
        ModelError: the module cannot be imported or has no such attribute.
    """
    module_name, attribute = split_import_path(build)
    if not is_trusted(module_name, trust_code):
        raise refuse(build, module_name)
    try:
        module = importlib.import_module(module_name)
    except ImportError as err:
        raise ModelError(f"cannot import {module_name!r} for model {build!r} ({one_line(err)[:120]}); install the "
                         "package or put its folder on PYTHONPATH") from None
    target: Any = module
    for part in attribute.split("."):
        if not hasattr(target, part):
            raise ModelError(f"module {module_name!r} has no {attribute!r} (model {build!r})")
        target = getattr(target, part)
    defined_in = getattr(target, "__module__", None) or ""
    plain = (inspect.isclass(target) and issubclass(target, nn.Module)) or inspect.isfunction(target)
    root = module_name.split(".")[0]
    if not plain or not (defined_in == root or defined_in.startswith(root + ".")):
        what = type(target).__name__ if not inspect.isclass(target) else f"class {target.__name__}"
        raise UntrustedCodeError(f"{build!r} is a {what} defined in {defined_in or 'no module'!r}: a model is built "
                                 f"only by an nn.Module class or a Python function defined in {module_name!r}")
    if not is_trusted(defined_in, trust_code):
        raise refuse(build, defined_in)
    return target


def build_from_import_path(build: str, args: dict[str, Any], trust_code: Trust = False) -> nn.Module:
    """Call the class or function ``build`` names with ``args``; it must give an ``nn.Module``."""
    builder = resolve_import_path(build, trust_code)
    check_arguments(build, builder, args)
    model = builder(**args)
    if not isinstance(model, nn.Module):
        raise UntrustedCodeError(f"{build!r} returned a {type(model).__name__}, not a torch.nn.Module")
    return model


def check_arguments(build: str, builder: Callable[..., Any], args: dict[str, Any]) -> None:
    """A misspelt argument is an error that names the ones the builder takes."""
    if not isinstance(args, dict):
        raise ModelError(f"the arguments of {build!r} must be a JSON object, got {type(args).__name__}")
    try:
        signature = inspect.signature(builder)
    except (TypeError, ValueError):  # no signature to check against
        return
    params = [p for p in signature.parameters.values() if p.kind not in (p.VAR_POSITIONAL,)]
    if any(p.kind == p.VAR_KEYWORD for p in params):
        return
    names = [p.name for p in params if p.kind in (p.POSITIONAL_OR_KEYWORD, p.KEYWORD_ONLY)]
    unknown = sorted(set(args) - set(names))
    if unknown:
        raise ModelError(f"model {build!r} takes no argument {', '.join(map(repr, unknown))}; "
                         f"its arguments are: {', '.join(names) or 'none'}")
    missing = [p.name for p in params if p.default is p.empty and p.name not in args
               and p.kind in (p.POSITIONAL_OR_KEYWORD, p.KEYWORD_ONLY)]
    if missing:
        raise ModelError(f"model {build!r} needs argument(s) {', '.join(missing)} (build_args={{...}})")


# ---------------------------------------------------------------- entry points
def entry_point_builders() -> dict[str, Any]:
    """Name -> entry point of every builder installed packages register (``netgaze.models``)."""
    from importlib.metadata import entry_points

    return {ep.name: ep for ep in entry_points(group=ENTRY_POINT_GROUP)}


def load_entry_point(name: str) -> Callable[..., nn.Module] | None:
    """The builder an installed package registered as ``name``, or None."""
    ep = entry_point_builders().get(name)
    if ep is None:
        return None
    try:
        builder = ep.load()
    except Exception as err:  # noqa: BLE001 - a broken plugin: one line naming it
        raise ModelError(f"model {name!r} is registered by an installed package ({ep.value}) that fails to load: "
                         f"{one_line(err)[:120]}") from None
    if not callable(builder):
        raise ModelError(f"model {name!r} ({ep.value}, an entry point of {ENTRY_POINT_GROUP}) is not callable")
    return builder

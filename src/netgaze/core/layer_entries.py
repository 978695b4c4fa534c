"""Layers whose output is a dict, tuple or list: name one entry as ``"layer[key]"``.

A detector's backbone returns its feature-pyramid levels as an ``OrderedDict``
(``"backbone[0]"``, ``"backbone.fpn[pool]"``), a segmenter's backbone returns
``{"out", "aux"}`` (``"backbone[out]"``), some blocks return tuples (``"block[0]"``).
The entry is explained as if it were the layer's output: the rest of the model sees it
unchanged, and the gradient is the one with respect to that entry alone.
"""
from __future__ import annotations

import re
from typing import Any

import torch

from netgaze.errors import UserError

_ENTRY = re.compile(r"^(?P<layer>.*?)\[(?P<key>[^\[\]]+)\]$")


class LayerEntryError(UserError):
    """A ``layer[key]`` reference whose key the layer's output does not have."""


def split_entry(ref: Any) -> tuple[Any, str | None]:
    """``"backbone.fpn[0]"`` -> ``("backbone.fpn", "0")``; other references -> ``(ref, None)``."""
    if isinstance(ref, str):
        match = _ENTRY.match(ref.strip())
        if match:
            return match["layer"], match["key"].strip().strip("'\"")
    return ref, None


def get_entry(out: Any, key: str, name: str) -> torch.Tensor:
    """The entry ``key`` of a layer's dict / tuple / list output."""
    try:
        if isinstance(out, dict):
            value = out[key] if key in out else out[int(key)]
        elif isinstance(out, (tuple, list)):
            value = out[int(key)]
        else:
            raise LayerEntryError(f"layer {name!r}: its output is a {type(out).__name__}, which has no entries; "
                                  "drop the [key]")
    except (KeyError, IndexError, ValueError):
        raise LayerEntryError(f"layer {name!r}: no entry {key!r} in its output; valid: {_keys(out)}") from None
    if not isinstance(value, torch.Tensor):
        raise LayerEntryError(f"layer {name!r} is a {type(value).__name__}, not a tensor")
    return value


def set_entry(out: Any, key: str, value: torch.Tensor) -> Any:
    """A copy of a dict / tuple / list output with the entry ``key`` replaced."""
    if isinstance(out, dict):
        new = type(out)(out) if type(out) is not dict else dict(out)
        new[key if key in out else int(key)] = value
        return new
    items = list(out)
    items[int(key)] = value
    return type(out)(items) if isinstance(out, list) or type(out) is tuple else type(out)(*items)


def _keys(out: Any) -> str:
    if isinstance(out, dict):
        return ", ".join(repr(str(k)) for k in out)
    return f"0..{len(out) - 1}"


def describe_entries(out: Any) -> str:
    """Hint for a layer that returned a container: how to name one of its entries."""
    if isinstance(out, (dict, tuple, list)) and len(out):
        return f"; name one entry as 'LAYER[key]' (keys: {_keys(out)})"
    return ""

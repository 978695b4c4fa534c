"""Layouts: read a recorded layer output as ``[B, C, h, w]``.

Layers lay out their outputs in three ways, and this is the only place that knows it:

- ``"nchw"``: channels first, ``[B, C, h, w]`` (convolutions, CNN stages);
- ``"nhwc"``: channels last, ``[B, h, w, C]`` (Swin stages in timm and torchvision);
- ``"tokens"``: ``[B, N, C]`` with ``N = prefix + h * w``: any number of prefix tokens
  (class, distillation, register tokens) before the patch tokens, row by row on a patch
  grid inferred from the input size (non-square inputs included).

Detection is automatic. A shape that fits two readings (``[B, 7, 7, 7]``) is settled by
what the layer is (a conv or batch norm writes channels first, a layer norm channels
last); if nothing settles it, ``LayoutError`` names the overrides: ``layout=`` (one of
the three names) and ``reshape=`` (a callable ``tensor -> [B, C, h, w]``), accepted by
every CAM method. Prefix tokens are dropped, as the peers' ``reshape_transform`` recipes
do. The same reading is applied to activations and to their gradients.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Callable, Mapping, Sequence, Union

import torch
import torch.nn as nn

from netgaze.errors import UserError

LAYOUTS = ("nchw", "nhwc", "tokens")
MAX_PREFIX = 8          # class + distillation + register tokens seen in practice: 1, 2, 5
Reshape = Callable[[torch.Tensor], torch.Tensor]
LayoutArg = Union[None, str, Mapping[str, str]]
ReshapeArg = Union[None, Reshape, Mapping[str, Reshape]]

_FIRST = (nn.Conv2d, nn.BatchNorm2d, nn.MaxPool2d, nn.AvgPool2d, nn.AdaptiveAvgPool2d,
          nn.AdaptiveMaxPool2d, nn.ConvTranspose2d, nn.GroupNorm, nn.InstanceNorm2d)


class LayoutError(UserError):
    """A layer output that cannot be read as a picture-shaped map without help."""


@dataclass(frozen=True)
class Layout:
    """How one layer output maps to ``[B, C, h, w]``."""
    kind: str                     # "nchw" | "nhwc" | "tokens"
    grid: tuple[int, int]         # (h, w)
    prefix: int = 0               # tokens before the patch grid ("tokens" only)

    def to_nchw(self, t: torch.Tensor) -> torch.Tensor:
        if self.kind == "nchw":
            return t
        if self.kind == "nhwc":
            return t.permute(0, 3, 1, 2)
        h, w = self.grid
        return t[:, self.prefix:, :].reshape(t.shape[0], h, w, t.shape[2]).permute(0, 3, 1, 2)

    def describe(self) -> str:
        text = f"{self.kind} {self.grid[0]}x{self.grid[1]}"
        return text + (f" +{self.prefix} prefix" if self.kind == "tokens" else "")


def grid_fits(h: int, w: int, size: Sequence[int]) -> bool:
    """Whether an ``h x w`` map can be the input ``size`` (H, W) seen through strides.

    The aspect ratio must agree within two cells (kernels without padding lose a border
    on non-square inputs), exactly for a map one cell wide; a grid of one cell is no map.
    """
    H, W = int(size[0]), int(size[1])
    if h < 1 or w < 1 or h * w < 2:
        return False
    if h * W == w * H:
        return True
    return min(h, w) >= 2 and abs(h / H - w / W) * max(H, W) <= 2


def token_grids(n: int, size: Sequence[int]) -> list[tuple[int, int, int]]:
    """Every ``(h, w, prefix)`` with ``n = prefix + h * w`` on a patch grid of ``size``.

    A grid counts when one integer patch size tiles the input (``H // p``, ``W // p``,
    or rounded up for padded inputs) and at most ``MAX_PREFIX`` tokens come before it.
    """
    H, W = int(size[0]), int(size[1])
    found = set()
    for p in range(1, max(H, W) + 1):
        for h, w in {(H // p, W // p), (-(-H // p), -(-W // p))}:
            if h * w >= 2 and 0 <= n - h * w <= MAX_PREFIX:
                found.add((h, w, n - h * w))
    return sorted(found, key=lambda g: g[2])


def channels_hint(module: nn.Module | None) -> str | None:
    """"first" / "last" from what the layer is, or None when its type says nothing."""
    if module is None:
        return None
    hint = None
    for m in module.modules():   # definition order; the last telling module wins
        if isinstance(m, _FIRST):
            hint = "first"
        elif isinstance(m, nn.LayerNorm):
            hint = "last"
    return hint


def _tiles(grid: tuple[int, int], size: Sequence[int]) -> bool:
    H, W = int(size[0]), int(size[1])
    return H % grid[0] == 0 and W % grid[1] == 0 and H // grid[0] == W // grid[1]


def _exact(grid: tuple[int, int], size: Sequence[int]) -> bool:
    return grid[0] * int(size[1]) == grid[1] * int(size[0])


def _model_hint(model: nn.Module | None) -> str | None:
    """A model of convolutions without any layer norm writes channels first throughout."""
    if model is None:
        return None
    kinds = {type(m) for m in model.modules()}
    if any(issubclass(k, nn.LayerNorm) for k in kinds):
        return None
    return "first" if any(issubclass(k, nn.Conv2d) for k in kinds) else None


def prefix_hint(model: nn.Module | None) -> int | None:
    """Prefix tokens a model declares (timm's ``num_prefix_tokens``, torchvision's class token)."""
    if model is None:
        return None
    count = getattr(model, "num_prefix_tokens", None)
    if isinstance(count, int):
        return count
    if isinstance(getattr(model, "class_token", None), torch.Tensor):
        return 1
    return None


def candidates(shape: Sequence[int], size: Sequence[int]) -> list[Layout]:
    """Every reading of an output ``shape`` for an input of spatial ``size``."""
    found = []
    if len(shape) == 4:
        if grid_fits(shape[2], shape[3], size):
            found.append(Layout("nchw", (shape[2], shape[3])))
        if grid_fits(shape[1], shape[2], size):
            found.append(Layout("nhwc", (shape[1], shape[2])))
    elif len(shape) == 3:
        found = [Layout("tokens", (h, w), p) for h, w, p in token_grids(shape[1], size)]
    return found


def detect(shape: Sequence[int], size: Sequence[int], *, name: str = "the layer",
           module: nn.Module | None = None, model: nn.Module | None = None,
           layout: str | None = None) -> Layout:
    """The one reading of ``shape``; LayoutError when there is none or it is ambiguous.

    Args:
        shape: the recorded output's shape.
        size: the input's spatial size (H, W).
        name: the layer's name, for messages.
        module: the layer module; its type settles ``[B, 7, 7, 7]``-like shapes.
        model: the whole model; its declared prefix tokens settle token grids.
        layout: an explicit ``"nchw"``, ``"nhwc"`` or ``"tokens"``.
    """
    shape = tuple(int(s) for s in shape)
    if layout is not None and layout not in LAYOUTS:
        raise LayoutError(f"layout={layout!r} is not one of {', '.join(LAYOUTS)}")
    if layout == "nchw" and len(shape) == 4:
        return Layout("nchw", shape[2:])
    if layout == "nhwc" and len(shape) == 4:
        return Layout("nhwc", shape[1:3])
    found = candidates(shape, size)
    if layout is not None:
        found = [c for c in found if c.kind == layout]
    if len(found) > 1 and len(shape) == 4:
        found = [c for c in found if _exact(c.grid, size)] or found
    if len(found) > 1 and len(shape) == 4:
        hint = channels_hint(module) or _model_hint(model)
        if hint is not None:
            found = [c for c in found if c.kind == ("nchw" if hint == "first" else "nhwc")] or found
    if len(found) > 1 and len(shape) == 3:
        declared = prefix_hint(model)
        found = [c for c in found if c.prefix == declared] or found
    if len(found) > 1 and len(shape) == 3:      # a patch size that tiles the input exactly
        found = [c for c in found if _tiles(c.grid, size)] or found
    if len(found) == 1:
        return found[0]
    help_ = "pass layout='nchw' | 'nhwc' | 'tokens', or reshape=callable(tensor) -> [B, C, h, w]"
    if not found:
        raise LayoutError(f"layer {name!r} outputs shape {shape}, which is not a map of the "
                          f"{size[0]}x{size[1]} input in any layout (nchw, nhwc, tokens); pick a "
                          f"spatial layer, or {help_}")
    readings = "; ".join(c.describe() for c in found)
    raise LayoutError(f"layer {name!r} outputs shape {shape}, which reads several ways for a "
                      f"{size[0]}x{size[1]} input ({readings}); {help_}")


def pick(arg, name: str):
    """One layer's override from a single value or a dict name -> value."""
    if isinstance(arg, Mapping):
        return arg.get(name)
    return arg


def reader(shape: Sequence[int], size: Sequence[int], *, name: str, module: nn.Module | None,
           model: nn.Module | None, layout: LayoutArg = None, reshape: ReshapeArg = None) -> Reshape:
    """The function that turns this layer's outputs (and gradients) into ``[B, C, h, w]``."""
    custom = pick(reshape, name)
    if custom is not None:
        if not callable(custom):
            raise LayoutError(f"reshape= must be a callable tensor -> [B, C, h, w], got {type(custom).__name__}")
        return _checked(custom, name)
    return detect(shape, size, name=name, module=module, model=model, layout=pick(layout, name)).to_nchw


def _checked(fn: Reshape, name: str) -> Reshape:
    def apply(t: torch.Tensor) -> torch.Tensor:
        out = fn(t)
        if not isinstance(out, torch.Tensor) or out.dim() != 4 or out.shape[0] != t.shape[0]:
            shape = tuple(out.shape) if isinstance(out, torch.Tensor) else type(out).__name__
            raise LayoutError(f"reshape= for layer {name!r} returned {shape}; it must return [B, C, h, w]")
        return out
    return apply


__all__ = ["Layout", "LayoutError", "LAYOUTS", "detect", "reader", "candidates", "token_grids", "grid_fits"]

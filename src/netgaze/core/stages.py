"""Stages: the one rule behind the default layer (``layer=-1`` or omitted).

A model's **stages** are the outputs of its spatial trunk, one per resolution, in the
order they run; ``-1`` is the last stage, ``-2`` the one before. The rule reads the
module tree and the output shapes of one shape-only pass on the ``meta`` device (no
arithmetic, parameters untouched), cached per model and input size:

1. The trunk: the model's children in the order they run; a child whose own children
   run at three or more resolutions (``features`` of VGG / DenseNet / ConvNeXt, Swin's
   ``layers``), or whose maps end in a flatten (a VAE's encoder), is replaced by them. The trunk ends where outputs stop being maps (the
   pooled head, a VAE's latent) and after its coarsest resolution (an encoder-decoder's
   decoder is not a stage).
2. One stage per run of equal resolution; its output is the last module of the run. In a
   model built of blocks, a run of single layers (ResNet's stem) is no stage.
   Parameter-free modules (pooling, activations) belong to a stage only inside the same
   container as the stage's weights (VGG's last max pool does, its classifier's
   ``avgpool`` does not). A last child that is a single layer stands for its container
   (DenseNet's ``features.norm5`` is ``features``).
3. A stage whose output is channels-last or tokens (transformers) is read where its last
   block's token mixer reads it: the block's first norm (``blocks[-1].norm1``,
   ``layers[-1].blocks[-1].norm1``), because a class-token head sees the last block's
   patch tokens only through that attention.
4. A model with one resolution only (ViT, DeiT, EVA) has its blocks as stages.
5. A stage whose module returns a tuple (Hugging Face's ``SwinStage`` / ``Swinv2Stage``
   and their embeddings return ``(hidden_states, ...)``) is named by its first entry,
   ``"swinv2.encoder.layers.3[0]"``: the map the next stage reads (see
   ``netgaze.core.layer_entries``).

``stage_names(model)`` lists them; ``netgaze.layer_names(model, stages=True)`` too.
"""
from __future__ import annotations

import weakref
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Sequence

import torch
import torch.nn as nn
from torch.func import functional_call

from netgaze.core import layouts
from netgaze.errors import LayerError

DEFAULT_SIZES = (224, 64, 32, 28)


class StageError(LayerError):
    """The model's stages cannot be found (no spatial layer, or no input size fits)."""


@dataclass
class Trace:
    """Output shapes of one shape-only forward pass, per module name."""
    size: tuple[int, int]
    order: dict[str, int] = field(default_factory=dict)      # completion order
    shapes: dict[str, tuple | None] = field(default_factory=dict)
    calls: dict[str, int] = field(default_factory=dict)
    wrapped: set[str] = field(default_factory=set)            # outputs seen through a tuple

    def res(self, name: str, module: nn.Module) -> tuple[int, int] | None:
        """Spatial grid of a module's output, None if it is not a map."""
        shape = self.shapes.get(name)
        if shape is None or len(shape) not in (3, 4):
            return None
        found = layouts.candidates(shape, self.size)
        if len(found) > 1 and len(shape) == 4:
            found = [c for c in found if layouts._exact(c.grid, self.size)] or found
        if len(found) > 1 and len(shape) == 4:
            hint = layouts.channels_hint(module)
            found = [c for c in found if c.kind == ("nhwc" if hint == "last" else "nchw")] or found
        return found[0].grid if found else None

    def kind(self, name: str) -> str | None:
        shape = self.shapes.get(name)
        if shape is None:
            return None
        found = layouts.candidates(shape, self.size)
        return found[0].kind if found else None


_CACHE: "weakref.WeakKeyDictionary[nn.Module, dict]" = weakref.WeakKeyDictionary()


def _fingerprint(model: nn.Module) -> tuple:
    return tuple(id(m) for m in model.children()), sum(1 for _ in model.modules())


def trace(model: nn.Module, input_shape: Sequence[int]) -> Trace:
    """Run the model once on ``meta`` tensors of ``input_shape`` and record every output shape."""
    result = Trace(size=(int(input_shape[-2]), int(input_shape[-1])))
    state = {n: torch.empty_like(t, device="meta") for n, t in
             [*model.named_parameters(remove_duplicate=False), *model.named_buffers(remove_duplicate=False)]}
    handles = []

    def hook(name):
        def record(module, inputs, out):
            result.calls[name] = result.calls.get(name, 0) + 1
            result.order.setdefault(name, len(result.order))
            first = _first_tensor(out)
            result.shapes[name] = tuple(first.shape) if first is not None else None
            if first is not None and not isinstance(out, torch.Tensor):
                result.wrapped.add(name)
        return record

    training = [m for m in model.modules() if m.training]
    try:
        model.eval()
        for name, module in model.named_modules():
            handles.append(module.register_forward_hook(hook(name)))
        with torch.no_grad():
            functional_call(model, state, (torch.empty(2, *input_shape[-3:], device="meta"),), strict=False)
    finally:
        for h in handles:
            h.remove()
        for m in training:
            m.training = True
    return result


def _first_tensor(out) -> torch.Tensor | None:
    """The map a module passes on: the tensor itself, the first element of a tuple (Hugging
    Face's ``SwinStage`` returns ``(hidden_states, ...)``) or the first value of a Hugging Face
    ``ModelOutput`` (``last_hidden_state``); None for anything else."""
    if isinstance(out, torch.Tensor):
        return out
    if isinstance(out, tuple) and out and isinstance(out[0], torch.Tensor):
        return out[0]
    if isinstance(out, Mapping) and hasattr(out, "to_tuple"):     # a transformers ModelOutput
        first = next(iter(out.values()), None)
        return first if isinstance(first, torch.Tensor) else None
    return None


def stage_names(model: nn.Module, input_shape: Sequence[int] | None = None) -> list[str]:
    """The model's stages, first to last (``[-1]`` is the default layer).

    Args:
        model: any module.
        input_shape: ``(C, H, W)`` or ``(B, C, H, W)`` of the pictures it will explain.
            None: the size the model declares (timm's ``pretrained_cfg``, torchvision's
            ``image_size``), the last size seen, or the first of 224, 64, 32, 28 pixels
            that the model accepts.
    """
    per_model = _CACHE.get(model)
    if per_model is None or per_model.get("fingerprint") != _fingerprint(model):
        per_model = {"fingerprint": _fingerprint(model)}
        _CACHE[model] = per_model
    shapes = [tuple(input_shape[-3:])] if input_shape is not None else _guess_shapes(model, per_model)
    errors = []
    for shape in shapes:
        if shape in per_model:
            return per_model[shape]
        try:
            found = _stages(model, trace(model, shape))
        except Exception as err:   # the model refuses this size: try the next
            errors.append(f"{shape[1]}x{shape[2]}: {type(err).__name__}: {str(err).splitlines()[0][:120]}")
            continue
        if not found and input_shape is None:
            errors.append(f"{shape[1]}x{shape[2]}: no spatial stage")
            continue
        per_model[shape] = found
        per_model["last"] = shape
        if not found:
            raise StageError(f"{type(model).__name__} has no spatial stage for a {shape[1]}x{shape[2]} input "
                             "(no layer outputs a map); name a layer")
        return found
    raise StageError(f"cannot find the stages of {type(model).__name__}: " + "; ".join(errors)
                     + " (name a layer, or pass the input shape)")


def _guess_shapes(model: nn.Module, cached: dict) -> list[tuple[int, int, int]]:
    if "last" in cached:
        return [cached["last"]]
    cfg = getattr(model, "pretrained_cfg", None) or getattr(model, "default_cfg", None) or {}
    if isinstance(cfg, dict) and len(cfg.get("input_size", ())) == 3:
        return [tuple(cfg["input_size"])]
    channels = next((m.in_channels for m in model.modules() if isinstance(m, nn.Conv2d)), 3)
    declared = getattr(model, "image_size", None)
    if isinstance(declared, int):
        return [(channels, declared, declared)]
    return [(channels, s, s) for s in DEFAULT_SIZES]


# -- the rule ------------------------------------------------------------------------
def _stages(model: nn.Module, tr: Trace) -> list[str]:
    modules = dict(model.named_modules())
    trunk = _trunk(model, "", tr, modules)
    groups = _groups(trunk, tr, modules)
    if len(groups) == 1:
        blocks = _block_list(groups[0], tr, modules)
        if blocks:
            return [_representative([b], tr, modules) for b in blocks]
    if any(_body(g, modules) for g in groups):     # blocks exist: a stem of single layers is no stage
        groups = [g for g in groups[:-1] if _body(g, modules)] + groups[-1:]
    return [_representative(g, tr, modules) for g in groups]


def _ran_children(name: str, module: nn.Module, tr: Trace) -> list[str]:
    """Children that ran, in completion order; a container that never runs itself
    (a ``ModuleList`` iterated by its parent) is replaced by its children."""
    found = []
    for key, child in module.named_children():
        full = f"{name}.{key}" if name else key
        if isinstance(child, nn.Identity):
            continue
        if full in tr.order:
            found.append(full)
        elif any(True for _ in child.children()):
            found.extend(_ran_children(full, child, tr))
    return sorted(found, key=tr.order.__getitem__)


def _trunk(module: nn.Module, name: str, tr: Trace, modules: dict) -> list[str]:
    entries = []
    for kid in _ran_children(name, module, tr):
        if tr.calls.get(kid) != 1:
            continue
        grand = [g for g in _ran_children(kid, modules[kid], tr) if tr.calls.get(g) == 1]
        grids = {tr.res(g, modules[g]) for g in grand} - {None}
        # Opened: a container whose children run at 3+ resolutions, or one that ends
        # in a flatten (its maps are inside). A down-sampling block has two: kept whole.
        if len(grids) >= 3 or (grids and tr.res(kid, modules[kid]) is None):
            entries.extend(_trunk(modules[kid], kid, tr, modules))
        else:
            entries.append(kid)
    return entries


def _has_params(module: nn.Module) -> bool:
    return any(True for _ in module.parameters())


def _parent(name: str) -> str:
    return name.rpartition(".")[0]


def _groups(trunk: list[str], tr: Trace, modules: dict) -> list[list[str]]:
    groups: list[list[str]] = []
    weights_parent = None
    for entry in trunk:
        grid = tr.res(entry, modules[entry])
        if grid is None:
            if groups:
                break           # the head (or a bottleneck) starts here
            continue
        if _has_params(modules[entry]):
            weights_parent = _parent(entry)
        elif _parent(entry) != weights_parent:
            continue            # pooling of an outer container: the head's, not a stage's
        if groups and tr.res(groups[-1][-1], modules[groups[-1][-1]]) == grid:
            groups[-1].append(entry)
        else:
            groups.append([entry])
    if not groups:
        return groups
    areas = [_area(tr.res(g[-1], modules[g[-1]])) for g in groups]
    coarsest = areas.index(min(areas))   # the first: a decoder reading skip features (Segformer) is no stage
    return groups[:coarsest + 1]    # an encoder-decoder's decoder is not a stage


def _area(grid: tuple[int, int]) -> int:
    return grid[0] * grid[1]


_NORMS = tuple(t for t in (nn.LayerNorm, nn.GroupNorm, nn.modules.batchnorm._NormBase,
                           getattr(nn, "RMSNorm", None)) if t is not None)


def _is_norm(module: nn.Module) -> bool:
    """A normalisation layer (timm's own norms included), not a block that contains one."""
    return isinstance(module, _NORMS) or type(module).__name__ in ("RmsNorm", "RMSNorm", "SimpleNorm")


def _body(group: list[str], modules: dict) -> str | None:
    """The group's last container with weights (trailing single layers skipped)."""
    for entry in reversed(group):
        module = modules[entry]
        if _has_params(module) and any(True for _ in module.children()):
            return entry
    return None


def _representative(group: list[str], tr: Trace, modules: dict) -> str:
    body = _body(group, modules)
    if body is not None and tr.kind(body) in ("nhwc", "tokens"):
        # A pre-norm transformer is read at its last block's first norm; a post-norm one
        # (Swin V2) at the stage output itself, not at the head's trailing norm/permute.
        return _first_norm_of_last_block(body, tr, modules) or _seen_through(body, tr)
    chosen = group[-1]
    while True:                    # a last single layer stands for its container
        parent = _parent(chosen)
        module = modules[chosen]
        if not parent or any(True for _ in module.children()):
            return _seen_through(chosen, tr)
        siblings = _ran_children(parent, modules[parent], tr)
        if siblings[-1] != chosen or tr.shapes.get(parent) != tr.shapes.get(chosen):
            return _seen_through(chosen, tr)
        chosen = parent


def _seen_through(name: str, tr: Trace) -> str:
    """A module that returns a tuple (or a ``ModelOutput``) is named by the entry it passes on
    (``"layers.3[0]"``, rule 5): its map, which the recorder reads as if it were the output."""
    return f"{name}[0]" if name in tr.wrapped else name


def _first_norm_of_last_block(name: str, tr: Trace, modules: dict) -> str | None:
    """Descend through last children to a block whose first module is a norm; return that norm."""
    for _ in range(8):
        kids = [k for k in _ran_children(name, modules[name], tr) if tr.calls.get(k) == 1]
        if not kids:
            return None
        if _is_norm(modules[kids[0]]) and len(kids) > 1:
            return kids[0]
        containers = [k for k in kids if _has_params(modules[k]) and any(True for _ in modules[k].children())]
        if not containers:
            return None
        name = containers[-1]
    return None


def _block_list(group: list[str], tr: Trace, modules: dict) -> list[str]:
    """The repeated blocks of a one-resolution model (``blocks.0`` .. ``blocks.11``)."""
    kids, name = group, _body(group, modules)
    for _ in range(6):
        containers = [k for k in kids if _has_params(modules[k]) and any(True for _ in modules[k].children())]
        types = [type(modules[k]) for k in containers]
        repeated = [k for k, t in zip(containers, types) if types.count(t) >= 2]
        if len(repeated) >= 2:
            return repeated
        if name is None:
            return []
        kids = [k for k in _ran_children(name, modules[name], tr) if tr.calls.get(k) == 1]
        inner = [k for k in kids if _has_params(modules[k]) and any(True for _ in modules[k].children())]
        name = inner[-1] if inner else None
    return []


def resolve_stage(model: nn.Module, index: int, input_shape: Sequence[int] | None = None) -> str:
    """The name of stage ``index`` (negative, from the end)."""
    names = stage_names(model, input_shape)
    if index >= 0:
        raise StageError(f"integer layers count stages from the end (-1 = last stage), got {index}")
    if -index > len(names):
        raise StageError(f"layer {index} is out of range: the model has {len(names)} stages "
                         f"({', '.join(names)})")
    return names[index]


__all__ = ["stage_names", "resolve_stage", "trace", "StageError", "Trace"]

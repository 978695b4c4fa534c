"""Ablation-CAM (Desai & Ramaswamy 2020): channels weighted by the score drop when each is zeroed."""
from __future__ import annotations

from contextlib import contextmanager
from typing import Any, Callable, Sequence

import torch
import torch.nn as nn

from netgaze.core.detection import DetectionMatchError
from netgaze.core.inputs import Inputs, as_tuple, check_inputs, from_tuple, is_multi
from netgaze.core.layer_entries import get_entry, set_entry, split_entry
from netgaze.core.layers import LayerRef
from netgaze.core.layouts import LayoutArg, ReshapeArg
from netgaze.core.recorder import OutputSelector, Recorder, RecorderError, select_output
from netgaze.core.targets import TargetLike, as_target
from netgaze.errors import ArgumentError
from netgaze.methods import tail as tails
from netgaze.methods.templates import layer_readers, map_size, needs_sources, picture_shape, target_scores, upsample


def ablationcam(model: nn.Module, x: Inputs, layer: LayerRef | Sequence[LayerRef] = -1,
                target: TargetLike = None, *, value: float = 0.0, batch_size: int = 128,
                output: OutputSelector = None, layout: LayoutArg = None, reshape: ReshapeArg = None
                ) -> torch.Tensor | dict[str, torch.Tensor]:
    """Ablation-CAM maps; same arguments and return values as ``gradcam``.

    Channel ``k``'s weight is ``(y - y_k) / y``: ``y`` the target's score, ``y_k`` the score
    with channel ``k`` of the layer set to ``value`` (0, as in the paper; pytorch-grad-cam
    uses 0 when the layer's output has a zero, else its minimum minus 1e7). Where ``y == 0``
    the drop is not divided. The map is ``relu(sum_k w_k A_k)``, not normalised.

    Speed: only the network after the layer runs for the ablations (the model is traced
    with ``torch.fx``; values it needs from before the layer, such as skip connections,
    come from one clean pass), ``batch_size`` ablated channels per pass. A model that
    cannot be traced runs whole, the layer's output replaced, ``batch_size`` rows per pass.

    Args:
        value: what an ablated channel is set to.
        batch_size: ablated copies per forward pass.
    """
    check_inputs(x)
    if batch_size < 1:
        raise ArgumentError(f"batch_size must be >= 1, got {batch_size}")
    target = as_target(target)
    many = isinstance(layer, (list, tuple))
    traced = needs_sources(x)
    rows = as_tuple(x)[0].shape[0]
    maps = {}
    with Recorder(model, list(layer) if many else [layer], output=output, grads=traced, input_grad=traced,
                  input_shape=picture_shape(x)) as rec:
        out = rec.forward(x)
        sizes = {n: map_size(x, rec, n) for n in rec.names}
        readers = layer_readers(rec, sizes, layout, reshape)
        raws = {n: rec.activations[n].detach() for n in rec.names}
        modules = dict(rec.layers)
    with torch.no_grad():
        target = target.resolve(out)
        scores = target_scores(target, out, rows).detach()
        if scores.dim() != 1:
            raise ArgumentError("ablationcam explains one score per sample; use TopClass(1) or Class(...)")
    with Recorder(model, [], output=output, grads=False):          # eval mode, frozen, restored after
        for name, raw in raws.items():
            acts = readers[name](raw)
            if acts.dim() != 4:
                raise RecorderError(f"layer {name!r} gives shape {tuple(acts.shape)} after reshape=; "
                                    "Ablation-CAM needs [B, C, h, w]")
            run = _runner(model, x, name, modules[name], raw, scores, target, output)
            ablated = _ablated_scores(run, raw, readers[name], value, batch_size, target, output)
            drop = scores[:, None] - ablated
            weights = torch.where(scores[:, None] != 0, drop / torch.where(scores != 0, scores, 1.0)[:, None], drop)
            maps[name] = upsample((weights[:, :, None, None] * acts).sum(1).clamp(min=0), sizes[name])
    return maps if many else next(iter(maps.values()))


Runner = Callable[[int, torch.Tensor], Any]


def _runner(model: nn.Module, x: Inputs, name: str, module: nn.Module, raw: torch.Tensor,
            scores: torch.Tensor, target, output: OutputSelector) -> Runner:
    """``run(i, replaced)`` -> raw model output with the layer's output replaced for sample ``i``.

    Only the tail after the layer when it traces and reproduces the scores, else full passes.
    """
    if split_entry(name)[1] is None:
        tail = tails.build(model, module, x)
        if tail is not None and _reproduces(tail.run, raw, scores, target, output):
            return tail.run
    parts, multi = as_tuple(x), is_multi(x)
    key = split_entry(name)[1]

    def full(i: int, replaced: torch.Tensor) -> Any:
        n = replaced.shape[0]
        copies = from_tuple([t[i:i + 1].repeat(n, *[1] * (t.dim() - 1)) for t in parts], multi)
        with _replaced_output(module, replaced, key), torch.no_grad():
            return model(*as_tuple(copies))
    return full


def _reproduces(run: Runner, raw: torch.Tensor, scores: torch.Tensor, target, output: OutputSelector) -> bool:
    """The tail gives sample 0's own score on its clean layer output (a batch of a size unlike B)."""
    n = 3 if raw.shape[0] == 2 else 2
    try:
        got = target.sample(0).repeat(n)(select_output(run(0, raw[0:1].repeat(n, *[1] * (raw.dim() - 1))), output))
    except Exception:
        return False
    expected = scores[0].expand(n)
    return bool(torch.allclose(got, expected, rtol=1e-4, atol=1e-5 * (float(scores.abs().max()) + 1e-12)))


@contextmanager
def _replaced_output(module: nn.Module, replaced: torch.Tensor, key: str | None):
    """The layer's output is ``replaced`` during the block; the hook is removed even on errors."""
    def hook(_module: nn.Module, _inputs: Any, out: Any):
        if key is None:
            return replaced
        get_entry(out, key, "layer")
        return set_entry(out, key, replaced)
    handle = module.register_forward_hook(hook)
    try:
        yield
    finally:
        handle.remove()


def _ablated_scores(run: Runner, raw: torch.Tensor, read, value: float, batch_size: int, target,
                    output: OutputSelector) -> torch.Tensor:
    """[B, C]: the target's score with each channel of the layer set to ``value``."""
    rows, channels = raw.shape[0], read(raw).shape[1]
    result = torch.empty(rows, channels, device=raw.device, dtype=raw.dtype)
    for i in range(rows):
        for start in range(0, channels, batch_size):
            ks = torch.arange(start, min(start + batch_size, channels), device=raw.device)
            batch = raw[i:i + 1].repeat(len(ks), *[1] * (raw.dim() - 1))
            view = read(batch)
            view[torch.arange(len(ks), device=raw.device), ks] = value
            if not bool((read(batch)[torch.arange(len(ks), device=raw.device), ks] == value).all()):
                raise ArgumentError("ablationcam sets channels through the layout's view of the layer output; "
                                    "this reshape= copies the tensor. Pass layout= instead")
            try:
                out = select_output(run(i, batch), output)
                result[i, start:start + len(ks)] = target.sample(i).repeat(len(ks))(out)
            except DetectionMatchError:
                result[i, start:start + len(ks)] = 0.0
    return result

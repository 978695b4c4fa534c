"""Concepts (CRP-style, Achtibat et al. 2023, with a plain gradient): which channels of a layer a
target relies on, and where each of them looked.

The target's first-order decomposition at a layer with activations ``A`` ``[B, C, h, w]`` and the
target's gradient ``G = dY/dA``::

    relevance[b, c] = sum over h, w of  A[b, c, h, w] * G[b, c, h, w]
    total[b]        = sum over c of relevance[b, c]

``total`` is the whole first-order term of the target at the layer (for a global-average-pool and
linear head on the layer it is exactly the logit minus its bias); the spatial sum of the HiResCAM
map before its ReLU is ``total``, and so is Grad-CAM's when the gradient is constant over space
(a global-average-pool head). A channel's **share** is ``relevance / total``: the shares of all
``C`` channels add up to 1, so the ``k`` shares returned are a part of 1 (a channel that works
against the target has a negative share; when the total is 0 the shares are 0).

A channel's **conditional map** is where in the picture that channel's part of the target comes
from, at the input's resolution: a backward pass that starts at the layer on channel ``c`` only and
goes on to the input (nothing else of the layer, and no path around the layer), then input times
gradient, summed over the colour channels. What the pass starts from is ``maps=``:

- ``"relevance"`` (the default): the channel's relevance map at the layer, ``A * G`` kept on
  channel ``c`` (zennit-crp's ``CondAttribution`` with no composite, ``start_layer`` = the layer
  and ``init_rel`` = that relevance map)::

      map[b, c] = sum over colours of  x[b] * J_c(x)^T (A[b, c] * G[b, c])

  Each position of the layer weighs in with its relevance, so a channel that fires strongly on a
  small thing (a tag in a corner) and faintly elsewhere shows the small thing.
- ``"gradient"``: the target's gradient kept on channel ``c`` (CRP's conditional attribution
  with a plain gradient: ``CondAttribution`` with no composite and the condition
  ``{layer: [c], "y": [class]}``), the explanation of the target when only that channel's path
  is kept::

      map[b, c] = sum over colours of  x[b] * J_c(x)^T G[b, c]

  The maps of all ``C`` channels then add up to the input-times-gradient map of the target's
  part that passes through the layer (all of it when every path goes through the layer).

``J_c(x)`` is the Jacobian of the layer's channel ``c`` with respect to the input. The maps of the
``k`` channels come from ONE batched backward pass from the layer to the input
(``torch.autograd.grad(..., is_grads_batched=True)`` with ``k`` seeds, one per channel), not ``k``
passes; its arithmetic is still about ``k`` backward passes (on a CPU it is no faster than ``k``
single passes; the batching is meant for GPUs, where a small batch costs little more than one
picture).
"""
from __future__ import annotations

import warnings
from dataclasses import dataclass
from numbers import Integral

import torch
import torch.nn as nn
import torch.nn.functional as F

from netgaze.core.layers import LayerRef
from netgaze.core.layouts import LayoutArg, ReshapeArg
from netgaze.core.recorder import OutputSelector, Recorder, RecorderError
from netgaze.core.targets import TargetLike, as_target
from netgaze.errors import ArgumentError, ArgumentTypeError, LayerError
from netgaze.methods.templates import check_image_batch, layer_readers, target_scores


@dataclass
class Concepts:
    """What ``concepts`` returns; every tensor is on the model's device.

    Attributes:
        layer: the explained layer's resolved name (what ``layer=None`` or ``-1`` picked).
        channels: ``[B, k]`` long, the layer's most relevant channels per picture, most relevant first.
        shares: ``[B, k]``, each channel's relevance divided by the sum over ALL the layer's channels
            (all ``C`` shares add up to 1; these ``k`` are a part of it).
        maps: ``[B, k, H, W]``, each channel's conditional map at the input's size, raw (signed,
            not normalised).
        relevance: ``[B, k]``, each channel's relevance (activation times gradient summed over space).
        total: ``[B]``, the relevance summed over all the layer's channels (the target's first-order
            term at the layer).
        scores: ``[B]``, the explained target's scores.
    """
    layer: str
    channels: torch.Tensor
    shares: torch.Tensor
    maps: torch.Tensor
    relevance: torch.Tensor
    total: torch.Tensor
    scores: torch.Tensor

    @property
    def k(self) -> int:
        return int(self.channels.shape[1])


def relevance_formula(activations: torch.Tensor, grads: torch.Tensor) -> torch.Tensor:
    """Per-channel relevance ``[B, C]`` from activations and the target's gradients ``[B, C, h, w]``.

    ``(activations * grads)`` summed over space: the channel's part of the target's first-order
    term at the layer. A streaming pass that records activations and gradients itself uses this.
    """
    with torch.no_grad():
        return (activations.detach() * grads.detach()).sum(dim=(2, 3))


def shares_of(relevance: torch.Tensor, total: torch.Tensor) -> torch.Tensor:
    """``relevance / total`` per picture (``relevance`` ``[B, ...]``, ``total`` ``[B]``); 0 where the total is 0."""
    view = total.reshape(-1, *[1] * (relevance.dim() - 1))
    safe = torch.where(view == 0, torch.ones_like(view), view)
    return torch.where(view == 0, torch.zeros_like(relevance), relevance / safe)


def channel_relevance(model: nn.Module, x: torch.Tensor, layer: LayerRef | None = None,
                      target: TargetLike = None, *, output: OutputSelector = None,
                      layout: LayoutArg = None, reshape: ReshapeArg = None) -> torch.Tensor:
    """Every channel's relevance to the target at one layer: ``[B, C]`` (``[B, K, C]`` for a K-score target).

    One forward pass (autograd only from the layer on) and one backward pass from the target
    to the layer per score column, no pass back to the input: what a pass over a whole dataset
    calls per batch (a ``Target`` whose ``__call__`` returns the logits themselves gives every
    class's relevance, ``[B, classes, C]``).
    Same layers, layouts and targets as ``concepts``; ``relevance.sum(-1)`` is the total.
    """
    check_image_batch(x)
    target = as_target(target)
    with Recorder(model, [_one_layer(layer)], output=output, input_shape=x.shape) as rec:
        out = rec.forward(x)
        name = rec.names[0]
        scores = target_scores(target, out, x.shape[0])
        read = layer_readers(rec, {name: tuple(x.shape[-2:])}, layout, reshape)[name]
        columns = [scores] if scores.dim() == 1 else list(scores.unbind(1))
        found = []
        for i, column in enumerate(columns):
            grads = rec.gradients(column, input=False, retain_graph=i < len(columns) - 1)[name]
            found.append(relevance_formula(_nchw(read(rec.activations[name].detach()), name), read(grads)))
    return found[0] if scores.dim() == 1 else torch.stack(found, 1)


MAP_KINDS = ("relevance", "gradient")


def concepts(model: nn.Module, x: torch.Tensor, layer: LayerRef | None = None, target: TargetLike = None,
             k: int = 8, *, maps: str = "relevance", output: OutputSelector = None, layout: LayoutArg = None,
             reshape: ReshapeArg = None) -> Concepts:
    """The ``k`` channels of a layer that contribute most to the target, each with its conditional map.

    Relevance of channel ``c`` for picture ``b``: activation times the target's gradient at the
    layer, summed over space; ``shares`` divide it by the sum over all the layer's channels (all
    shares add up to 1; see the module's text). The conditional map of a channel is input times
    gradient of a backward pass started at the layer on that channel only (zennit-crp's
    ``CondAttribution`` with a plain gradient): from the channel's relevance map
    (``maps="relevance"``), or from the target's gradient (``maps="gradient"``: the maps of all
    ``C`` channels then add up to the input-times-gradient map, summed over colours, of the part
    of the target that passes through the layer). All ``k`` maps come from one forward pass and
    one batched backward pass.

    Args:
        model: any module; left exactly as found.
        x: image batch ``[B, C, H, W]``.
        layer: a dotted name, a module or a negative stage index; None: the last stage (``-1``).
            Channels-last and token outputs are read as ``[B, C, h, w]`` (``netgaze.core.layouts``);
            for tokens only the patch tokens count.
        target: None (each picture's top class), an int / list of ints, or a one-score target.
        k: how many channels, 1 to the layer's channel count.
        maps: ``"relevance"`` (the backward pass starts from the channel's relevance map, activation
            times gradient) or ``"gradient"`` (from the target's gradient: the explanation of the
            target through that channel alone).
        output: selects the explained tensor of a tuple/dict output (see ``Recorder``).
        layout: ``"nchw"``, ``"nhwc"`` or ``"tokens"`` when detection cannot tell (see ``gradcam``).
        reshape: a callable ``tensor -> [B, C, h, w]`` for layouts detection cannot read.

    Returns:
        ``Concepts`` with ``.layer``, ``.channels`` ``[B, k]``, ``.shares`` ``[B, k]``, ``.maps``
        ``[B, k, H, W]`` (raw), ``.relevance`` ``[B, k]``, ``.total`` ``[B]``, ``.scores`` ``[B]``.
    """
    check_image_batch(x)
    k = _check_k_type(k)
    if maps not in MAP_KINDS:
        raise ArgumentError(f"maps must be one of {', '.join(repr(m) for m in MAP_KINDS)}, got {maps!r}")
    target = as_target(target)
    with Recorder(model, [_one_layer(layer)], output=output, input_grad=True, input_shape=x.shape) as rec:
        out = rec.forward(x)
        name = rec.names[0]
        scores = target_scores(target.resolve(out), out, x.shape[0])
        if scores.dim() != 1:
            raise ArgumentError("concepts explains one score per picture; use TopClass(1) or Class(...)")
        read = layer_readers(rec, {name: tuple(x.shape[-2:])}, layout, reshape)[name]
        activations = _nchw(read(rec.activations[name]), name)      # in the graph from the input on
        grads = read(rec.gradients(scores, input=False, retain_graph=True)[name])
        relevance = relevance_formula(activations, grads)
        channels = activations.shape[1]
        if not 1 <= k <= channels:
            raise ArgumentError(f"k must be a whole number from 1 to {channels} (the channels of layer "
                                f"{name!r}), got {k}")
        top = relevance.topk(k, dim=1)
        start = grads * activations.detach() if maps == "relevance" else grads
        seeds = _channel_seeds(start, top.indices)
        input_grads = _batched_vjp(activations, rec.input, seeds)            # [k, B, C, H, W]
        with torch.no_grad():
            conditional = (input_grads * x.detach()[None]).sum(dim=2).transpose(0, 1)
        total = relevance.sum(dim=1)
        return Concepts(layer=name, channels=top.indices, shares=shares_of(top.values, total),
                        maps=conditional.contiguous(), relevance=top.values, total=total, scores=scores.detach())


def _one_layer(layer: LayerRef | None) -> LayerRef:
    if layer is None:
        return -1
    if isinstance(layer, (list, tuple)):
        raise LayerError("concepts explains one layer at a time; give one name, module or stage index")
    return layer


def _check_k_type(k) -> int:
    if isinstance(k, bool) or not isinstance(k, Integral):
        raise ArgumentTypeError(f"k must be a whole number of channels, got {type(k).__name__}")
    return int(k)


def _nchw(activations: torch.Tensor, name: str) -> torch.Tensor:
    if activations.dim() != 4:
        raise RecorderError(f"layer {name!r} gives shape {tuple(activations.shape)} after reshape=; "
                            "concepts need [B, C, h, w]")
    return activations


def _channel_seeds(start: torch.Tensor, channels: torch.Tensor) -> torch.Tensor:
    """``[k, B, C, h, w]``: seed ``j`` of picture ``b`` is ``start[b]`` kept on channel ``channels[b, j]`` only."""
    keep = F.one_hot(channels, start.shape[1]).to(start.dtype)               # [B, k, C]
    return keep.transpose(0, 1)[..., None, None] * start[None]


def _batched_vjp(outputs: torch.Tensor, inputs: torch.Tensor, seeds: torch.Tensor) -> torch.Tensor:
    """``d(seeds[j] . outputs)/d inputs`` for every ``j`` at once: one vmapped backward pass.

    A model with an operation that has no batching rule falls back to one backward pass per
    seed (same numbers), with a warning.
    """
    try:
        with warnings.catch_warnings():
            warnings.filterwarnings("ignore", message=".*performance drop.*")
            return torch.autograd.grad(outputs, inputs, grad_outputs=seeds, is_grads_batched=True,
                                       retain_graph=True)[0]
    except RuntimeError as err:   # an operation without a batching rule (vmap)
        warnings.warn(f"concepts: the batched backward pass failed ({str(err).splitlines()[0][:120]}); "
                      f"computing the {len(seeds)} conditional maps one pass each", RuntimeWarning, stacklevel=3)
        return torch.stack([torch.autograd.grad(outputs, inputs, grad_outputs=seed, retain_graph=True)[0]
                            for seed in seeds])


__all__ = ["Concepts", "concepts", "MAP_KINDS", "channel_relevance", "relevance_formula", "shares_of"]

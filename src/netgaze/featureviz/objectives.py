"""Objectives for activation maximization: scores to MAXIMISE, one per sample.

An objective maps a ``Context`` (recorded activations, the model output, the image) to a
tensor [B]. Objectives compose with ``+``, ``-``, unary ``-`` and scalar ``*`` / ``/``;
a composition stays one flat weighted sum of leaf objectives, never a deep tree:

    obj = channel("features.28", 5) - 100 * diversity("features.28") - 1e-3 * total_variation()

Unit objectives (``channel``, ``neuron``, ``class_logit``, ``direction``) are what to make
large; the regularizers (``diversity``, ``total_variation``, ``l1``, ``blur``) are
penalties (a similarity, a roughness, a distance) that one subtracts. The renderer
minimises ``loss = -objective`` summed over the batch.

A unit may be one int (every sample maximises it) or a sequence with one entry per
sample: ``channel("features.28", range(64))`` puts 64 channels on the batch axis.
``"features.28:5"`` parses to ``channel("features.28", 5)`` and ``"logits:3"`` to
``class_logit(3)``; the layer name ``"logits"`` always means the model's output.
"""
from __future__ import annotations

from dataclasses import dataclass
from numbers import Real
from typing import Callable, Sequence, Union

import torch
import torch.nn.functional as F

from netgaze.errors import ArgumentError, ArgumentTypeError

LOGITS = "logits"
Units = Union[int, Sequence[int]]


@dataclass
class Context:
    """What an objective may read: activations by layer name, the model output, the image [B, C, H, W]."""
    activations: dict[str, torch.Tensor]
    output: torch.Tensor | None
    image: torch.Tensor

    def layer(self, name: str) -> torch.Tensor:
        if name == LOGITS:
            if self.output is None:
                raise KeyError("the model output was not recorded")
            return self.output
        return self.activations[name]


class Objective:
    """A weighted sum of leaf objectives; call it on a Context to get scores [B].

    Args:
        fn: leaf score function ``Context -> Tensor[B]`` (None for a composed objective).
        name: readable description (shown in ``repr``).
        layers: layer names the leaf reads (``"logits"`` for the output).
        terms: for composed objectives, ``(weight, leaf)`` pairs.
    """

    def __init__(self, fn: Callable[[Context], torch.Tensor] | None = None, name: str = "objective",
                 layers: Sequence[str] = (), terms: Sequence[tuple[float, "Objective"]] | None = None):
        self.fn = fn
        self.name = name
        self.terms: list[tuple[float, Objective]] = list(terms) if terms is not None else [(1.0, self)]
        self.layers: tuple[str, ...] = tuple(dict.fromkeys(
            list(layers) + [n for _, leaf in self.terms if leaf is not self for n in leaf.layers]))

    def __call__(self, ctx: Context) -> torch.Tensor:
        total = None
        for weight, leaf in self.terms:
            value = leaf.fn(ctx) * weight if weight != 1.0 else leaf.fn(ctx)
            total = value if total is None else total + value
        return total

    @property
    def model_layers(self) -> list[str]:
        """Layers to record, without the output."""
        return [n for n in self.layers if n != LOGITS]

    # -- algebra -------------------------------------------------------------------------
    def __add__(self, other: "Objective | float") -> "Objective":
        if isinstance(other, Real) and other == 0:
            return self
        if not isinstance(other, Objective):
            return NotImplemented
        return Objective(name=f"{self.name} + {other.name}", terms=self.terms + other.terms)

    __radd__ = __add__  # sum([a, b]) starts from 0

    def __mul__(self, factor: float) -> "Objective":
        if not isinstance(factor, Real):
            return NotImplemented
        return Objective(name=f"{factor:g} * ({self.name})",
                         terms=[(float(factor) * w, leaf) for w, leaf in self.terms])

    __rmul__ = __mul__

    def __truediv__(self, factor: float) -> "Objective":
        if not isinstance(factor, Real):
            return NotImplemented
        return self * (1.0 / float(factor))

    def __neg__(self) -> "Objective":
        return self * -1.0

    def __sub__(self, other: "Objective | float") -> "Objective":
        if isinstance(other, Real) and other == 0:
            return self
        if not isinstance(other, Objective):
            return NotImplemented
        return self + (-other)

    def __repr__(self) -> str:
        return f"Objective({self.name})"


def _units(units: Units, batch: int, device: torch.device) -> torch.Tensor:
    """One unit index per sample as a LongTensor [B]."""
    if isinstance(units, int):
        return torch.full((batch,), units, dtype=torch.long, device=device)
    units = torch.as_tensor(list(units), dtype=torch.long, device=device)
    if len(units) != batch:
        raise ArgumentError(f"{len(units)} units given for a batch of {batch} images; give one per image or one int")
    return units


def _pick(acts: torch.Tensor, units: Units) -> torch.Tensor:
    """acts[i, units[i]] for each sample i."""
    index = _units(units, acts.shape[0], acts.device)
    return acts[torch.arange(acts.shape[0], device=acts.device), index]


def channel(layer: str, units: Units) -> Objective:
    """Mean activation of channel ``units`` (per sample) over all positions of ``layer``."""
    def fn(ctx: Context) -> torch.Tensor:
        picked = _pick(ctx.layer(layer), units)
        return picked.flatten(1).mean(1) if picked.dim() > 1 else picked
    return Objective(fn, f"channel({layer!r}, {_short(units)})", [layer])


def neuron(layer: str, units: Units, y: int | None = None, x: int | None = None) -> Objective:
    """Activation of channel ``units`` at one position (the centre by default)."""
    def fn(ctx: Context) -> torch.Tensor:
        acts = _pick(ctx.layer(layer), units)
        if acts.dim() == 1:
            return acts
        h, w = acts.shape[-2:]
        return acts[:, h // 2 if y is None else y, w // 2 if x is None else x]
    return Objective(fn, f"neuron({layer!r}, {_short(units)}, y={y}, x={x})", [layer])


def class_logit(units: Units) -> Objective:
    """The model output's unit ``units`` (the logit, never the softmax)."""
    def fn(ctx: Context) -> torch.Tensor:
        out = _pick(ctx.layer(LOGITS), units)
        return out.flatten(1).mean(1) if out.dim() > 1 else out
    return Objective(fn, f"class_logit({_short(units)})", [LOGITS])


def direction(layer: str, vector: torch.Tensor) -> Objective:
    """Mean over positions of the activation vector's projection on ``vector`` (unit length).

    ``vector`` is [C] (one direction for every sample) or [B, C].
    """
    vector = torch.as_tensor(vector, dtype=torch.float32)

    def fn(ctx: Context) -> torch.Tensor:
        acts = ctx.layer(layer)
        v = F.normalize(vector.to(acts), dim=-1)
        v = v.expand(acts.shape[0], -1) if v.dim() == 1 else v
        shape = (acts.shape[0], acts.shape[1]) + (1,) * (acts.dim() - 2)
        return (acts * v.view(shape)).sum(1).flatten(1).mean(1) if acts.dim() > 2 else (acts * v).sum(1)
    return Objective(fn, f"direction({layer!r})", [layer])


def diversity(layer: str) -> Objective:
    """Penalty: mean cosine similarity of each sample's Gram matrix with the other samples'.

    Subtract it (``channel(...) - k * diversity(layer)``) to make a batch rendering the
    same unit show different facets of it (lucid's diversity). Zero for a batch of one.
    """
    def fn(ctx: Context) -> torch.Tensor:
        acts = ctx.layer(layer)
        b, c = acts.shape[:2]
        if b < 2:
            return acts.new_zeros(b)
        flat = acts.reshape(b, c, -1)
        grams = F.normalize(torch.bmm(flat, flat.transpose(1, 2)).flatten(1), dim=1)
        sims = grams @ grams.T
        return (sims.sum(1) - sims.diagonal()) / (b - 1)
    return Objective(fn, f"diversity({layer!r})", [layer])


def total_variation() -> Objective:
    """Penalty: mean absolute difference of neighbouring pixels of the image."""
    def fn(ctx: Context) -> torch.Tensor:
        img = ctx.image
        dy = (img[..., 1:, :] - img[..., :-1, :]).abs().flatten(1).mean(1)
        dx = (img[..., :, 1:] - img[..., :, :-1]).abs().flatten(1).mean(1)
        return dy + dx
    return Objective(fn, "total_variation()")


def l1(constant: float = 0.5) -> Objective:
    """Penalty: mean absolute distance of the pixels from ``constant`` (0 pulls towards black)."""
    def fn(ctx: Context) -> torch.Tensor:
        return (ctx.image - constant).abs().flatten(1).mean(1)
    return Objective(fn, f"l1({constant:g})")


def blur() -> Objective:
    """Penalty: half the mean squared distance to a 3x3 box-blurred copy of the image (held fixed).

    Lucid's ``blur_input_each_step``: subtracting it pulls each step towards a blur.
    """
    def fn(ctx: Context) -> torch.Tensor:
        img = ctx.image
        with torch.no_grad():
            c = img.shape[1]
            kernel = torch.full((c, 1, 3, 3), 1 / 9, dtype=img.dtype, device=img.device)
            blurred = F.conv2d(F.pad(img, [1, 1, 1, 1], mode="replicate"), kernel, groups=c)
        return 0.5 * (img - blurred).pow(2).flatten(1).mean(1)
    return Objective(fn, "blur()")


def as_objective(spec: "Objective | str", units: Units | None = None) -> Objective:
    """Turn ``"layer:channel"`` (or ``"logits:class"``) into an objective; objectives pass through.

    Args:
        spec: an Objective, ``"features.28:5"``, or a bare layer name with ``units``.
        units: channels for a bare layer name (one per sample or one int).
    """
    if isinstance(spec, Objective):
        return spec
    if not isinstance(spec, str):
        raise ArgumentTypeError(f"an objective is an Objective or a 'layer:channel' string, not {type(spec).__name__}")
    layer, sep, unit = spec.rpartition(":")
    if sep:
        try:
            units = int(unit)
        except ValueError as err:
            raise ArgumentError(f"{spec!r}: the part after ':' must be a channel number") from err
    else:
        layer = spec
    if units is None:
        raise ArgumentError(f"{spec!r} names no channel: write 'layer:channel' (e.g. 'features.28:5')")
    return class_logit(units) if layer == LOGITS else channel(layer, units)


def _short(units: Units) -> str:
    if isinstance(units, int):
        return str(units)
    units = list(units)
    return str(units) if len(units) <= 4 else f"[{units[0]}, {units[1]}, ..., {units[-1]}] ({len(units)})"


__all__ = ["Context", "Objective", "LOGITS", "channel", "neuron", "class_logit", "direction", "diversity",
           "total_variation", "l1", "blur", "as_objective"]

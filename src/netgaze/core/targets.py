"""Targets: what to explain, as a callable ``model output -> one score per sample``.

A target returns scores of shape [B] (one explanation per sample) or [B, K] (K
explanations per sample, e.g. ``TopClass(3)``). Methods never special-case tasks: a
class logit, a rectangle of a reconstruction and a latent unit are all just scores.
"""
from __future__ import annotations

import math
from numbers import Integral
from typing import Any, Sequence, Union

import numpy as np
import torch

from netgaze.errors import ArgumentError, ArgumentTypeError

Box = tuple[int, int, int, int]


class Target:
    """Base class. Subclasses implement ``__call__(output) -> Tensor [B] or [B, K]``."""

    def __call__(self, output: torch.Tensor) -> torch.Tensor:  # pragma: no cover - interface
        raise NotImplementedError

    def resolve(self, output: torch.Tensor) -> "Target":
        """A target fixed on this output (TopClass becomes explicit classes)."""
        return self

    def sample(self, i: int) -> "Target":
        """The target of sample ``i`` alone, valid for a batch of any size."""
        return self

    def repeat(self, n: int) -> "Target":
        """The target for the batch repeated ``n`` times, copy after copy (``x.repeat(n, 1, 1, 1)``)."""
        return self


def _check_batch(count: int, batch: int, what: str) -> None:
    if count != batch:
        raise ArgumentError(f"{what}: {count} targets given for a batch of {batch}; give one per sample or a single one")


class Class(Target):
    """The logit of class ``c``: an int, or one int per sample (a list, tensor or numpy array)."""

    def __init__(self, c: Union[int, Sequence[int], torch.Tensor, np.ndarray]):
        self.c = as_classes(c)

    def __call__(self, output: torch.Tensor) -> torch.Tensor:
        logits = _as_logits(output, type(self).__name__)
        if isinstance(self.c, int):
            _check_class(self.c, logits.shape[1])
            return logits[:, self.c]
        classes = list(self.c)
        _check_batch(len(classes), logits.shape[0], "Class")
        for c in classes:
            _check_class(int(c), logits.shape[1])
        index = torch.as_tensor(classes, device=logits.device, dtype=torch.long)
        return logits.gather(1, index[:, None])[:, 0]

    def sample(self, i: int) -> "Class":
        return self if isinstance(self.c, int) else Class(int(list(self.c)[i]))

    def repeat(self, n: int) -> "Class":
        return self if isinstance(self.c, int) else Class([int(c) for c in self.c] * n)

    def __repr__(self) -> str:
        return f"Class({self.c!r})"


class TopClass(Target):
    """The k highest logits of each sample: scores [B] for k=1, [B, k] otherwise."""

    def __init__(self, k: int = 1):
        k = as_classes(k)
        if isinstance(k, list) or k < 1:
            raise ArgumentError(f"TopClass needs k >= 1, got {k}")
        self.k = k

    def __call__(self, output: torch.Tensor) -> torch.Tensor:
        logits = _as_logits(output, "TopClass")
        if self.k > logits.shape[1]:
            raise ArgumentError(f"TopClass({self.k}) asks for more classes than the model's {logits.shape[1]}")
        top = logits.topk(self.k, dim=1).values
        return top[:, 0] if self.k == 1 else top

    def classes(self, output: torch.Tensor) -> torch.Tensor:
        """The explained class indices, [B] or [B, k]."""
        top = _as_logits(output, "TopClass").topk(self.k, dim=1).indices
        return top[:, 0] if self.k == 1 else top

    def repeat(self, n: int) -> "TopClass":
        raise ArgumentError("resolve() a TopClass target before repeating it")

    def resolve(self, output: torch.Tensor) -> Target:
        if self.k != 1:
            raise ArgumentError("this method explains one class per sample; use TopClass(1) or Class(...)")
        return Class(self.classes(output).tolist())

    def __repr__(self) -> str:
        return f"TopClass({self.k})"


PREDICTED = "predicted"


class Area(Target):
    """The SUM of a dense output [B, C, H, W] over a region.

    A segmenter whose logits come at a lower resolution than its input (Hugging Face's
    Segformer: 1/4) is explained through those logits at their own resolution; give the
    area in input pixels with ``size=`` (the input's ``(H, W)``) and the target scales it
    to the output's grid itself: a box to the output cells it touches
    (``floor(y0 * h / H)`` .. ``ceil(y1 * h / H)``), a mask by area averaging (each output
    cell weighted by the share of its input pixels in the mask). A mask whose size is a
    whole multiple of the output's (the same factor on both sides) is scaled so without
    ``size=``.

    Args:
        box: ``(y0, x0, y1, x1)`` in output pixels (in pixels of ``size`` when given),
            end-exclusive like a Python slice.
        mask: bool or float weights, [H, W] for every sample or [B, H, W] per sample.
        channel: one channel (class, colour) to sum; all channels when None; ``"predicted"``:
            per sample, the class the model predicts at most pixels of the area (segmentation:
            summing every class's logits rarely means anything, and is often negative
            everywhere). Ties go to the lower class index; ``predicted_channels`` tells which.
        size: ``(H, W)`` of the picture the box or mask is drawn on (the input); None: the
            box is in output pixels.
    """

    def __init__(self, box: Box | None = None, mask: torch.Tensor | None = None,
                 channel: int | str | None = None, size: tuple[int, int] | None = None):
        if isinstance(channel, str) and channel != PREDICTED:
            raise ArgumentError(f'channel is an index, None or "{PREDICTED}", got {channel!r}')
        channel = None if channel is None else channel if channel == PREDICTED else as_classes(channel)
        if isinstance(channel, list):
            raise ValueError(f"Area takes one channel, got {channel!r}")
        if (box is None) == (mask is None):
            raise ArgumentError("Area needs exactly one of box=(y0, x0, y1, x1) or mask=")
        if box is not None:
            if len(box) != 4:
                raise ArgumentError(f"box is (y0, x0, y1, x1), got {box!r}")
            y0, x0, y1, x1 = (int(v) for v in box)
            if y1 <= y0 or x1 <= x0 or min(y0, x0) < 0:
                raise ArgumentError(f"empty or negative box {box!r}: need 0 <= y0 < y1 and 0 <= x0 < x1")
            box = (y0, x0, y1, x1)
        if mask is not None:
            mask = torch.as_tensor(mask)
            if mask.dim() not in (2, 3):
                raise ArgumentError(f"mask must be [H, W] or [B, H, W], got shape {tuple(mask.shape)}")
            if mask.is_floating_point() and not bool(torch.isfinite(mask).all()):
                raise ArgumentError("mask holds NaN or infinite weights")
            empty = (mask != 0).flatten(-2).any(-1).logical_not()
            if bool(empty.any()):
                which = "the mask" if mask.dim() == 2 else f"the mask of sample {int(empty.nonzero()[0])}"
                raise ArgumentError(f"{which} selects no pixel (all False / 0): an empty area has no score "
                                    "to explain")
        if size is not None:
            if len(size) != 2 or min(int(v) for v in size) < 1:
                raise ArgumentError(f"size is the picture's (H, W), got {size!r}")
            size = (int(size[0]), int(size[1]))
            if box is not None and (box[2] > size[0] or box[3] > size[1]):
                raise ArgumentError(f"box {box} lies outside the {size[0]}x{size[1]} picture")
            if mask is not None and tuple(mask.shape[-2:]) != size:
                raise ArgumentError(f"mask size {tuple(mask.shape[-2:])} differs from size={size}")
        self.box, self.mask, self.channel, self.size = box, mask, channel, size

    def _on_grid(self, h: int, w: int) -> tuple[Box | None, torch.Tensor | None]:
        """The box or mask on an ``h x w`` output grid (scaled from ``size`` or from a larger mask)."""
        if self.box is not None:
            if self.size is None or self.size == (h, w):
                return self.box, None
            y0, x0, y1, x1 = self.box
            sy, sx = h / self.size[0], w / self.size[1]
            top, left = math.floor(y0 * sy), math.floor(x0 * sx)
            return (top, left, max(top + 1, math.ceil(y1 * sy)), max(left + 1, math.ceil(x1 * sx))), None
        mask = self.mask
        mh, mw = mask.shape[-2:]
        if (mh, mw) == (h, w):
            return None, mask
        whole = mh % h == 0 and mw % w == 0 and mh // h == mw // w
        if self.size is None and not whole:
            raise ArgumentError(f"mask size {(mh, mw)} differs from the output's {(h, w)} "
                                "(pass size=(H, W) to give it in input pixels)")
        flat = mask.float()[None] if mask.dim() == 2 else mask.float()[:, None]
        scaled = torch.nn.functional.adaptive_avg_pool2d(flat, (h, w))
        return None, scaled[0] if mask.dim() == 2 else scaled[:, 0]

    def __call__(self, output: torch.Tensor) -> torch.Tensor:
        if output.dim() != 4:
            raise ArgumentError(f"Area targets a dense output [B, C, H, W]; the model returned shape {tuple(output.shape)}")
        box, mask = self._on_grid(*output.shape[-2:])
        dense = output
        if self.channel == PREDICTED:
            channels = self.predicted_channels(output)
            dense = output.gather(1, channels.view(-1, 1, 1, 1).expand(-1, 1, *output.shape[-2:]))
        elif self.channel is not None:
            if not 0 <= self.channel < output.shape[1]:
                raise ArgumentError(f"channel {self.channel} out of range for {output.shape[1]} output channels")
            dense = output[:, self.channel:self.channel + 1]
        if box is not None:
            y0, x0, y1, x1 = box
            h, w = output.shape[-2:]
            if y1 > h or x1 > w:
                raise ArgumentError(f"box {self.box} lies outside the {h}x{w} output")
            return dense[:, :, y0:y1, x0:x1].sum(dim=(1, 2, 3))
        mask = mask.to(device=output.device, dtype=output.dtype)
        if mask.dim() == 3:
            _check_batch(mask.shape[0], output.shape[0], "Area mask")
            mask = mask[:, None]
        return (dense * mask).sum(dim=(1, 2, 3))

    def predicted_channels(self, output: torch.Tensor) -> torch.Tensor:
        """Per sample [B]: the class predicted (argmax over channels) at most pixels of the area."""
        region = self._region(output)
        votes = torch.nn.functional.one_hot(output.detach().argmax(1), output.shape[1]).to(region.dtype)
        return (votes * region[..., None]).sum(dim=(1, 2)).argmax(1)

    def _region(self, output: torch.Tensor) -> torch.Tensor:
        """The area as weights [B, H, W] on the output's grid."""
        b, h, w = output.shape[0], output.shape[-2], output.shape[-1]
        box, mask = self._on_grid(h, w)
        if box is not None:
            y0, x0, y1, x1 = box
            if y1 > h or x1 > w:
                raise ArgumentError(f"box {self.box} lies outside the {h}x{w} output")
            region = torch.zeros(b, h, w, device=output.device)
            region[:, y0:y1, x0:x1] = 1.0
            return region
        mask = mask.to(device=output.device, dtype=torch.float32)
        return (mask != 0).float().expand(b, h, w) if mask.dim() == 2 else (mask != 0).float()

    def sample(self, i: int) -> "Area":
        if self.mask is not None and self.mask.dim() == 3:
            return Area(mask=self.mask[i], channel=self.channel, size=self.size)
        return self

    def repeat(self, n: int) -> "Area":
        if self.mask is not None and self.mask.dim() == 3:
            return Area(mask=self.mask.repeat(n, 1, 1), channel=self.channel, size=self.size)
        return self

    def __repr__(self) -> str:
        region = f"box={self.box}" if self.box is not None else f"mask{tuple(self.mask.shape)}"
        return f"Area({region}, channel={self.channel})"


class Latent(Target):
    """Unit ``index`` of a vector output [B, D] (e.g. a VAE encoder's mean)."""

    def __init__(self, index: int):
        self.index = int(index)

    def __call__(self, output: torch.Tensor) -> torch.Tensor:
        if output.dim() != 2:
            raise ArgumentError(f"Latent targets a vector output [B, D]; got shape {tuple(output.shape)}")
        if not 0 <= self.index < output.shape[1]:
            raise ArgumentError(f"latent index {self.index} out of range for {output.shape[1]} units")
        return output[:, self.index]

    def __repr__(self) -> str:
        return f"Latent({self.index})"


TargetLike = Union[Target, int, Sequence[int], torch.Tensor, np.ndarray, None]


def as_target(target: TargetLike) -> Target:
    """None means the top class; an int or one int per sample (list, tensor, numpy) means ``Class``."""
    if target is None:
        return TopClass(1)
    if isinstance(target, Target):
        return target
    if isinstance(target, (Integral, list, tuple, torch.Tensor, np.ndarray)) and not isinstance(target, (bool, np.bool_)):
        return Class(target)
    raise ArgumentTypeError(f"unsupported target {target!r}: use ng.Class, ng.TopClass, ng.Area, ng.Latent, "
                    "ng.Detection or None")


def as_classes(c: Any) -> int | list[int]:
    """One class index (an int) or one per sample (a list of ints) from ints, tensors or numpy values."""
    if isinstance(c, (torch.Tensor, np.ndarray)):
        if c.ndim > 1:
            raise ArgumentError(f"classes are one int or one int per sample, got an array of shape {tuple(c.shape)}")
        c = c.tolist()
    if isinstance(c, (bool, np.bool_)) or isinstance(c, float):
        raise ArgumentTypeError(f"a class is an integer, got {c!r}")
    if isinstance(c, Integral):
        return int(c)
    values = list(c)
    if not all(isinstance(v, Integral) and not isinstance(v, (bool, np.bool_)) for v in values):
        raise ArgumentTypeError(f"classes must be integers, got {values!r}")
    return [int(v) for v in values]


def _as_logits(output: torch.Tensor, name: str) -> torch.Tensor:
    if output.dim() != 2:
        raise ArgumentError(f"{name} needs class scores [B, N]; the model returned shape {tuple(output.shape)}"
                            " (use ng.Area for a dense output, or output= to pick one of several outputs)")
    return output


def _check_class(c: int, n: int) -> None:
    if not 0 <= c < n:
        raise ArgumentError(f"class {c} out of range: the model has {n} classes")

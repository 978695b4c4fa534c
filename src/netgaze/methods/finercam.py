"""Finer-CAM (Zhang et al. 2025): explain a class against the classes the model finds most similar,
so the map shows what tells them apart."""
from __future__ import annotations

from typing import Callable, Sequence

import torch
import torch.nn as nn

from netgaze.core.inputs import Inputs
from netgaze.core.layers import LayerRef
from netgaze.core.layouts import LayoutArg, ReshapeArg
from netgaze.core.recorder import OutputSelector
from netgaze.core.targets import Class, Target, TargetLike, TopClass, as_target
from netgaze.errors import ArgumentError
from netgaze.methods.gradcam import gradcam

EPS = 1e-9


class Finer(Target):
    """``sum_i p_i (y_main - alpha y_i) / (sum_i p_i + 1e-9)`` over the ``compare`` classes whose
    logits are closest to the main class's (``p`` the softmax, differentiated through as the
    peers do). The main class is ``base``'s: the top class or given classes."""

    def __init__(self, base: Target, alpha: float = 1.0, compare: int = 3):
        if isinstance(base, TopClass) and base.k != 1:
            raise ArgumentError("finercam explains one class per sample; use TopClass(1) or Class(...)")
        if not isinstance(base, (Class, TopClass)):
            raise ArgumentError(f"finercam compares class logits: target must be None, classes or Class, not {base!r}")
        self.base, self.alpha, self.compare = base, float(alpha), compare

    def main_classes(self, logits: torch.Tensor) -> torch.Tensor:
        if isinstance(self.base, TopClass):
            return self.base.classes(logits)
        self.base(logits)    # checks the classes against the output
        c = self.base.c
        return torch.as_tensor([c] * len(logits) if isinstance(c, int) else list(c), device=logits.device)

    def compared(self, logits: torch.Tensor) -> torch.Tensor:
        """[B, compare] class indices, the closest logits to the main class's first."""
        main = self.main_classes(logits)
        values = logits.detach()
        distance = (values - values.gather(1, main[:, None])).abs()
        distance.scatter_(1, main[:, None], float("inf"))          # never compare a class to itself
        return distance.argsort(dim=1, stable=True)[:, :self.compare]

    def __call__(self, output: torch.Tensor) -> torch.Tensor:
        if output.dim() != 2 or output.shape[1] <= self.compare:
            raise ArgumentError(f"finercam needs class scores [B, N] with N > compare={self.compare}; "
                                f"the model returned shape {tuple(output.shape)}")
        main = self.main_classes(output)
        others = self.compared(output)
        p = torch.softmax(output, dim=1).gather(1, others)
        differences = output.gather(1, main[:, None]) - self.alpha * output.gather(1, others)
        return (p * differences).sum(1) / (p.sum(1) + EPS)

    def sample(self, i: int) -> "Finer":
        return Finer(self.base.sample(i), self.alpha, self.compare)

    def repeat(self, n: int) -> "Finer":
        return Finer(self.base.repeat(n), self.alpha, self.compare)

    def __repr__(self) -> str:
        return f"Finer({self.base!r}, alpha={self.alpha}, compare={self.compare})"


def finercam(model: nn.Module, x: Inputs, layer: LayerRef | Sequence[LayerRef] = -1,
             target: TargetLike = None, *, alpha: float = 1.0, compare: int = 3,
             method: Callable = gradcam, output: OutputSelector = None,
             layout: LayoutArg = None, reshape: ReshapeArg = None
             ) -> torch.Tensor | dict[str, torch.Tensor]:
    """Finer-CAM maps; same arguments and return values as ``gradcam``, plus:

    Args:
        alpha: how strongly the similar classes are subtracted (0 gives the main class's own
            weighted logit; 1, the default, the plain difference).
        compare: how many of the most similar classes (closest logits) to compare against
            (pytorch-grad-cam's default ``comparison_categories=[1, 2, 3]`` is ``compare=3``).
        method: the CAM method run on the contrast target (``ng.gradcam`` by default; any
            method taking ``target=``).

    ``target`` picks the main class (None: the top class). The contrast target is ``Finer``.
    """
    if not isinstance(compare, int) or isinstance(compare, bool) or compare < 1:
        raise ArgumentError(f"compare must be a positive number of classes, got {compare!r}")
    if not isinstance(alpha, (int, float)) or isinstance(alpha, bool) or not alpha == alpha:
        raise ArgumentError(f"alpha must be a number, got {alpha!r}")
    contrast = Finer(as_target(target), alpha, compare)
    return method(model, x, layer, target=contrast, output=output, layout=layout, reshape=reshape)

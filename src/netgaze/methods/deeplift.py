"""DeepLift (Shrikumar et al. 2017, rescale rule) and DeepLiftShap (its mean over a baseline distribution)."""
from __future__ import annotations

import torch
import torch.nn as nn

from netgaze.core.recorder import OutputSelector, Recorder
from netgaze.core.targets import TargetLike
from netgaze.errors import ArgumentError
from netgaze.methods.deeplift_rules import rescale_rules
from netgaze.methods.templates import check_image_batch, fixed_target, target_scores


DEFAULT_REFERENCES = 8


def _multipliers(model: nn.Module, x: torch.Tensor, reference: torch.Tensor, target, output: OutputSelector,
                 eps: float) -> torch.Tensor:
    """DeepLift multipliers [N, C, H, W] of N (picture, reference) row pairs from one pass over both."""
    with Recorder(model, [], output=output, input_grad=True) as rec, rescale_rules(model, eps):
        out = rec.forward(torch.cat([x, reference]))
        scores = target_scores(target.repeat(2), out, 2 * len(x))
        if scores.dim() != 1:
            raise ArgumentError("deeplift explains one score per sample; use TopClass(1) or Class(...)")
        # Both halves' scores, as Captum: the max-pool rule mixes in the reference's gradient.
        return rec.gradients(scores)["input"][:len(x)]


def _check(x: torch.Tensor, name: str) -> None:
    if isinstance(x, tuple):
        raise ArgumentError(f"{name} takes one picture batch [B, C, H, W], not a tuple of inputs")
    check_image_batch(x)


def deeplift(model: nn.Module, x: torch.Tensor, target: TargetLike = None, *,
             baseline: float | torch.Tensor = 0.0, eps: float = 1e-10,
             output: OutputSelector = None) -> torch.Tensor:
    """DeepLift attributions [B, C, H, W] with the rescale rule (Captum's DeepLift).

    ``(x - baseline) * multiplier``, where every ``nn.ReLU``, ``ELU``, ``LeakyReLU``, ``Sigmoid``,
    ``Tanh`` and ``Softplus`` module passes ``delta out / delta in`` back instead of its derivative
    (the derivative where ``|delta in| < eps``) and ``nn.MaxPool2d`` Captum's max-pool rule. On a
    network of linear layers and those activations the attributions sum to
    ``score(x) - score(baseline)``; other nonlinearities (``F.relu`` calls, GELU, Softmax,
    attention) backpropagate their gradient, so the sum is then only close. Unlike Captum, a
    module called twice (torchvision's resnets reuse one ReLU per block) gets the rule at each call.

    Args:
        baseline: a number, or a tensor broadcastable to one picture [C, H, W] or to [B, C, H, W].
        eps: below this ``|delta in|`` an activation uses its derivative.

    Picture and baseline run as one batch of 2B; the target is fixed on the clean picture.
    """
    _check(x, "deeplift")
    base = torch.as_tensor(baseline, dtype=x.dtype, device=x.device)
    base = base.expand_as(x) if base.dim() == 4 else base.expand(x.shape[1:])[None].expand_as(x)
    target = fixed_target(model, x, target, output)
    return (x - base) * _multipliers(model, x, base.contiguous(), target, output, eps)


def deeplift_shap(model: nn.Module, x: torch.Tensor, target: TargetLike = None, *,
                  baselines: torch.Tensor | None = None, eps: float = 1e-10, batch_size: int = 64,
                  seed: int = 0, output: OutputSelector = None) -> torch.Tensor:
    """Mean DeepLift attributions [B, C, H, W] over a distribution of baselines (Captum's DeepLiftShap).

    Args:
        baselines: reference pictures [N, C, H, W] (e.g. a few training pictures); every
            picture is explained against each of them and the N attributions averaged.
            None: ``DEFAULT_REFERENCES`` pictures of uniform noise between the batch's lowest
            and highest value, drawn with ``seed`` (Captum has no default).
        batch_size: (picture, baseline) pairs per pass (each pass runs twice as many rows).

    Summed, the attributions give ``score(x) - mean score(baselines)`` on the networks where
    ``deeplift`` is complete. The target is fixed on the clean picture.
    """
    _check(x, "deeplift_shap")
    if baselines is None:
        noise = torch.rand(DEFAULT_REFERENCES, *x.shape[1:], generator=torch.Generator().manual_seed(seed))
        low, high = float(x.min()), float(x.max())
        baselines = low + (high - low) * noise.to(device=x.device, dtype=x.dtype)
    if not isinstance(baselines, torch.Tensor) or baselines.dim() != 4 or baselines.shape[1:] != x.shape[1:]:
        shape = tuple(baselines.shape) if isinstance(baselines, torch.Tensor) else type(baselines).__name__
        raise ArgumentError(f"baselines must be pictures [N, {', '.join(map(str, x.shape[1:]))}], got {shape}")
    if batch_size < 1:
        raise ArgumentError(f"batch_size must be >= 1, got {batch_size}")
    baselines = baselines.to(dtype=x.dtype, device=x.device)
    target = fixed_target(model, x, target, output)
    rows = len(x)
    total = torch.zeros_like(x)
    for chunk in baselines.split(max(1, batch_size // rows)):      # every picture against k baselines
        pictures = x.repeat(len(chunk), 1, 1, 1)
        reference = chunk.repeat_interleave(rows, dim=0)
        attributions = (pictures - reference) * _multipliers(model, pictures, reference, target.repeat(len(chunk)),
                                                             output, eps)
        total += attributions.view(len(chunk), *x.shape).sum(0)
    return total / len(baselines)

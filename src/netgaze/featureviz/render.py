"""Activation maximization: optimise images so that units of a model respond strongly.

``visualize(model, "features.28", channels=range(64), steps=256, size=128)`` renders every
channel in ONE optimisation with the channel on the batch axis; the per-step overhead
(parameterization, transforms, optimizer, Python) is paid once per step, and devices that
run a batch better than single images (GPUs, many CPU threads) gain the most. On one CPU
thread the model's convolutions dominate and cost the same per image at any batch size,
so there a batch is about as fast per unit as one unit at a time (see
``benchmarks/bench_featureviz.py``). The forward pass stops at the deepest layer the
objective reads (``Recorder(stop=True)``).

Hooks come from ``netgaze.core.recorder.Recorder``: it puts the model in eval mode, freezes the
parameters and restores everything afterwards (also when something raises).
"""
from __future__ import annotations

import os
import sys
from typing import Sequence

import torch
import torch.nn as nn
from tqdm.auto import tqdm

from netgaze import viz
from netgaze.errors import ArgumentError
from netgaze.featureviz.objectives import LOGITS, Context, Objective, channel, class_logit
from netgaze.featureviz.param import make_image
from netgaze.featureviz.transforms import Transform, compose, standard_transforms
from netgaze.core.layers import CONV_TYPES
from netgaze.core.recorder import OutputSelector, Recorder


def image_channels(model: nn.Module) -> int:
    """Colour channels the model takes: the first convolution's input channels (1 or 3; else 3)."""
    for module in model.modules():
        if isinstance(module, CONV_TYPES):
            return module.in_channels if module.in_channels in (1, 3) else 3
    return 3


def render(model: nn.Module, objective: Objective, n: int, size: int | tuple[int, int], *,
           steps: int = 256, keys: Sequence[int] | None = None, param: str = "fourier",
           transforms: Sequence[Transform] | None = None, lr: float = 0.05, channels: int | None = None,
           mean: Sequence[float] | None = None, std: Sequence[float] | None = None,
           output: OutputSelector = None, random_state: int = 0,
           device: torch.device | str | None = None, progress: bool | str = False) -> torch.Tensor:
    """Optimise ``n`` images to maximise ``objective`` (summed over the batch) with Adam.

    Args:
        model: any module taking images [B, C, H, W].
        objective: what to maximise; its leaves name the layers to record.
        n: batch size (images rendered at once).
        size: image size, an int or (height, width).
        steps: optimisation steps.
        keys: one integer per image that seeds its starting noise (default 0..n-1); the
            same key and ``random_state`` give the same image in any batch.
        param: ``"fourier"`` (decorrelated, lucid's default) or ``"pixel"``.
        transforms: robustness transforms (default ``standard_transforms(size)``; ``[]`` for none).
        lr: Adam learning rate (lucid's 0.05).
        channels: image channels (default: from the model's first convolution).
        mean: per-channel normalisation applied before the model (e.g. ImageNet's for
        std: per-channel normalisation applied before the model (e.g. ImageNet's for
            torchvision models); None when the model takes [0, 1] pictures.
        output: which tensor of a tuple/dict output is "logits" (see ``Recorder``).
        random_state: seed of the starting noise and of the transforms' random draws.
        device: where to optimise (default: the model's device).
        progress: a progress bar over the steps on stderr (a string is its label).

    Returns:
        Images [n, channels, H, W] in [0, 1], on ``device``, detached.
    """
    h, w = (size, size) if isinstance(size, int) else tuple(size)
    device = torch.device(device) if device is not None else _model_device(model)
    keys = list(range(n)) if keys is None else list(keys)
    if len(keys) != n:
        raise ArgumentError(f"{len(keys)} keys for {n} images")
    channels = channels or image_channels(model)
    image = make_image(param, keys, channels, (h, w), random_state=random_state, device=device)
    transform = compose(standard_transforms((h, w)) if transforms is None else list(transforms))
    shift, scale = _normalizer(mean, std, channels, device)
    generator = torch.Generator().manual_seed(int(random_state))
    optimizer = _Adam(image.params, lr=lr)
    wants_output = LOGITS in objective.layers
    with Recorder(model, objective.model_layers, output=output, input_grad=True,
                  stop=_stops_early(objective)) as rec:
        for _ in tqdm(range(steps), desc=progress if isinstance(progress, str) else "activation maximization",
                      unit="step", file=sys.stderr, dynamic_ncols=True, leave=False, disable=not progress):
            img = image()
            x = transform(img, generator)
            if shift is not None:
                x = (x - shift) / scale
            out = rec.forward(x)
            ctx = Context(activations=rec.activations, output=out if wants_output else None, image=img)
            loss = -objective(ctx).sum()
            _backward(loss, x, rec.input, image.params)
            optimizer.step()
    with torch.no_grad():
        return image().detach()


def _stops_early(objective: Objective) -> bool:
    """Whether the forward pass can end at the deepest layer the objective reads: it can
    unless the objective reads the logits (vgg16's classifier never runs for features.28)."""
    return LOGITS not in objective.layers and bool(objective.model_layers)


def objective_scores(model: nn.Module, objective: Objective, images: torch.Tensor, *,
                     mean: Sequence[float] | None = None, std: Sequence[float] | None = None,
                     output: OutputSelector = None) -> torch.Tensor:
    """Evaluate ``objective`` on images [B, C, H, W] in [0, 1] (no transforms) -> scores [B]."""
    shift, scale = _normalizer(mean, std, images.shape[1], images.device)
    x = images if shift is None else (images - shift) / scale
    with Recorder(model, objective.model_layers, output=output, grads=False, stop=_stops_early(objective)) as rec:
        out = rec.forward(x)
        ctx = Context(activations=rec.activations, output=None if out is None else out.detach(), image=images)
        return objective(ctx).detach()


class _Adam:
    """Adam (Kingma & Ba, PyTorch's defaults) in a few lines: elementwise, so each image's
    update depends on its own gradient only; avoids importing torch.optim's compiler
    machinery (seconds on a busy machine) for one tensor."""

    def __init__(self, params: list[torch.Tensor], lr: float, betas: tuple[float, float] = (0.9, 0.999),
                 eps: float = 1e-8):
        self.params, self.lr, self.betas, self.eps, self.t = params, lr, betas, eps, 0
        self.m = [torch.zeros_like(p) for p in params]
        self.v = [torch.zeros_like(p) for p in params]

    @torch.no_grad()
    def step(self) -> None:
        self.t += 1
        b1, b2 = self.betas
        for p, m, v in zip(self.params, self.m, self.v):
            m.mul_(b1).add_(p.grad, alpha=1 - b1)
            v.mul_(b2).addcmul_(p.grad, p.grad, value=1 - b2)
            denom = (v / (1 - b2 ** self.t)).sqrt_().add_(self.eps)
            p.addcdiv_(m, denom, value=-self.lr / (1 - b1 ** self.t))
            p.grad = None


def _backward(loss: torch.Tensor, x: torch.Tensor, model_input: torch.Tensor,
              params: list[torch.Tensor]) -> None:
    """Fill ``params[i].grad``: through the model (which starts at the Recorder's leaf copy of
    ``x``) and directly through image regularizers."""
    grads = torch.autograd.grad(loss, [model_input] + params, retain_graph=True, allow_unused=True)
    g_input, direct = grads[0], grads[1:]
    through_model = torch.autograd.grad(x, params, grad_outputs=g_input) if g_input is not None \
        else [None] * len(params)
    for p, a, b in zip(params, through_model, direct):
        p.grad = (a if b is None else b if a is None else a + b) if (a is not None or b is not None) \
            else torch.zeros_like(p)


def visualize(model: nn.Module, layer: str, channels: int | Sequence[int] | None = None, steps: int = 256,
              size: int | tuple[int, int] = 128, *, objective: str = "channel",
              regularizer: Objective | None = None, param: str = "fourier",
              transforms: Sequence[Transform] | None = None, lr: float = 0.05, batch_size: int | None = None,
              mean: Sequence[float] | None = None, std: Sequence[float] | None = None,
              output: OutputSelector = None, random_state: int = 0, device: torch.device | str | None = None,
              out: str | os.PathLike | None = None, ncols: int | None = None,
              progress: bool = False) -> torch.Tensor:
    """Render channels of a layer (or class units of the output) by activation maximization.

    Args:
        model: any module taking images [B, C, H, W] (1 colour channel if its first
            convolution takes one).
        layer: a ``named_modules()`` name, or ``"logits"`` for the model's output. Prefer
            a layer after a nonlinearity (a ReLU, a block output): a conv layer's own
            output is linear in the picture, so its channel mean is maximised by a flat
            colour field, with a fringe where the model's zero padding cuts the kernel.
        channels: the units to render (default: every channel of the layer, found with a
            trial forward pass); one image each, all in one batch.
        steps: Adam steps.
        size: image size, an int or (height, width); use the model's training size.
        objective: ``"channel"`` (mean over positions; ``class_logit`` for ``"logits"``) or
            ``"neuron"`` (the centre position).
        regularizer: a penalty objective subtracted from each unit's objective (e.g.
            ``1e-2 * total_variation()``); None for none. For class units of a small grey
            classifier (digits), ``param="pixel"`` with ``30 * l1(0.0) + 30 * total_variation()``
            gives strokes on black rather than saturated texture (penalties are per-pixel means,
            so their weights compare with the unit's raw activation).
        param: ``"fourier"`` or ``"pixel"`` parameterization.
        transforms: robustness transforms (default: ``standard_transforms(size)``).
        lr: Adam learning rate.
        batch_size: render at most this many units at once (memory); the result does not
            depend on it.
        mean: normalisation the model expects after [0, 1] pictures (None: none).
        std: normalisation the model expects after [0, 1] pictures (None: none).
        output: which tensor of a tuple/dict output is "logits".
        random_state: seed; the same seed renders each unit the same in any batch.
        device: where to optimise (default: the model's device).
        out: when given, write the images as a labelled grid PNG there.
        ncols: grid columns (default: about the square root of the count).
        progress: a progress bar per batch of units, over the steps, on stderr.

    Returns:
        Images [N, C, H, W] in [0, 1], one per unit in ``channels`` order.
    """
    from netgaze.featureviz.objectives import neuron

    if objective not in ("channel", "neuron"):
        raise ArgumentError(f"objective must be 'channel' or 'neuron', not {objective!r}")
    if layer != LOGITS:
        from netgaze.core.layers import resolve_layer
        layer = resolve_layer(model, layer)[0]
    units = _unit_list(model, layer, channels, size, output, device)
    batch = batch_size or len(units)
    chunks = []
    for start in range(0, len(units), batch):
        part = units[start:start + batch]
        if layer == LOGITS and objective == "channel":
            obj = class_logit(part)
        else:
            obj = (neuron if objective == "neuron" else channel)(layer, part)
        if regularizer is not None:
            obj = obj - regularizer
        chunks.append(render(model, obj, len(part), size, steps=steps, keys=part, param=param,
                             transforms=transforms, lr=lr, mean=mean, std=std, output=output,
                             random_state=random_state, device=device,
                             progress=progress and f"{layer} units {part[0]}-{part[-1]} ({len(part)})"))
    images = torch.cat(chunks)
    if out is not None:
        save_grid(images, out, labels=[str(u) for u in units], ncols=ncols)
    return images


def save_grid(images: torch.Tensor, path: str | os.PathLike, labels: Sequence[str] | None = None,
              ncols: int | None = None, scale: int | None = None) -> None:
    """Write images [N, C, H, W] in [0, 1] as a grid PNG (small images enlarged to ~96 px)."""
    n, _, h, _ = images.shape
    ncols = ncols or max(1, int(round(n ** 0.5)))
    scale = scale or max(1, 96 // h)
    tiles = viz.to_uint8(images)
    col_labels = row_labels = None
    if labels is not None and len(labels) == n:
        if n <= ncols:
            col_labels = list(labels)
        else:  # several rows: label each row with its first unit
            row_labels = [labels[i] for i in range(0, n, ncols)]
    viz.save_png(viz.grid(list(tiles), ncols=ncols, col_labels=col_labels, row_labels=row_labels,
                          scale=scale), path)


def _unit_list(model: nn.Module, layer: str, channels: int | Sequence[int] | None,
               size: int | tuple[int, int], output: OutputSelector,
               device: torch.device | str | None) -> list[int]:
    if isinstance(channels, int):
        return [channels]
    if channels is not None:
        units = [int(c) for c in channels]
        if not units:
            raise ArgumentError("channels is empty")
        return units
    h, w = (size, size) if isinstance(size, int) else size
    probe = torch.zeros(1, image_channels(model), h, w,
                        device=torch.device(device) if device is not None else _model_device(model))
    names = [] if layer == LOGITS else [layer]
    with Recorder(model, names, output=output, grads=False) as rec:
        out = rec.forward(probe)
        acts = out if layer == LOGITS else rec.activations[layer]
    return list(range(acts.shape[1]))


def _normalizer(mean: Sequence[float] | None, std: Sequence[float] | None, channels: int,
                device: torch.device) -> tuple[torch.Tensor | None, torch.Tensor | None]:
    if mean is None and std is None:
        return None, None
    mean = torch.as_tensor(mean if mean is not None else [0.0] * channels, dtype=torch.float32, device=device)
    std = torch.as_tensor(std if std is not None else [1.0] * channels, dtype=torch.float32, device=device)
    return mean.view(1, -1, 1, 1), std.view(1, -1, 1, 1)


def _model_device(model: nn.Module) -> torch.device:
    for tensor in list(model.parameters()) + list(model.buffers()):
        return tensor.device
    return torch.device("cpu")


IMAGENET_MEAN = (0.485, 0.456, 0.406)
IMAGENET_STD = (0.229, 0.224, 0.225)

__all__ = ["render", "visualize", "objective_scores", "save_grid", "image_channels", "IMAGENET_MEAN", "IMAGENET_STD"]

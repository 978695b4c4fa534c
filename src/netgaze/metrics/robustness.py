"""Infidelity (Yeh et al. 2019), max-sensitivity (Yeh et al. 2019) and the local Lipschitz
estimate (Alvarez-Melis & Jaakkola 2018): how an explanation fares under small input noise.

Infidelity and max-sensitivity follow Captum's ``captum.metrics.infidelity`` and
``sensitivity_max`` (same noise stream for the same seed: Captum draws from torch's
global generator after ``torch.manual_seed(s)``, netgaze from ``Generator().manual_seed(s)``);
the local Lipschitz estimate follows Quantus' ``LocalLipschitzEstimate``. All perturbed
copies of all images go through the model (or the method) in batches of ``batch_size``.
"""
from __future__ import annotations

import torch
import torch.nn as nn

from netgaze.errors import ArgumentError
from netgaze.core.layers import LayerRef
from netgaze.core.recorder import OutputSelector
from netgaze.core.targets import TargetLike
from netgaze.methods.templates import check_image_batch, fixed_target
from netgaze.metrics.maps import MethodLike, explain
from netgaze.metrics.scoring import score_rows


def _check_samples(n_samples: int) -> None:
    if n_samples < 1:
        raise ArgumentError(f"n_samples must be >= 1, got {n_samples}")


def _target_of(target, images: torch.Tensor):
    """The target of a batch whose row k is a copy of image ``images[k]``."""
    from netgaze.core.targets import Class

    if isinstance(target, Class) and not isinstance(target.c, int):
        classes = [int(c) for c in target.c]
        return Class([classes[i] for i in images.tolist()])
    return target


def _explain_rows(method: MethodLike, model: nn.Module, rows: torch.Tensor, image_of_row: torch.Tensor, layer,
                  target, batch_size: int, output: OutputSelector) -> torch.Tensor:
    """Maps of ``rows`` (copies of the images ``image_of_row``), ``batch_size`` rows per call."""
    return torch.cat([explain(method, model, rows[lo:lo + batch_size], layer,
                              _target_of(target, image_of_row[lo:lo + batch_size]), output)
                      for lo in range(0, len(rows), batch_size)])


def infidelity(model: nn.Module, x: torch.Tensor, attributions: torch.Tensor, target: TargetLike = None, *,
               n_samples: int = 10, noise_std: float = 0.003, normalize: bool = False, score: str = "raw",
               random_state: int = 0, batch_size: int = 128, output: OutputSelector = None) -> torch.Tensor:
    """Infidelity [N]: ``E[(I . attr - (f(x) - f(x - I)))^2]`` over Gaussian noise ``I ~ N(0, noise_std^2)``.

    Convention: Captum leaves the noise to a user ``perturb_func``; netgaze draws ``I`` like
    Captum's docstring example (Gaussian, std 0.003, subtracted from the input), one
    ``[N * n_samples, C, H, W]`` draw with each image's samples together. ``normalize``
    rescales the attributions by the optimal ``beta`` first (Captum's ``normalize=True``),
    which makes the value independent of the map's scale. Lower = more faithful.

    Args:
        attributions: [N, C, H, W], or maps [N, H, W] shared by all channels.
        score: ``"raw"`` (the target on the output as is, a logit: Captum's forward
            function) or ``"probability"`` (softmax first).
    """
    check_image_batch(x)
    _check_samples(n_samples)
    n, c, h, w = x.shape
    attributions = torch.as_tensor(attributions).detach().to(x.device)
    if attributions.dim() == 3:
        attributions = attributions[:, None].expand(n, c, h, w)
    if tuple(attributions.shape) != (n, c, h, w):
        raise ArgumentError(f"attributions of shape {tuple(attributions.shape)} do not match images "
                            f"{tuple(x.shape)}: need [N, C, H, W] or [N, H, W]")
    target = fixed_target(model, x, target, output)
    generator = torch.Generator().manual_seed(random_state)
    noise = (torch.randn((n * n_samples, c, h, w), generator=generator) * noise_std).to(x.device, x.dtype)
    image_of_row = torch.arange(n).repeat_interleave(n_samples)
    rows_x = image_of_row.to(x.device)
    perturbed, _ = score_rows(model, n * n_samples, lambda lo, hi: x[rows_x[lo:hi]] - noise[lo:hi], image_of_row,
                              target, score=score, batch_size=batch_size, output=output)
    clean, _ = score_rows(model, n, lambda lo, hi: x[lo:hi], torch.arange(n), target, score=score,
                          batch_size=batch_size, output=output)
    diff = (clean.double().repeat_interleave(n_samples) - perturbed.double()).view(n, n_samples)
    dot = (noise.double() * attributions.double()[rows_x]).flatten(1).sum(1).cpu().view(n, n_samples)
    if normalize:
        a, b, d = dot.pow(2).sum(1), (dot * diff).sum(1), diff.pow(2).sum(1)
        beta = b / torch.where(a != 0, a, torch.ones_like(a))
        value = beta * beta * a - 2 * beta * b + d
    else:
        value = (dot - diff).pow(2).sum(1)
    return (value / n_samples).float()


def max_sensitivity(model: nn.Module, x: torch.Tensor, method: MethodLike, layer: LayerRef | None = -1,
                    target: TargetLike = None, *, n_samples: int = 10, radius: float = 0.02,
                    random_state: int = 0, batch_size: int = 64, output: OutputSelector = None) -> torch.Tensor:
    """Max-sensitivity [N]: ``max ||e(x + d) - e(x)|| / ||e(x)||`` over uniform noise ``d`` in ``[-radius, radius]``.

    As Captum's ``sensitivity_max`` with its default perturbation (``radius`` 0.02, Frobenius
    norm, 10 samples; an all-zero ``e(x)`` divides by 1). ``e`` is the method's map
    [N, H, W] (``netgaze.metrics.explain``: per-channel attributions reduced by the largest
    absolute value over channels); the target is fixed on the clean images. Lower = more robust.

    Args:
        method: a name of ``netgaze.methods.METHODS`` or a callable.
        batch_size: perturbed images per call of the method.
    """
    check_image_batch(x)
    _check_samples(n_samples)
    n = x.shape[0]
    target = fixed_target(model, x, target, output)
    original = explain(method, model, x, layer, target, output)
    generator = torch.Generator().manual_seed(random_state)
    noise = torch.empty((n * n_samples, *x.shape[1:])).uniform_(-radius, radius, generator=generator)
    rows = x.repeat_interleave(n_samples, dim=0) + noise.to(x.device, x.dtype)
    perturbed = _explain_rows(method, model, rows, torch.arange(n).repeat_interleave(n_samples), layer, target,
                              batch_size, output)
    diffs = (perturbed.double() - original.double().repeat_interleave(n_samples, dim=0)).flatten(1).norm(dim=1)
    norms = original.double().flatten(1).norm(dim=1)
    norms = torch.where(norms == 0, torch.ones_like(norms), norms).repeat_interleave(n_samples)
    return (diffs / norms).view(n, n_samples).amax(1).float().cpu()


def local_lipschitz(model: nn.Module, x: torch.Tensor, method: MethodLike, layer: LayerRef | None = -1,
                    target: TargetLike = None, *, n_samples: int = 10, noise_std: float = 0.1,
                    normalise: bool = False, random_state: int = 0, batch_size: int = 64,
                    output: OutputSelector = None) -> torch.Tensor:
    """Local Lipschitz estimate [N]: ``max ||e(x) - e(x')||_2 / (||x - x'||_2 + 1e-10)`` over ``x' = x + N(0, noise_std^2)``.

    As Quantus' ``LocalLipschitzEstimate`` (Gaussian noise, std 0.1, Euclidean norms, eps
    1e-10) with ``n_samples`` draws (Quantus: 200) taken as ``[n_samples, N, C, H, W]``.
    Quantus divides every map by the maximum over the whole batch by default; netgaze's
    ``normalise=True`` divides each map by its own maximum absolute value (equal for a
    batch of one); ``normalise=False`` equals Quantus' ``normalise=False``. Lower = more robust.
    """
    check_image_batch(x)
    _check_samples(n_samples)
    n = x.shape[0]
    target = fixed_target(model, x, target, output)

    def norm(maps: torch.Tensor) -> torch.Tensor:
        if not normalise:
            return maps.double()
        top = maps.double().flatten(1).abs().amax(1).view(-1, 1, 1)
        return maps.double() / torch.where(top > 0, top, torch.ones_like(top))

    original = norm(explain(method, model, x, layer, target, output))
    generator = torch.Generator().manual_seed(random_state)
    noise = (torch.randn((n_samples, *x.shape), generator=generator) * noise_std).to(x.device, x.dtype)
    rows = (x[None] + noise).reshape(n_samples * n, *x.shape[1:])
    maps = _explain_rows(method, model, rows, torch.arange(n).repeat(n_samples), layer, target, batch_size, output)
    perturbed = norm(maps).view(n_samples, n, -1)
    numerator = (perturbed - original.view(1, n, -1)).norm(dim=2)
    denominator = (rows.double() - x.double().repeat(n_samples, 1, 1, 1)).view(n_samples, n, -1).norm(dim=2)
    return (numerator / (denominator + 1e-10)).amax(0).float().cpu()

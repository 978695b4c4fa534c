"""Efficient MPRT (Hedström et al. 2024, "Sanity checks revisited"): how much more complex
(higher histogram entropy) a method's maps become once every weight of the model is
randomized. A method that depends on the learned weights gains complexity (higher = better)."""
from __future__ import annotations

import copy
from dataclasses import dataclass

import torch
import torch.nn as nn

from netgaze.errors import ArgumentError
from netgaze.core.layers import LayerRef, resolve_layer
from netgaze.core.recorder import OutputSelector
from netgaze.core.targets import TargetLike
from netgaze.methods.templates import check_image_batch, fixed_target
from netgaze.metrics.maps import MethodLike, explain, resolve_method
from netgaze.metrics.randomization import parametrized_layers, randomize_module


@dataclass
class EmprtResult:
    """Histogram entropies [N] of the maps before and after randomizing every layer."""

    before: torch.Tensor
    after: torch.Tensor

    @property
    def rise(self) -> torch.Tensor:
        """[N] ``(after - before) / before``: Quantus' ``EfficientMPRT`` score."""
        return (self.after - self.before) / self.before


def histogram_entropy(maps: torch.Tensor, n_bins: int = 100) -> torch.Tensor:
    """Entropy [N] (natural log) of each map's histogram over ``n_bins`` equal bins spanning
    its own range (``np.histogram`` then ``scipy.stats.entropy``, Quantus' ``discrete_entropy``)."""
    if n_bins < 1:
        raise ArgumentError(f"n_bins must be >= 1, got {n_bins}")
    flat = maps.detach().double().flatten(1)
    low, high = flat.amin(1, keepdim=True), flat.amax(1, keepdim=True)
    span = high - low
    idx = ((flat - low) * (n_bins / torch.where(span > 0, span, torch.ones_like(span)))).long().clamp(0, n_bins - 1)
    counts = torch.zeros(flat.shape[0], n_bins, dtype=torch.float64, device=flat.device).scatter_add_(
        1, idx, torch.ones_like(flat))
    p = counts / counts.sum(1, keepdim=True)
    return (-torch.special.xlogy(p, p).sum(1)).cpu()


def efficient_mprt(model: nn.Module, x: torch.Tensor, method: MethodLike, layer: LayerRef | None = -1,
                   target: TargetLike = None, *, randomized: nn.Module | None = None, n_bins: int = 100,
                   random_state: int = 0, output: OutputSelector = None) -> EmprtResult:
    """eMPRT: entropy of the maps of the trained model and of a fully randomized copy.

    Conventions as Quantus' ``EfficientMPRT`` defaults (maps not normalised, not made
    absolute, 100 bins); only the fully randomized model is compared (Quantus'
    ``skip_layers=True``). The copy's layers get their default initialisers under seeds
    drawn from ``random_state`` (``netgaze.metrics.model_randomization``'s rule); Quantus
    reseeds ``torch.manual_seed(seed + 1)`` before each layer, so pass its randomized
    model as ``randomized`` to compare. The caller's model is never changed.

    Args:
        randomized: the randomized model to use instead of drawing one.
        target: None fixes each image's top class on the trained model, for both models.
    """
    check_image_batch(x)
    _, _, takes_layer = resolve_method(method)
    layer_name = resolve_layer(model, layer)[0] if takes_layer and layer is not None else None
    target = fixed_target(model, x, target, output)
    before = histogram_entropy(explain(method, model, x, layer_name, target, output), n_bins)
    if randomized is None:
        randomized = copy.deepcopy(model)
        modules = dict(randomized.named_modules())
        generator = torch.Generator().manual_seed(random_state)
        for name in parametrized_layers(randomized):
            randomize_module(modules[name], generator)
    after = histogram_entropy(explain(method, randomized, x, layer_name, target, output), n_bins)
    return EmprtResult(before=before, after=after)

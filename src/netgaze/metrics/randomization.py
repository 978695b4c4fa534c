"""Cascading model-randomization sanity check (Adebayo et al. 2018).

Layers are re-initialised one after another from the output towards the input, on a
deep copy of the model; after each step the method explains the same images again and
the rank correlation with the original maps is recorded. A method that depends on the
learned weights drops towards 0; one that ignores the model (an edge detector) stays at 1.
"""
from __future__ import annotations

import copy
from dataclasses import dataclass, field
from typing import Sequence

import numpy as np
import torch
import torch.nn as nn
import torch.nn.functional as F

from netgaze.errors import ArgumentError
from netgaze.core.layers import LayerRef, resolve_layer
from netgaze.methods.templates import check_image_batch, fixed_target
from netgaze.metrics.maps import MethodLike, explain, resolve_method
from netgaze.core.recorder import OutputSelector
from netgaze.core.targets import TargetLike


@dataclass
class RandomizationResult:
    """Similarity of maps after each cascading randomization step.

    Attributes:
        method: the method's name.
        layers: names of the layers randomized at each step (step k randomizes
            ``layers[:k + 1]``).
        spearman: [steps] mean Spearman rank correlation with the original maps.
        spearman_per_image: [steps, N].
        ssim: [steps] mean SSIM of min-max normalised maps, or None when not asked for.
    """

    method: str
    layers: list[str]
    spearman: np.ndarray
    spearman_per_image: np.ndarray
    ssim: np.ndarray | None = None
    extra: dict = field(default_factory=dict)

    def to_dict(self) -> dict:
        return {"method": self.method, "layers": self.layers, "spearman": self.spearman.tolist(),
                "ssim": None if self.ssim is None else self.ssim.tolist()}


def parametrized_layers(model: nn.Module) -> list[str]:
    """Names of the modules that own parameters, from the output towards the input.

    Order is reverse definition order (``named_modules``), which is reverse forward
    order for sequential models and torchvision / timm families.
    """
    names = [name for name, m in model.named_modules() if name and any(True for _ in m.parameters(recurse=False))]
    return names[::-1]


def randomize_module(module: nn.Module, generator: torch.Generator) -> None:
    """Re-initialise a module's own parameters in place.

    Uses the module's ``reset_parameters`` (its default initialiser) under a seed drawn
    from ``generator``; parameters of modules without one get Gaussian values with the
    original standard deviation.
    """
    seed = int(torch.randint(0, 2**31 - 1, (1,), generator=generator))
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        if hasattr(module, "reset_parameters"):
            module.reset_parameters()
            return
        with torch.no_grad():
            for p in module.parameters(recurse=False):
                std = float(p.std()) if p.numel() > 1 else 1.0
                p.copy_(torch.randn(p.shape, dtype=torch.float32).to(p) * (std or 1.0))


def spearman(a: torch.Tensor, b: torch.Tensor) -> np.ndarray:
    """Spearman rank correlation [N] between paired maps [N, H, W] (ties get average ranks).

    Two constant maps correlate 1, a constant map with a varying one 0 (scipy gives nan).
    """
    from scipy.stats import spearmanr

    a = a.detach().flatten(1).double().cpu().numpy()
    b = b.detach().flatten(1).double().cpu().numpy()
    result = np.empty(len(a))
    for i in range(len(a)):
        flat_a, flat_b = np.ptp(a[i]) == 0, np.ptp(b[i]) == 0
        if flat_a or flat_b:
            result[i] = 1.0 if flat_a and flat_b else 0.0
        else:
            result[i] = spearmanr(a[i], b[i]).statistic
    return result


def ssim(a: torch.Tensor, b: torch.Tensor, window: int = 11, sigma: float = 1.5) -> np.ndarray:
    """Structural similarity [N] of maps [N, H, W], each min-max normalised to [0, 1] first."""

    def norm(m: torch.Tensor) -> torch.Tensor:
        m = m.detach().double()
        low = m.flatten(1).amin(1).view(-1, 1, 1)
        span = (m.flatten(1).amax(1).view(-1, 1, 1) - low)
        return torch.where(span > 0, (m - low) / torch.where(span > 0, span, torch.ones_like(span)),
                           torch.zeros_like(m))[:, None]

    x, y = norm(a).cpu(), norm(b).cpu()
    window = min(window, x.shape[-1], x.shape[-2])
    t = torch.arange(window, dtype=torch.float64) - (window - 1) / 2
    g = torch.exp(-0.5 * (t / sigma) ** 2)
    g = g / g.sum()
    kernel = (g[:, None] * g[None, :])[None, None]

    def filt(z: torch.Tensor) -> torch.Tensor:
        return F.conv2d(z, kernel)

    c1, c2 = 0.01 ** 2, 0.03 ** 2
    mx, my = filt(x), filt(y)
    vx, vy, cxy = filt(x * x) - mx ** 2, filt(y * y) - my ** 2, filt(x * y) - mx * my
    s = ((2 * mx * my + c1) * (2 * cxy + c2)) / ((mx ** 2 + my ** 2 + c1) * (vx + vy + c2))
    return s.flatten(1).mean(1).numpy()


def model_randomization(model: nn.Module, x: torch.Tensor, method: MethodLike, layer: LayerRef | None = -1,
                        target: TargetLike = None, *, layers: Sequence[str] | None = None,
                        random_state: int = 0, with_ssim: bool = False,
                        output: OutputSelector = None) -> RandomizationResult:
    """Cascading randomization: re-initialise ``layers`` one by one, top-down, and compare maps.

    The caller's model is never touched: all randomization happens on ``copy.deepcopy(model)``.

    Args:
        model: the trained model.
        x: images [N, C, H, W].
        method: a name of ``netgaze.methods.METHODS`` or a callable ``(model, x, [layer,] target=, output=)``.
        layer: the explained layer for methods that take one (resolved by name in the copy).
        target: explained score; None fixes each image's top class on the ORIGINAL model,
            so the randomized models are asked about the same class.
        layers: dotted names to randomize, in order; default every module owning
            parameters, from the output towards the input (``parametrized_layers``).
        random_state: seeds the new weights.
        with_ssim: also compute SSIM between normalised maps.
        output: selects the explained tensor of a tuple/dict output.
    """
    check_image_batch(x)
    name, _, takes_layer = resolve_method(method)
    layer_name = resolve_layer(model, layer)[0] if takes_layer and layer is not None else None
    target = fixed_target(model, x, target, output)
    original = explain(method, model, x, layer_name, target, output)
    work = copy.deepcopy(model)
    order = list(layers) if layers is not None else parametrized_layers(work)
    modules = dict(work.named_modules())
    unknown = [n for n in order if n not in modules]
    if unknown:
        raise ArgumentError(f"unknown layer(s) to randomize: {unknown}")
    generator = torch.Generator().manual_seed(random_state)
    rho, sims = [], []
    for step_name in order:
        randomize_module(modules[step_name], generator)
        maps = explain(method, work, x, layer_name, target, output)
        rho.append(spearman(original, maps))
        if with_ssim:
            sims.append(ssim(original, maps))
    per_image = np.stack(rho) if rho else np.zeros((0, x.shape[0]))
    return RandomizationResult(method=name, layers=order, spearman=per_image.mean(1), spearman_per_image=per_image,
                               ssim=np.stack(sims).mean(1) if with_ssim and sims else None)

"""The issue-25 metric families as columns of ``method_table``: one row's numbers per method.

Costs differ by orders of magnitude: relevance mass / rank, sparseness, complexity
(the maps alone) and average drop / increase (one forward pass) use every image; the
others (ROAD: a sparse solve per image and share removed; IROF, pixel flipping,
infidelity: a forward pass per step or sample; max-sensitivity, local Lipschitz, random
logit, eMPRT: more explanations) use the first ``costly_images`` images only, with short
settings (ROAD at 20, 50 and 80 %, 5 noise samples, IROF on a 4 x 4 patch grid, pixel
flipping in ``steps`` steps), so the table's added time stays bounded on large sets. Methods are only needed by the families that explain again.
"""
from __future__ import annotations

import math
from typing import Sequence

import torch
import torch.nn as nn

from netgaze.errors import ArgumentError
from netgaze.core.recorder import OutputSelector
from netgaze.metrics.class_sensitivity import random_logit
from netgaze.metrics.concentration import complexity, sparseness
from netgaze.metrics.confidence import confidence_change
from netgaze.metrics.emprt import efficient_mprt
from netgaze.metrics.flipping import irof, pixel_flipping
from netgaze.metrics.imputation import road
from netgaze.metrics.localisation import relevance_mass_accuracy, relevance_rank_accuracy
from netgaze.metrics.robustness import infidelity, local_lipschitz, max_sensitivity
from netgaze.metrics.scoring import target_classes

EXTRA_COLUMNS = {
    "road_morf": ("ROAD MoRF", "lower"),
    "road_lerf": ("ROAD LeRF", "higher"),
    "irof": ("IROF", "higher"),
    "pixel_flipping": ("pixel flipping", "lower"),
    "relevance_mass": ("relevance mass", "higher"),
    "relevance_rank": ("relevance rank", "higher"),
    "sparseness": ("sparseness", "higher"),
    "complexity": ("complexity", "lower"),
    "average_drop": ("average drop", "lower"),
    "increase_confidence": ("increase in confidence", "higher"),
    "infidelity": ("infidelity", "lower"),
    "max_sensitivity": ("max-sensitivity", "lower"),
    "local_lipschitz": ("local Lipschitz", "lower"),
    "random_logit": ("random logit (SSIM)", "lower"),
    "emprt": ("eMPRT rise", "higher"),
}
# family -> the columns it fills
FAMILIES = {
    "road": ("road_morf", "road_lerf"), "irof": ("irof",), "pixel_flipping": ("pixel_flipping",),
    "localisation": ("relevance_mass", "relevance_rank"), "concentration": ("sparseness", "complexity"),
    "confidence": ("average_drop", "increase_confidence"), "infidelity": ("infidelity",),
    "max_sensitivity": ("max_sensitivity",), "local_lipschitz": ("local_lipschitz",),
    "random_logit": ("random_logit",), "emprt": ("emprt",),
}
# what method_table adds when no families are named: the bounded, cheaper half (+21 % CPU time on
# the demo's 64-picture table with costly_images=8; all of them: +128 %); name the others to add them
DEFAULT_FAMILIES = ("road", "localisation", "concentration", "confidence", "infidelity", "random_logit")
ROAD_PERCENTAGES = (20, 50, 80)
ROBUSTNESS_SAMPLES = 5
IROF_GRID = 4  # 16 patches: 17 forward passes a picture, about deletion + insertion's cost at steps=10


def check_families(families: Sequence[str]) -> tuple[str, ...]:
    unknown = [f for f in families if f not in FAMILIES]
    if unknown:
        raise ArgumentError(f"unknown metric famil{'y' if len(unknown) == 1 else 'ies'} {unknown}; "
                            f"valid: {', '.join(FAMILIES)}")
    return tuple(families)


def _mean(values: torch.Tensor) -> float:
    values = torch.as_tensor(values, dtype=torch.float64)
    values = values[torch.isfinite(values)]
    return float(values.mean()) if len(values) else math.nan


def extra_row(model: nn.Module, x: torch.Tensor, maps: torch.Tensor, method, layer, target, first, masks, *,
              families: Sequence[str], costly_images: int | None, steps: int, batch_size: int,
              random_state: int, output: OutputSelector) -> dict[str, float]:
    """The numbers of ``families`` for one method's ``maps`` (``method`` None: a map without a method).

    ``first(target, k)`` restricts the target to the first k images.
    """
    row: dict[str, float] = {}
    n = x.shape[0]
    k = n if costly_images is None else min(costly_images, n)
    xs, ms, ts = x[:k], maps[:k], first(target, k)
    common = dict(batch_size=batch_size, output=output)
    if "road" in families and k:
        for order in ("morf", "lerf"):
            curve = road(model, xs, ms, ts, order=order, percentages=ROAD_PERCENTAGES, random_state=random_state,
                         **common)
            row[f"road_{order}"] = curve.mean_score
    if "irof" in families and k:
        row["irof"] = _mean(irof(model, xs, ms, ts, grid=IROF_GRID, **common).normalised)
    if "pixel_flipping" in families and k:
        h, w = x.shape[-2:]
        curve = pixel_flipping(model, xs, ms, ts, pixels_per_step=-(-h * w // steps), **common)
        row["pixel_flipping"] = _mean(curve.normalised)
    if "localisation" in families and masks is not None:
        row["relevance_mass"] = _mean(relevance_mass_accuracy(maps, masks))
        row["relevance_rank"] = _mean(relevance_rank_accuracy(maps, masks))
    if "concentration" in families:
        row["sparseness"] = _mean(sparseness(maps))
        row["complexity"] = _mean(complexity(maps))
    if "confidence" in families:
        result = confidence_change(model, x, maps, target, **common)
        row["average_drop"], row["increase_confidence"] = result.average_drop, result.increase_rate
    if "infidelity" in families and k:
        row["infidelity"] = _mean(infidelity(model, xs, ms, ts, normalize=True, n_samples=ROBUSTNESS_SAMPLES,
                                             random_state=random_state, **common))
    if method is None:
        return row
    robust = dict(n_samples=ROBUSTNESS_SAMPLES, random_state=random_state, **common)
    if "max_sensitivity" in families and k:
        row["max_sensitivity"] = _mean(max_sensitivity(model, xs, method, layer, ts, **robust))
    if "local_lipschitz" in families and k:
        row["local_lipschitz"] = _mean(local_lipschitz(model, xs, method, layer, ts, normalise=True, **robust))
    if "random_logit" in families and k and target_classes(ts, k) is not None:
        row["random_logit"] = _mean(torch.as_tensor(random_logit(model, xs, method, layer, ts,
                                                                 random_state=random_state, output=output)))
    if "emprt" in families and k:
        row["emprt"] = _mean(efficient_mprt(model, xs, method, layer, ts, random_state=random_state,
                                            output=output).rise)
    return row

"""Method x metric table for one model: every faithfulness number side by side.

Columns: pointing game, energy pointing game (needs ground truth), deletion and
insertion AUC, the Spearman correlation after the last cascading randomization
step (lower = the method depends more on the learned weights), and the families of
``table_extra`` (ROAD, IROF, pixel flipping, relevance mass / rank, sparseness,
complexity, average drop / increase, infidelity, max-sensitivity, local Lipschitz,
random logit, eMPRT).
"""
from __future__ import annotations

import json
import math
import os
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Mapping, Sequence

import torch
import torch.nn as nn

from netgaze._util.atomic import atomic_write_text
from netgaze.core.layers import LayerRef
from netgaze.methods.templates import fixed_target
from netgaze.metrics.deletion import BaselineLike, deletion_curve, insertion_curve
from netgaze.metrics.maps import MethodLike, explain, resolve_method
from netgaze.metrics.pointing import Regions, as_masks, centre_baseline, energy_pointing_game, pointing_game
from netgaze.metrics.randomization import model_randomization
from netgaze.metrics.table_extra import DEFAULT_FAMILIES, EXTRA_COLUMNS, check_families, extra_row
from netgaze.core.recorder import OutputSelector
from netgaze.core.targets import TargetLike

COLUMNS = {
    "pointing": ("pointing game", "higher"),
    "energy_pointing": ("energy pointing", "higher"),
    "deletion_auc": ("deletion AUC", "lower"),
    "insertion_auc": ("insertion AUC", "higher"),
    "randomization_spearman": ("rand. Spearman (last step)", "lower"),
    **EXTRA_COLUMNS,
    "seconds": ("seconds", "lower"),
}


@dataclass
class MetricTable:
    """Rows ``method -> {metric: value}`` plus the settings used; NaN where not measured."""

    rows: dict[str, dict[str, float]]
    settings: dict = field(default_factory=dict)

    def to_dict(self) -> dict:
        clean = {m: {k: (None if isinstance(v, float) and math.isnan(v) else v) for k, v in r.items()}
                 for m, r in self.rows.items()}
        return {"settings": self.settings, "columns": {k: {"title": t, "better": b} for k, (t, b) in COLUMNS.items()},
                "rows": clean}

    def to_markdown(self, digits: int = 3) -> str:
        keys = [k for k in COLUMNS if any(k in r for r in self.rows.values())]
        head = "| method | " + " | ".join(f"{COLUMNS[k][0]} ({'↑' if COLUMNS[k][1] == 'higher' else '↓'})"
                                          for k in keys) + " |"
        lines = [head, "|" + "---|" * (len(keys) + 1)]
        for method, row in self.rows.items():
            cells = []
            for k in keys:
                v = row.get(k)
                cells.append("–" if v is None or (isinstance(v, float) and math.isnan(v)) else f"{v:.{digits}f}")
            lines.append(f"| {method} | " + " | ".join(cells) + " |")
        return "\n".join(lines) + "\n"

    def save(self, directory: str | os.PathLike, name: str = "faithfulness") -> tuple[Path, Path]:
        """Write ``NAME.json`` and ``NAME.md`` into ``directory`` (atomically); return both paths."""
        directory = Path(directory)
        directory.mkdir(parents=True, exist_ok=True)
        json_path, md_path = directory / f"{name}.json", directory / f"{name}.md"
        atomic_write_text(json_path, json.dumps(self.to_dict(), indent=2) + "\n")
        atomic_write_text(md_path, self.to_markdown())
        return json_path, md_path


# The methods a table scores when none are named: the gradient and CAM methods that cost about one
# backward pass each (perturbation methods such as Score-CAM's cousins, Ablation-CAM, occlusion and
# RISE run hundreds of forward passes per picture: name them to include them).
DEFAULT_METHODS = ("gradcam", "gradcam_pp", "hirescam", "layercam", "xgradcam", "scorecam", "guided_gradcam",
                   "saliency", "guided_backprop", "smoothgrad", "integrated_gradients")


def method_table(model: nn.Module, x: torch.Tensor, regions: Regions | None = None, *,
                 methods: Sequence[MethodLike] | Mapping[str, MethodLike] | None = None,
                 layer: LayerRef = -1, target: TargetLike = None, steps: int = 20,
                 baseline: BaselineLike = "blur", randomization_images: int | None = 16,
                 randomization_layers: Sequence[str] | None = None, batch_size: int = 128,
                 with_centre_baseline: bool = True, random_state: int = 0,
                 metrics: Sequence[str] | None = None, costly_images: int | None = 16,
                 output: OutputSelector = None) -> MetricTable:
    """Explain ``x`` with every method and score each one on every metric.

    Args:
        model: a classifier (deletion/insertion score the softmax probability).
        x: images [N, C, H, W].
        regions: ground-truth masks [N, H, W] or boxes [N, 4]; None skips the pointing games.
        methods: names / callables, or a dict label -> method; default ``DEFAULT_METHODS``
            (the methods that cost about one backward pass).
        layer: the layer of the methods that take one.
        target: None fixes each image's top class on the clean images.
        steps: deletion / insertion settings.
        baseline: deletion / insertion settings.
        randomization_images: the first this many images go through the (costly)
            randomization check; 0 skips it, None uses all.
        randomization_layers: layers to randomize (default: all, top-down).
        with_centre_baseline: add a ``centre`` row (the centre-prior map).
        metrics: the families of ``netgaze.metrics.table_extra.FAMILIES`` to add (default
            ``DEFAULT_FAMILIES``: ROAD, relevance mass / rank, sparseness / complexity,
            average drop / increase, infidelity, random logit; IROF, pixel flipping,
            max-sensitivity, local Lipschitz and eMPRT on request; ``()`` for none).
        costly_images: every added family but relevance mass / rank, sparseness,
            complexity and average drop / increase runs on the first this many images
            only (None: all); see ``netgaze.metrics.table_extra``.
    """
    from netgaze.methods import METHODS

    if methods is None:
        methods = {name: METHODS[name] for name in DEFAULT_METHODS}
    elif not isinstance(methods, Mapping):
        methods = {resolve_method(m)[0]: m for m in methods}
    families = DEFAULT_FAMILIES if metrics is None else check_families(metrics)
    target = fixed_target(model, x, target, output)
    masks = as_masks(regions, x[:, 0]) if regions is not None else None
    rows: dict[str, dict[str, float]] = {}
    labelled = list(methods.items())
    if with_centre_baseline:
        labelled.append(("centre", None))
    for label, method in labelled:
        began = time.perf_counter()
        if method is None:
            maps = centre_baseline(x.shape[0], x.shape[-2:], device=x.device)
        else:
            maps = explain(method, model, x, layer, target, output)
        row: dict[str, float] = {}
        if masks is not None:
            row["pointing"] = pointing_game(maps, masks)
            row["energy_pointing"] = energy_pointing_game(maps, masks)
        curve_args = dict(steps=steps, baseline=baseline, random_state=random_state, batch_size=batch_size,
                          output=output)
        row["deletion_auc"] = deletion_curve(model, x, maps, target, **curve_args).mean_auc
        row["insertion_auc"] = insertion_curve(model, x, maps, target, **curve_args).mean_auc
        if method is not None and randomization_images != 0:
            k = x.shape[0] if randomization_images is None else min(randomization_images, x.shape[0])
            sub_target = _first(target, k)
            result = model_randomization(model, x[:k], method, layer, sub_target, layers=randomization_layers,
                                         random_state=random_state, output=output)
            row["randomization_spearman"] = float(result.spearman[-1]) if len(result.spearman) else float("nan")
        else:
            row["randomization_spearman"] = float("nan")
        row.update(extra_row(model, x, maps, method, layer, target, _first, masks, families=families,
                             costly_images=costly_images, steps=steps, batch_size=batch_size,
                             random_state=random_state, output=output))
        row["seconds"] = time.perf_counter() - began
        rows[label] = row
    settings = {"images": int(x.shape[0]), "steps": steps, "baseline": baseline if isinstance(baseline, str) else
                "custom", "layer": str(layer), "randomization_images": randomization_images,
                "metrics": list(families), "costly_images": costly_images}
    return MetricTable(rows=rows, settings=settings)


def _first(target, k: int):
    """The target restricted to the first k samples."""
    from netgaze.core.targets import Class

    if isinstance(target, Class) and not isinstance(target.c, int):
        return Class([int(c) for c in list(target.c)[:k]])
    return target

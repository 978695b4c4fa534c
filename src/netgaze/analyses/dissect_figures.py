"""Figures and artifact of a ``Dissection``: detectors vs depth, and each concept's top units.

``dissection.json`` is a report manifest (study "dissection") holding every unit's IoUs.
"""
from __future__ import annotations

# The result is taken as it is (a ``Dissection``): the analysis calls these writers, never the reverse.

from pathlib import Path
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F

from netgaze import viz


TILE = 48


def depth_plot(result: Any) -> np.ndarray:
    """uint8 figure: detectors per concept per layer (left), share of units that detect (right)."""
    import matplotlib

    matplotlib.use("Agg", force=False)
    import matplotlib.pyplot as plt

    from netgaze.studies.common import figure_to_array

    fig, axes = plt.subplots(1, 2, figsize=(10, 3.6), dpi=90)
    x = np.arange(len(result.layers))
    names = [l.name for l in result.layers]
    counts = np.array([list(l.detectors_per_concept(result.concepts).values()) for l in result.layers])
    bottom = np.zeros(len(x))
    cmap = plt.get_cmap("tab20")
    for j, concept in enumerate(result.concepts):
        if counts[:, j].any():
            axes[0].bar(x, counts[:, j], bottom=bottom, color=cmap(j % 20), label=concept)
            bottom += counts[:, j]
    axes[0].set_xticks(x, names, rotation=20, fontsize=8)
    axes[0].set_ylabel("detector units")
    axes[0].legend(fontsize=7, ncol=2)
    axes[1].plot(x, [l.detector_share for l in result.layers], "o-", color="0.2")
    axes[1].set_xticks(x, names, rotation=20, fontsize=8)
    axes[1].set_ylabel("share of units that are detectors")
    axes[1].set_ylim(0, 1.05)
    fig.tight_layout()
    return figure_to_array(fig)


def _unit_maps(result: Any, layer: str, unit: int, indices: list[int]) -> tuple[torch.Tensor, torch.Tensor]:
    """Pictures [n, C, H, W] and the unit's upsampled activation [n, H, W] on them."""
    from netgaze.core.recorder import Recorder

    images = torch.stack([result.dataset[i][0] for i in indices])
    device = next(result.model.parameters()).device
    with Recorder(result.model, [layer], grads=False, stop=True) as rec:
        rec.forward(images.to(device))
        act = rec.activations[layer][:, unit:unit + 1].float()
    return images, F.interpolate(act, size=images.shape[-2:], mode="bilinear", align_corners=False)[:, 0].cpu()


def concept_units(result: Any, units_per_concept: int = 3, pictures: int = 3) -> np.ndarray:
    """uint8 grid: a row per concept with its best units (any layer), each on its top pictures, the area
    above the unit's threshold kept bright and the rest dimmed; under each unit's first picture its
    layer and number, under the second its IoU."""
    from netgaze.studies.common import label_tiles

    tiles, labels = [], []
    blank = np.full((TILE, TILE, 3), 255, np.uint8)
    for concept in result.concepts:
        row, texts = [], []
        for layer, unit, iou in result.top_units(concept, units_per_concept):
            found = result.layer(layer)
            indices = [int(i) for i in found.top_pictures[unit][:pictures]]
            images, maps = _unit_maps(result, layer, unit, indices)
            on = (maps > float(found.thresholds[unit])).float()[:, None]
            shown = images.expand(-1, 3, -1, -1) * (0.25 + 0.75 * on)
            row.extend(viz.to_uint8(F.interpolate(shown, size=(TILE, TILE), mode="nearest")))
            row.extend([blank] * (pictures - len(indices)))
            texts.extend([f"{layer.split('.')[-1]}#{unit}", f"IoU {iou:.2f}"] + [""] * (pictures - 2))
        tiles.extend(label_tiles(row, texts))
        labels.append(concept)
    return viz.grid(tiles, ncols=units_per_concept * pictures, row_labels=labels)


def sentences(result: Any) -> list[str]:
    """What the counts say, in words."""
    first, last = result.layers[0], result.layers[-1]
    def top(layer):
        per = layer.detectors_per_concept(result.concepts)
        best = max(per, key=per.get)
        return best, per[best]
    text = (f"Detectors (best IoU above {result.settings['iou_threshold']}): "
            + ", ".join(f"{l.name} {int(l.detector.sum())} of {len(l.iou)} units ({l.detector_share:.0%})"
                        for l in result.layers) + ".")
    (c0, n0), (c1, n1) = top(first), top(last)
    text += (f" The first layer's detectors mostly find {c0} ({n0}), the last layer's {c1} ({n1}).")
    specific = [c for c in result.concepts if c not in ("any object", "background", "marker")]
    early = sum(first.detectors_per_concept(result.concepts)[c] for c in specific)
    late = sum(last.detectors_per_concept(result.concepts)[c] for c in specific)
    text += (f" Units that detect one class's object: {early} in {first.name}, {late} in {last.name}"
             + (" — deeper layers respond to more specific patterns." if late > early else "."))
    return [text]


def save_dissection(result: Any, folder: Path) -> Path:
    from netgaze.studies.common import write_manifest

    folder.mkdir(parents=True, exist_ok=True)
    viz.save_png(depth_plot(result), folder / "dissection_depth.png")
    figures = [{"file": "dissection_depth.png", "caption": (
        f"Network dissection over {result.settings['pictures']} pictures: units per layer whose activation above "
        f"their top {result.settings['quantile']:.1%} overlaps a concept mask with IoU > "
        f"{result.settings['iou_threshold']} (left, by concept), and the share of units that are detectors (right).")}]
    if result.dataset is not None and result.model is not None:
        viz.save_png(concept_units(result), folder / "dissection_units.png")
        figures.append({"file": "dissection_units.png", "caption": (
            "The best units of each concept (any layer) on the pictures that activate them most; the area above "
            "the unit's threshold is bright, the rest dimmed.")})
    return write_manifest(folder, "dissection", {
        "study": "dissection", "title": "Network dissection: units and concepts", "method": "network dissection",
        "figures": figures, "tables": [result.table()], "notes": sentences(result), **result.to_dict()})

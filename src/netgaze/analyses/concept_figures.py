"""Figures and the manifest of ``ConceptReferences``: the class atlas and the reference pictures.

The atlas figure (matplotlib): per class a bar chart of its channels' mean shares (and how often
each is among a picture's top channels), beside each top channel's relying pictures with the
crop outlined. The reference figures (``viz.grid``): per class, per top channel, its
activation-maximization picture, its crops by activation, then its crops by relevance to the class.
"""
from __future__ import annotations

# The result is taken as it is (a ``ConceptReferences``): the analysis calls these writers, never the reverse.

from pathlib import Path
from typing import Any

import numpy as np
import torch

from netgaze import viz
from netgaze.analyses.top_examples_figures import _outlined, _tiles

N_SHOW = 5      # reference crops per kind in the reference figures
N_RELYING = 4   # relying pictures per channel in the atlas figure
ATLAS_CHANNELS = 3


def channel_name(channel: int, labels: dict[int, str]) -> str:
    return f"ch {channel}" + (f" ({labels[channel]})" if channel in labels else "")


def references_grid(result: Any, cls: int, channels: list[int], maximized: dict[int, torch.Tensor],
                    labels: dict[int, str]) -> np.ndarray:
    """uint8 grid: per channel, [activation maximization,] crops by activation, crops by relevance to ``cls``."""
    k = min(N_SHOW, result.by_activation.indices.shape[1])
    shown = [c for c in channels if c in maximized]
    with_max = len(shown) == len(channels) and channels
    tiles = []
    for c in channels:
        if with_max:
            tiles.extend(_tiles(maximized[c][None].clamp(0, 1)))
        tiles.extend(_tiles(result.by_activation.crops(c)[:k]))
        tiles.extend(_tiles(result.by_relevance[cls].crops(c)[:k]))
    head = (["act. max."] if with_max else []) + [f"act. {i + 1}" for i in range(k)] + \
        [f"relev. {i + 1}" for i in range(k)]
    return viz.grid(tiles, ncols=len(head), row_labels=[channel_name(c, labels) for c in channels], col_labels=head)


def _relying_strip(result: Any, cls: int, channel: int) -> np.ndarray | None:
    relying = result.atlas.relying[cls]
    keep = [j for j, i in enumerate(relying.indices[channel]) if i >= 0][:N_RELYING]
    if not keep:
        return None
    pictures = torch.stack([result.dataset[int(relying.indices[channel, j])][0] for j in keep])
    tiles = _tiles(_outlined(pictures, relying.boxes[channel, keep]))
    return viz.grid(tiles, ncols=len(tiles), pad=2)


def atlas_figure(result: Any, labels: dict[int, str], n_channels: int) -> np.ndarray:
    """uint8 figure: one row per class (bar chart of mean shares, then the top channels' relying pictures)."""
    import matplotlib

    matplotlib.use("Agg", force=False)
    import matplotlib.pyplot as plt

    from netgaze.studies.common import figure_to_array

    atlas = result.atlas
    rows = len(atlas.classes)
    fig, axes = plt.subplots(rows, 1 + ATLAS_CHANNELS, figsize=(15, 2.4 * rows + 0.4), dpi=90, squeeze=False,
                             gridspec_kw={"width_ratios": [1.4] + [1] * ATLAS_CHANNELS})
    for r, cls in enumerate(atlas.classes):
        j = atlas.classes.index(cls)
        top = atlas.ranking(cls, n_channels)
        ax = axes[r, 0]
        y = np.arange(len(top))[::-1]
        ax.barh(y, [atlas.mean_share[j, c] for c in top], color="tab:blue")
        ax.set_yticks(y, [channel_name(c, labels) for c in top], fontsize=9)
        for yy, c in zip(y, top):
            light = atlas.mean_share[j, c] > 0.25 * max(atlas.mean_share[j, top].max(), 1e-9)
            ax.text(0, yy, f" top-{atlas.per_picture} in {atlas.top_rate[j, c]:.0%}", va="center", fontsize=8,
                    color="white" if light else "0.2")
        ax.set_title(f"{atlas.class_names[j]} ({int(atlas.pictures[j])} pictures)", fontsize=10, loc="left")
        ax.set_xlabel("mean share of the class's relevance", fontsize=8)
        ax.tick_params(axis="x", labelsize=8)
        for m in range(ATLAS_CHANNELS):
            ax = axes[r, 1 + m]
            ax.axis("off")
            if m >= len(top):
                continue
            strip = _relying_strip(result, cls, top[m])
            if strip is None:
                ax.text(0.5, 0.5, "no picture with a positive total relevance", ha="center", fontsize=8)
                continue
            ax.imshow(strip)
            ax.set_title(f"{channel_name(top[m], labels)}: pictures that rely on it", fontsize=9)
    fig.suptitle(f"Concept atlas of {result.layer}: the channels each class relies on (crops outlined in yellow)",
                 fontsize=11)
    fig.tight_layout()
    return figure_to_array(fig)


def save_concepts(result: Any, folder: Path, maximized: dict[int, torch.Tensor], labels: dict[int, str],
                  marker: dict | None, facts: dict, n_channels: int) -> Path:
    from netgaze.studies.common import write_manifest

    folder.mkdir(parents=True, exist_ok=True)
    safe = result.layer.replace(".", "_")
    atlas_file = f"concept_atlas_{safe}.png"
    viz.save_png(atlas_figure(result, labels, n_channels), folder / atlas_file)
    figures = [{"file": atlas_file, "caption": (
        f"Concept atlas of {result.layer}: per class, the channels with the largest mean share of the class's "
        f"relevance (activation x gradient summed over space, over the class's own pictures), how often each is "
        f"among a picture's {result.atlas.per_picture} most relevant channels, and the pictures that rely on the top "
        f"{ATLAS_CHANNELS} most, with the crop around the channel's peak outlined.")}]
    for j, cls in enumerate(result.classes):
        channels = result.atlas.ranking(cls, n_channels)
        file = f"concept_references_{safe}_class{cls}.png"
        viz.save_png(references_grid(result, cls, channels, maximized, labels), folder / file)
        first = "its activation-maximization picture, then " if all(c in maximized for c in channels) else ""
        figures.append({"file": file, "caption": (
            f"Reference pictures of the {len(channels)} concepts class {result.class_names[j]} relies on most "
            f"({result.layer}): per channel {first}the crops of the {N_SHOW} pictures that activate it most, then "
            f"of the {N_SHOW} where it carries most of the class's logit (relevance maximization).")})
    return write_manifest(folder, "concepts", {
        "study": "concepts", "title": "Concepts: what each class relies on", **facts, "layer": result.layer,
        "method": "activation x gradient per channel", "figures": figures,
        "numbers": {"channels": len(result.channels), "classes": len(result.classes),
                    "k": int(result.by_activation.indices.shape[1]), "per_picture": result.atlas.per_picture},
        "labels": {str(c): v for c, v in labels.items()}, "marker": marker, **result.to_dict(n_channels)})

"""Figures and the artifact of a ``Strategies`` result: ``strategies.json`` + PNGs, read by the report.

Per class: one row per cluster (its mean map, then its most typical pictures with their maps
over them) and a panel with the Laplacian's eigenvalues (the eigengap) beside the t-SNE of the
spectral embedding coloured by cluster. ``strategies.json`` is a report manifest (study
"strategies") that also holds every picture's cluster.
"""
from __future__ import annotations

# The result is taken as it is (a ``Strategies``): the analysis calls these writers, never the reverse.

from pathlib import Path
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F

from netgaze import viz


TILE = 64


def _safe(name: str) -> str:
    return "".join(ch if ch.isalnum() or ch in "-_" else "_" for ch in name)


def _up(small: np.ndarray, size: tuple[int, int]) -> torch.Tensor:
    t = torch.as_tensor(np.asarray(small, dtype=np.float32))
    return F.interpolate(t.reshape(-1, 1, *t.shape[-2:]), size=size, mode="bilinear", align_corners=False)[:, 0]


def cluster_grid(result: Any, c: int) -> np.ndarray:
    """uint8 grid: a row per cluster, its mean map then its typical pictures with their maps."""
    dataset = result.dataset
    summaries = result.summaries[c]
    n_typical = max(len(s.typical) for s in summaries)
    rows = {int(i): r for r, i in enumerate(result.indices[c])}
    tiles, labels = [], []
    for s in summaries:
        tiles.append(viz.colormap(viz.normalize(_up(s.mean_map, (TILE, TILE))))[0])
        if dataset is not None and s.typical:
            images = torch.stack([dataset[i][0] for i in s.typical])
            small = np.stack([result.maps[c][rows[i]] for i in s.typical])
            maps = _up(small, tuple(images.shape[-2:]))
            over = viz.overlay(images, maps, alpha=0.45)
            over = [np.asarray(F.interpolate(torch.as_tensor(o).permute(2, 0, 1)[None].float(), size=(TILE, TILE),
                                             mode="nearest")[0].permute(1, 2, 0).byte()) for o in over]
        else:
            over = []
        tiles.extend(over + [np.full((TILE, TILE, 3), 255, np.uint8)] * (n_typical - len(over)))
        flag = " shortcut?" if s.shortcut else ""
        labels.append(f"{s.cluster}: {s.size} ({s.share:.0%}){flag}")
    return viz.grid(tiles, ncols=n_typical + 1, row_labels=labels,
                    col_labels=["mean map"] + [f"typical {k + 1}" for k in range(n_typical)])


def spectrum_and_tsne(result: Any, c: int) -> np.ndarray:
    """uint8 figure: eigenvalues with the chosen gap (left), t-SNE coloured by cluster (right)."""
    import matplotlib

    matplotlib.use("Agg", force=False)
    import matplotlib.pyplot as plt

    from netgaze.studies.common import figure_to_array

    spec = result.spectral[c]
    fig, axes = plt.subplots(1, 2, figsize=(9, 3.6), dpi=90)
    values = spec.eigenvalues
    axes[0].plot(np.arange(1, len(values) + 1), values, "o-", color="0.3")
    axes[0].axvspan(spec.n_clusters + 0.05, spec.n_clusters + 0.95, color="tab:orange", alpha=0.3,
                    label=f"eigengap: {spec.n_clusters} cluster{'s' if spec.n_clusters != 1 else ''}")
    axes[0].set_xlabel("k")
    axes[0].set_ylabel("eigenvalue of the normalised Laplacian")
    axes[0].legend(loc="upper left", fontsize=8)
    points = result.tsne.get(c)
    if points is not None:
        clusters = spec.labels[result.tsne_rows[c]]
        cmap = plt.get_cmap("tab10")
        for k in range(spec.n_clusters):
            pick = clusters == k
            shortcut = result.summaries[c][k].shortcut
            axes[1].scatter(points[pick, 0], points[pick, 1], s=9, color=cmap(k % 10),
                            marker="x" if shortcut else "o", label=f"{k}{' (shortcut?)' if shortcut else ''}")
        axes[1].legend(fontsize=7, markerscale=1.5, loc="best")
    axes[1].set_title("t-SNE of the spectral embedding", fontsize=9)
    axes[1].set_xticks([])
    axes[1].set_yticks([])
    fig.tight_layout()
    return figure_to_array(fig)


def sentences(result: Any) -> list[str]:
    """Findings in words, built from the numbers."""
    out = []
    for c in result.classes:
        name = result.class_names[c] if c < len(result.class_names) else str(c)
        sums = result.summaries[c]
        n = len(result.indices[c])
        text = (f"Class {name}: the eigengap splits its {n} pictures into {len(sums)} strateg"
                f"{'y' if len(sums) == 1 else 'ies'} (" + ", ".join(f"{s.size}" for s in sums) + " pictures).")
        for s in sums:
            if s.shortcut:
                text += (f" Strategy {s.cluster} ({s.size} pictures, {s.share:.0%} of the class, accuracy "
                         f"{s.accuracy:.2f}) is a likely shortcut: {s.shortcut_reason}.")
                if s.marker_share is not None:
                    text += f" {s.marker_share:.0%} of its pictures carry the marker."
        best = result.marker_f1(c)
        if best is not None:
            text += (f" Checked against the marker (which the analysis was not told about): strategy {best[0]} "
                     f"matches \"has the marker\" with F1 {best[1]:.2f}.")
        out.append(text)
    return out


def save_strategies(result: Any, folder: Path) -> Path:
    from netgaze.studies.common import write_manifest

    folder.mkdir(parents=True, exist_ok=True)
    figures, tables = [], []
    settings = result.settings
    for c in result.classes:
        name = result.class_names[c] if c < len(result.class_names) else str(c)
        grid_file = f"strategies_{_safe(name)}_clusters.png"
        viz.save_png(cluster_grid(result, c), folder / grid_file)
        figures.append({"file": grid_file, "caption": (
            f"Strategies of class {name}: {settings['method']} maps "
            f"{'of layer ' + str(settings['layer']) if settings['layer'] else 'of the input pixels'} for "
            f"{len(result.indices[c])} pictures, clustered by spectral clustering. One row per cluster: its mean map, "
            f"then its most typical pictures with their maps.")})
        tsne_file = f"strategies_{_safe(name)}_tsne.png"
        viz.save_png(spectrum_and_tsne(result, c), folder / tsne_file)
        figures.append({"file": tsne_file, "caption": (
            f"Class {name}: eigenvalues of the normalised Laplacian of the {result.spectral[c].n_neighbors}-nearest-"
            f"neighbour affinity (the largest gap sets the number of clusters), and a t-SNE of the spectral "
            f"embedding coloured by cluster.")})
        columns = ["strategy", "pictures", "share", "accuracy", "maps peaking on the object",
                   "map energy on the object", "mean map peaks at", "likely shortcut"]
        marker = any(s.marker_share is not None for s in result.summaries[c])
        if marker:
            columns[6:6] = ["with marker", "map energy on the marker"]
        rows = []
        for s in result.summaries[c]:
            row: list[Any] = [s.cluster, s.size, s.share, s.accuracy, s.peak_on_object, s.energy_in_object, s.peak,
                              s.shortcut]
            if marker:
                row[6:6] = [s.marker_share, s.energy_in_marker]
            rows.append(row)
        tables.append({"title": f"Strategies of class {name}", "columns": columns, "rows": rows})
    manifest = {"study": "strategies", "title": "Strategies (spectral relevance analysis)",
                "method": settings["method"], "layer": settings["layer"], "figures": figures, "tables": tables,
                "notes": sentences(result), **result.to_dict()}
    return write_manifest(folder, "strategies", manifest)

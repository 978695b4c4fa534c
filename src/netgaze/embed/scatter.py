"""A static 2-D scatter with thumbnails, for the report (matplotlib, saved by ``viz.save_png``).

Points are coloured by label (legend with class names); a spread of thumbnails, one per
occupied cell of a ``grid`` x ``grid`` lattice over the plot (the point nearest the cell
centre), shows what each region holds without hiding the points.
"""
from __future__ import annotations

import os
from pathlib import Path
from typing import Sequence

import numpy as np

from netgaze.errors import ArgumentError
from netgaze._util.plots import plain_text
from netgaze.viz import save_png


def scatter_png(path: str | os.PathLike, embedding: np.ndarray, labels: Sequence[int] | None = None, *,
                classes: Sequence[str] | None = None, thumbnails: np.ndarray | None = None,
                grid: int = 10, title: str = "", size_inches: float = 7.0, dpi: int = 110) -> Path:
    """Render ``embedding`` [N, 2] (3-D: the first two axes) to a PNG and return its path.

    Args:
        labels: integer class ids (indices into ``classes``) used for colours.
        classes: names for the legend.
        thumbnails: uint8 [N, h, w, 3]; a spread of them is drawn on top.
        grid: thumbnails per side of the lattice (at most grid**2 thumbnails).
        title: the figure title.
    """
    image = scatter_image(embedding, labels, classes=classes, thumbnails=thumbnails, grid=grid,
                          title=title, size_inches=size_inches, dpi=dpi)
    return save_png(image, path)


@plain_text
def scatter_image(embedding: np.ndarray, labels: Sequence[int] | None = None, *,
                  classes: Sequence[str] | None = None, thumbnails: np.ndarray | None = None,
                  grid: int = 10, title: str = "", size_inches: float = 7.0, dpi: int = 110) -> np.ndarray:
    """The scatter as a uint8 [H, W, 3] array (see ``scatter_png``)."""
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure
    from matplotlib.offsetbox import AnnotationBbox, OffsetImage

    Y = np.asarray(embedding, dtype=np.float64)
    if Y.ndim != 2 or Y.shape[1] < 2:
        raise ArgumentError(f"the embedding must be [N, 2] (or wider), got {Y.shape}")
    Y = Y[:, :2]
    n = len(Y)
    fig = Figure(figsize=(size_inches + (2.2 if labels is not None else 0), size_inches), dpi=dpi)
    FigureCanvasAgg(fig)
    ax = fig.add_subplot(1, 1, 1)
    point_size = float(np.clip(3000 / max(n, 1), 1, 30))
    if labels is None:
        ax.scatter(Y[:, 0], Y[:, 1], s=point_size, c="#1f77b4", alpha=0.7, linewidths=0)
    else:
        labels = np.asarray(labels).astype(np.int64)
        if len(labels) != n:
            raise ArgumentError(f"{len(labels)} labels for {n} points")
        cmap = _colours(int(labels.max()) + 1)
        for k in np.unique(labels):
            pick = labels == k
            name = classes[k] if classes is not None and 0 <= k < len(classes) else str(k)
            ax.scatter(Y[pick, 0], Y[pick, 1], s=point_size, color=cmap[k], alpha=0.7, linewidths=0,
                       label=f"{name} ({int(pick.sum())})")
        ax.legend(loc="upper left", bbox_to_anchor=(1.01, 1.0), fontsize=8, markerscale=max(1.0, 6 / np.sqrt(point_size)),
                  frameon=False)
    if thumbnails is not None:
        thumbnails = np.asarray(thumbnails)
        if len(thumbnails) != n:
            raise ArgumentError(f"{len(thumbnails)} thumbnails for {n} points")
        # OffsetImage sizes are in points (1/72 inch): a thumbnail covers about half a cell.
        zoom = (size_inches * 72 / grid * 0.5) / max(thumbnails.shape[1:3])
        for i in spread(Y, grid):
            box = OffsetImage(thumbnails[i], zoom=zoom, interpolation="nearest")
            edge = cmap[labels[i]] if labels is not None else "#555"
            ax.add_artist(AnnotationBbox(box, Y[i], frameon=True, pad=0.1, bboxprops={"edgecolor": edge, "lw": 1.2}))
    ax.set_xticks([])
    ax.set_yticks([])
    if title:
        ax.set_title(title)
    fig.tight_layout()
    fig.canvas.draw()
    return np.asarray(fig.canvas.buffer_rgba())[..., :3].copy()


def spread(Y: np.ndarray, grid: int) -> list[int]:
    """Indices of the points nearest the centres of the occupied cells of a grid x grid lattice."""
    low, high = Y.min(0), Y.max(0)
    span = np.where(high > low, high - low, 1.0)
    cell = np.minimum(((Y - low) / span * grid).astype(int), grid - 1)
    centre = low + (cell + 0.5) / grid * span
    distance = ((Y - centre) ** 2).sum(1)
    best: dict[tuple[int, int], int] = {}
    for i in np.argsort(distance, kind="stable"):
        best.setdefault((int(cell[i, 0]), int(cell[i, 1])), int(i))
    return sorted(best.values())


def _colours(k: int) -> list:
    from matplotlib import colormaps

    if k <= 10:
        return [colormaps["tab10"](i) for i in range(k)]
    if k <= 20:
        return [colormaps["tab20"](i) for i in range(k)]
    return [colormaps["hsv"](i / k) for i in range(k)]


__all__ = ["scatter_png", "scatter_image", "spread"]

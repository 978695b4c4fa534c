"""Training curves: every metric of a history vs epoch, train and test, one panel each."""
from __future__ import annotations

import io
import os
from pathlib import Path
from typing import Any, Sequence

from netgaze.lab.runs import atomic_write_bytes
from netgaze._util.plots import plain_text

SPLITS = ("train", "test")
# Panels shown first when present; other metrics follow in the order they first appear.
PREFERRED = ("acc", "loss")
PANEL_SIZE = (4.6, 3.6)  # inches per panel (width, height)
MARGINS = (0.75, 0.15, 0.55, 0.35)  # inches: left (tick labels + y label room), right, bottom, top
MAX_COLUMNS = 4  # panels per row; more metrics (a VAE-GAN logs 15) wrap into rows
TITLES = {"acc": "accuracy", "loss": "loss", "miou": "mean IoU", "pixel_acc": "pixel accuracy"}


def metric_names(history: Sequence[dict[str, Any]]) -> list[str]:
    """Metric names that have a ``train_`` or ``test_`` series (``acc``, ``loss``, ``miou``...)."""
    names: list[str] = []
    for record in history:
        for key, value in record.items():
            split, _, name = key.partition("_")
            if split in SPLITS and name and isinstance(value, (int, float)) and name not in names:
                names.append(name)
    return [n for n in PREFERRED if n in names] + [n for n in names if n not in PREFERRED]


@plain_text
def plot_curves(history: Sequence[dict[str, Any]], path: str | os.PathLike,
                title: str | None = None) -> Path | None:
    """Write a PNG of every metric vs epoch (train solid, test dashed); None if nothing to plot.

    Accuracies (fractions) are drawn as percentages on a 0-100 axis.
    """
    names = metric_names(history)
    if not names:
        return None
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure  # no pyplot: no global state, cheaper to import
    from matplotlib.ticker import MaxNLocator

    columns = min(len(names), MAX_COLUMNS)
    rows = -(-len(names) // columns)
    width, height = PANEL_SIZE
    fig = Figure(figsize=(width * columns, height * rows))
    FigureCanvasAgg(fig)
    # Fixed margins in inches, not tight_layout: that measures every label with an extra
    # draw pass, which cost as much as the drawing itself (the trainer draws during training).
    left, right, bottom, top = MARGINS
    top += 0.25 if title else 0.0
    fig.subplots_adjust(left=left / (width * columns), right=1 - right / (width * columns),
                        bottom=bottom / (height * rows), top=1 - top / (height * rows),
                        wspace=(left + right) / (width - left - right),
                        hspace=(bottom + top) / (height - bottom - top))
    axes = fig.subplots(rows, columns, squeeze=False).ravel()
    for ax in axes[len(names):]:
        ax.set_visible(False)
    for ax, name in zip(axes, names):
        percent = name.endswith("acc")
        for split, style in zip(SPLITS, ("-", "--")):
            points = [(r["epoch"], r[f"{split}_{name}"]) for r in history
                      if isinstance(r.get(f"{split}_{name}"), (int, float))]
            if points:
                xs, ys = zip(*points)
                ys = [100 * y for y in ys] if percent else ys
                ax.plot(xs, ys, style, marker="o", markersize=3.5, label=split)
        ax.set_title(TITLES.get(name, name.replace("_", " ")) + (" (%)" if percent else ""))
        ax.set_xlabel("epoch")
        ax.xaxis.set_major_locator(MaxNLocator(integer=True))
        if percent:
            ax.set_ylim(0, 100)
        ax.grid(alpha=0.3)
        ax.legend()
    if title:
        fig.suptitle(title, y=1 - 0.12 / (height * rows), va="top")
    buffer = io.BytesIO()
    fig.savefig(buffer, format="png", dpi=100)
    return atomic_write_bytes(path, buffer.getvalue())

"""Training curves: every metric of a history vs epoch, train and test, one panel each."""
from __future__ import annotations

import io
import os
from pathlib import Path
from typing import Any, Sequence

from netgaze.lab.runs import atomic_write_bytes

SPLITS = ("train", "test")
# Panels shown first when present; other metrics follow in the order they first appear.
PREFERRED = ("acc", "loss")
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

    fig = Figure(figsize=(4.6 * len(names), 3.6))
    FigureCanvasAgg(fig)
    axes = fig.subplots(1, len(names), squeeze=False)
    for ax, name in zip(axes[0], names):
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
        fig.suptitle(title)
    fig.tight_layout()
    buffer = io.BytesIO()
    fig.savefig(buffer, format="png", dpi=100)
    return atomic_write_bytes(path, buffer.getvalue())

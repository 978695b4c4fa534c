"""Training curves drawn from a run's history (quality numbers left, losses right) as PNG bytes."""
from __future__ import annotations

import io
from typing import Any

from netgaze._util.plots import plain_text

SCORE_KEYS = ("train_acc", "test_acc", "pixel_acc", "mean_acc", "mean_iou", "fw_iou")


def score_keys(history: list[dict[str, Any]]) -> list[str]:
    keys = {k for row in history for k, v in row.items() if isinstance(v, (int, float))}
    known = [k for k in SCORE_KEYS if k in keys]
    return known + sorted(k for k in keys if k not in known and (k.endswith("_acc") or k.endswith("_iou")))


def loss_keys(history: list[dict[str, Any]]) -> list[str]:
    keys = {k for row in history for k, v in row.items() if isinstance(v, (int, float))}
    return sorted(k for k in keys if "loss" in k)


@plain_text
def curves_png(history: list[dict[str, Any]], title: str) -> bytes | None:
    """Two panels: accuracies/IoU (in [0, 1]) and losses, against epoch; None without history."""
    rows = [r for r in history if isinstance(r.get("epoch"), (int, float))]
    scores, losses = score_keys(rows), loss_keys(rows)
    if not rows or not (scores or losses):
        return None
    import matplotlib

    matplotlib.use("Agg", force=False)
    import matplotlib.pyplot as plt
    from matplotlib.ticker import MaxNLocator

    panels = [p for p in (("quality", scores), ("loss", losses)) if p[1]]
    figure, axes = plt.subplots(1, len(panels), figsize=(4.4 * len(panels), 2.9), dpi=100, squeeze=False)
    for axis, (kind, keys) in zip(axes[0], panels):
        for key in keys[:6]:
            points = [(r["epoch"], r[key]) for r in rows if isinstance(r.get(key), (int, float))]
            style = "--" if key.startswith("train") else "-"
            axis.plot([p[0] for p in points], [p[1] for p in points], style, marker="o", markersize=3, label=key)
        axis.set_xlabel("epoch")
        axis.xaxis.set_major_locator(MaxNLocator(integer=True))
        axis.set_ylabel("accuracy / IoU" if kind == "quality" else "loss")
        if kind == "quality":
            axis.set_ylim(0, 1.02)
        axis.grid(alpha=0.3)
        axis.legend(fontsize=7)
    figure.suptitle(title, fontsize=10)
    figure.tight_layout()
    buffer = io.BytesIO()
    figure.savefig(buffer, format="png")
    plt.close(figure)
    return buffer.getvalue()

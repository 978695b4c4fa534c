"""Which history metric a run's curves plot (the studies' epoch curves, the explorer's Epochs page)."""
from __future__ import annotations

from typing import Any, Iterable


# Metrics the explorer and the studies plot, in order of preference, when run.json names none.
METRIC_PREFERENCE = ("test_acc", "val_acc", "valid_acc", "eval_acc", "test_accuracy", "val_accuracy",
                     "valid_accuracy", "eval_accuracy", "accuracy", "acc", "test_mean_iou", "val_mean_iou",
                     "test_pixel_mse", "test_loss", "val_loss", "eval_loss", "loss")


def pick_metric(config: dict[str, Any], history: Iterable[dict[str, Any]]) -> str | None:
    """The metric a run's curves plot: ``run.json``'s ``metric`` if set, else the first of
    ``METRIC_PREFERENCE`` that the history holds as a number, else the first numeric key
    after ``epoch``; None for a run without numbers."""
    stated = config.get("metric")
    if isinstance(stated, str) and stated:
        return stated
    numeric: list[str] = []
    for record in history:
        for key, value in record.items():
            if key not in numeric and key not in ("epoch", "seconds", "step") and isinstance(value, (int, float)) \
                    and not isinstance(value, bool):
                numeric.append(key)
    for key in METRIC_PREFERENCE:
        if key in numeric:
            return key
    return numeric[0] if numeric else None

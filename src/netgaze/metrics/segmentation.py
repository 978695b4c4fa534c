"""Segmentation scores from ONE confusion matrix accumulated over a whole set.

The scores follow Long et al. (FCN, 2015), section 5: with ``n[i, j]`` the number of
pixels of true class i predicted as j and ``t[i] = sum_j n[i, j]``:

- pixel accuracy ``sum_i n[i, i] / sum_i t[i]``
- mean accuracy ``mean_i n[i, i] / t[i]``
- mean IoU ``mean_i n[i, i] / (t[i] + sum_j n[j, i] - n[i, i])``
- frequency-weighted IoU ``sum_i t[i] * IoU[i] / sum_i t[i]``

Scores are computed on the matrix of the whole set, never averaged over images. A class
absent from the ground truth has no accuracy (0/0) and is left out of the means
(nanmean); its IoU is 0 when it was predicted somewhere (a false positive) and left out
when it was neither present nor predicted. Pixels labelled ``ignore_index`` (255 in VOC)
are excluded before counting.
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch

from netgaze.errors import ArgumentError

IGNORE_INDEX = 255


def confusion_matrix(target: torch.Tensor, prediction: torch.Tensor, num_classes: int,
                     ignore_index: int = IGNORE_INDEX) -> torch.Tensor:
    """Counts ``[num_classes, num_classes]`` (int64): rows true class, columns predicted class.

    Args:
        target: true labels, any shape, integers in [0, num_classes) or ``ignore_index``.
        prediction: predicted labels of the same shape (take ``argmax(1)`` of the logits first).
        num_classes: the number of classes, background included.
        ignore_index: label of pixels left out (and any other label outside [0, num_classes)
            in ``target`` raises).
    """
    if target.shape != prediction.shape:
        raise ArgumentError(f"target shape {tuple(target.shape)} differs from prediction shape {tuple(prediction.shape)}")
    target = target.reshape(-1).long()
    prediction = prediction.reshape(-1).long().to(target.device)
    keep = target != ignore_index
    target, prediction = target[keep], prediction[keep]
    if target.numel() and (target.min() < 0 or target.max() >= num_classes):
        bad = target[(target < 0) | (target >= num_classes)][0].item()
        raise ArgumentError(f"label {bad} in the target is outside [0, {num_classes}) and is not the ignore label {ignore_index}")
    if prediction.numel() and (prediction.min() < 0 or prediction.max() >= num_classes):
        raise ArgumentError(f"predicted labels must lie in [0, {num_classes})")
    counts = torch.bincount(target * num_classes + prediction, minlength=num_classes * num_classes)
    return counts.view(num_classes, num_classes).cpu()


@dataclass(frozen=True)
class SegmentationScores:
    """The scores of one confusion matrix, as fractions in [0, 1] (nan where undefined)."""

    pixel_acc: float
    mean_acc: float
    mean_iou: float
    fw_iou: float
    class_acc: tuple[float, ...]
    class_iou: tuple[float, ...]

    def as_dict(self) -> dict:
        """JSON-ready: floats, nan written as None."""
        clean = lambda v: None if v != v else float(v)  # noqa: E731 - nan -> None
        return {"pixel_acc": clean(self.pixel_acc), "mean_acc": clean(self.mean_acc),
                "mean_iou": clean(self.mean_iou), "fw_iou": clean(self.fw_iou),
                "class_acc": [clean(v) for v in self.class_acc],
                "class_iou": [clean(v) for v in self.class_iou]}


def scores(confusion: torch.Tensor | np.ndarray) -> SegmentationScores:
    """Pixel accuracy, mean accuracy, mean IoU, frequency-weighted IoU, per-class accuracy and IoU."""
    n = np.asarray(confusion.cpu() if isinstance(confusion, torch.Tensor) else confusion, dtype=np.float64)
    if n.ndim != 2 or n.shape[0] != n.shape[1]:
        raise ArgumentError(f"a confusion matrix is square, got shape {n.shape}")
    diag = np.diag(n)
    truth = n.sum(1)
    union = truth + n.sum(0) - diag
    with np.errstate(divide="ignore", invalid="ignore"):
        class_acc = np.where(truth > 0, diag / truth, np.nan)
        class_iou = np.where(union > 0, diag / union, np.nan)
        total = truth.sum()
        pixel_acc = diag.sum() / total if total > 0 else np.nan
        present = truth > 0
        fw_iou = (truth[present] * class_iou[present]).sum() / total if total > 0 else np.nan
    return SegmentationScores(pixel_acc=float(pixel_acc), mean_acc=_nanmean(class_acc),
                              mean_iou=_nanmean(class_iou), fw_iou=float(fw_iou),
                              class_acc=tuple(float(v) for v in class_acc),
                              class_iou=tuple(float(v) for v in class_iou))


class ConfusionMeter:
    """Accumulates one confusion matrix over batches: ``meter.update(logits, masks)``.

    Args:
        num_classes: classes of the output, background included.
        ignore_index: target label left out of every count.
    """

    def __init__(self, num_classes: int, ignore_index: int = IGNORE_INDEX):
        self.num_classes = num_classes
        self.ignore_index = ignore_index
        self.matrix = torch.zeros(num_classes, num_classes, dtype=torch.long)

    def update(self, output: torch.Tensor, target: torch.Tensor) -> None:
        """Add a batch: logits [B, C, H, W] (argmax taken here) or labels [B, H, W]; target [B, H, W]."""
        prediction = output.argmax(1) if output.dim() == target.dim() + 1 else output
        self.matrix += confusion_matrix(target.detach(), prediction.detach(), self.num_classes, self.ignore_index)

    def scores(self) -> SegmentationScores:
        return scores(self.matrix)


def _nanmean(values: np.ndarray) -> float:
    values = values[~np.isnan(values)]
    return float(values.mean()) if values.size else float("nan")

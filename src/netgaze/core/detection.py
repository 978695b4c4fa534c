"""The ``Detection`` target: explain one box found by a torchvision detector.

A detector in eval mode returns one dict per image with ``"boxes"`` [N, 4] (x0, y0,
x1, y1 in input pixels), ``"labels"`` [N] and ``"scores"`` [N], highest score first.
The target picks, in each image, the detection that best matches a given box (largest
IoU among the detections with the given label) or simply the i-th detection, and
scores it by its confidence; with ``include_box=True`` the matched box's IoU with the
given box is added, so the box regression is explained too (the idea behind
pytorch-grad-cam's ``FasterRCNNBoxScoreTarget``).
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Sequence

import torch

from netgaze.errors import ArgumentError, UserError
from netgaze.core.targets import Target, as_classes


class DetectionMatchError(UserError):
    """No detection of any image matches the ``Detection`` target."""


@dataclass(frozen=True)
class Match:
    """The detection a target picked in one image: its position, label, score and IoU (or None)."""

    index: int | None
    label: int | None = None
    score: float | None = None
    iou: float | None = None


class Detection(Target):
    """The confidence of one detection per image.

    Args:
        box: ``(x0, y0, x1, y1)`` in input pixels (torchvision's box order), one for
            every image or one row per image ([B, 4]).
        label: the class the detection must have (an int or one per image); None: any.
            Given alone (no box, no index): the highest-scoring detection of that label.
        index: instead of ``box``, the ``index``-th detection of each image (0 = the
            highest score).
        include_box: add the matched box's IoU with ``box`` to the score, which makes the
            box regression part of the explanation (needs ``box``).
        min_iou: a best match below this IoU counts as no match (score 0 for that image).

    An image without a match scores 0 (its maps are zero); when no image has one the
    call raises ``DetectionMatchError`` saying what the model detected.
    """

    def __init__(self, box: Sequence[float] | torch.Tensor | None = None, label: Any = None, *,
                 index: int | None = None, include_box: bool = False, min_iou: float = 0.0):
        if box is not None and index is not None:
            raise ArgumentError("Detection takes box=(x0, y0, x1, y1) or index=, not both")
        if box is None and index is None and label is None:
            raise ArgumentError("Detection needs box=(x0, y0, x1, y1), index= or label=")
        if include_box and box is None:
            raise ArgumentError("include_box=True adds the IoU with a given box; give box=")
        if box is not None:
            box = torch.as_tensor(box, dtype=torch.float32)
            if box.shape[-1:] != (4,) or box.dim() > 2:
                raise ArgumentError(f"box is (x0, y0, x1, y1) or one such row per image, got shape {tuple(box.shape)}")
            if bool((box[..., 2] <= box[..., 0]).any() or (box[..., 3] <= box[..., 1]).any()):
                raise ArgumentError(f"empty box {box.tolist()}: need x0 < x1 and y0 < y1")
        if index is not None:
            index = as_classes(index)
            if isinstance(index, list) or index < 0:
                raise ArgumentError(f"index is one non-negative int (0 = the highest-scoring detection), got {index!r}")
        self.box, self.index, self.include_box, self.min_iou = box, index, include_box, float(min_iou)
        self.label = None if label is None else as_classes(label)

    def _box(self, i: int) -> torch.Tensor:
        return self.box if self.box.dim() == 1 else self.box[i]

    def _label(self, i: int) -> int | None:
        return self.label[i] if isinstance(self.label, list) else self.label

    def match(self, detections: list[dict[str, torch.Tensor]]) -> list[Match]:
        """The detection picked in each image (``Match(None)`` where none fits)."""
        _check_detections(detections, self)
        return [self._match_one(d, i) for i, d in enumerate(detections)]

    def _match_one(self, det: dict[str, torch.Tensor], i: int) -> Match:
        labels = det.get("labels")
        allowed = torch.ones(len(det["scores"]), dtype=torch.bool, device=det["scores"].device)
        label = self._label(i)
        if label is not None and labels is not None:
            allowed = labels == label
        if self.index is not None:
            if self.index >= len(det["scores"]) or not bool(allowed[self.index]):
                return Match(None)
            j, iou = self.index, None
        elif self.box is None:  # label alone: its best-scoring detection
            if not bool(allowed.any()):
                return Match(None)
            j, iou = int(torch.where(allowed, det["scores"].detach(), torch.full_like(det["scores"], -1e9)).argmax()), None
        else:
            if not bool(allowed.any()):
                return Match(None)
            ious = box_iou(self._box(i)[None].to(det["boxes"]), det["boxes"].detach())[0]
            ious = torch.where(allowed, ious, torch.full_like(ious, -1.0))
            j = int(ious.argmax())
            iou = float(ious[j])
            if iou <= 0 or iou < self.min_iou:
                return Match(None, iou=max(iou, 0.0))
        return Match(j, None if labels is None else int(labels[j]), float(det["scores"][j].detach()), iou)

    def __call__(self, output: Any) -> torch.Tensor:
        matches = self.match(output)
        if all(m.index is None for m in matches):
            raise DetectionMatchError(_no_match_message(self, output, matches))
        scores = []
        for i, (det, m) in enumerate(zip(output, matches)):
            if m.index is None:
                scores.append(det["scores"].sum() * 0)  # no match: score 0, still on the graph
                continue
            score = det["scores"][m.index]
            if self.include_box:
                score = score + box_iou(self._box(i)[None].to(det["boxes"]), det["boxes"][m.index][None])[0, 0]
            scores.append(score)
        return torch.stack(scores)

    def sample(self, i: int) -> "Detection":
        box = None if self.box is None else self._box(i)
        return Detection(box, self._label(i), index=self.index, include_box=self.include_box, min_iou=self.min_iou)

    def repeat(self, n: int) -> "Detection":
        per_image = (self.box is not None and self.box.dim() == 2) or isinstance(self.label, list)
        if not per_image:
            return self
        box = None if self.box is None else (self.box.repeat(n, 1) if self.box.dim() == 2 else self.box)
        label = self.label * n if isinstance(self.label, list) else self.label
        return Detection(box, label, index=self.index, include_box=self.include_box, min_iou=self.min_iou)

    def __repr__(self) -> str:
        what = (f"box={self.box.tolist()}" if self.box is not None else
                f"index={self.index}" if self.index is not None else "best")
        return f"Detection({what}, label={self.label}, include_box={self.include_box})"


def box_iou(a: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
    """IoU of every box in ``a`` [N, 4] with every box in ``b`` [M, 4] (torchvision's, loaded on use)."""
    from torchvision.ops import box_iou as torchvision_box_iou
    return torchvision_box_iou(a, b)


def _check_detections(output: Any, target: Detection) -> None:
    if not (isinstance(output, list) and all(isinstance(d, dict) and "boxes" in d and "scores" in d for d in output)):
        raise ArgumentError(f"{target!r} explains a detector's output (a list of dicts with 'boxes' and 'scores'); "
                         f"the model returned {type(output).__name__}")
    per_image = [len(v) for v in (target.box if target.box is not None and target.box.dim() == 2 else None,
                                  target.label if isinstance(target.label, list) else None) if v is not None]
    for count in per_image:
        if count != len(output):
            raise ArgumentError(f"Detection: {count} boxes or labels given for a batch of {len(output)}; "
                             "give one per image or a single one")


def _no_match_message(target: Detection, output: list[dict], matches: list[Match]) -> str:
    found = sum(len(d["scores"]) for d in output)
    best = max((m.iou for m in matches if m.iou is not None), default=None)
    extra = f"; best IoU {best:.2f}" if best is not None else ""
    return (f"no detection matches {target!r} in any image ({found} detections in {len(output)} image(s){extra}); "
            "lower the model's score threshold (e.g. box_score_thresh=0) or min_iou, or pick index=")

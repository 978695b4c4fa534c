"""ng.Detection on a tiny detector with hand-set weights: scores and maps computed by hand."""
from __future__ import annotations

import sys
from pathlib import Path

import numpy as np
import pytest
import torch
import torch.nn as nn

import netgaze as ng

sys.path.insert(0, str(Path(__file__).parent))     # toys.py beside this file, from any working directory
from toys import set_conv1x1  # noqa: E402


class TinyDetector(nn.Module):
    """Two fixed anchor boxes on a 4x4 picture, scored from a 1x1 conv ``features`` (A = 2x).

    Detection k: score = sum of A over its anchor's 2x2 cells / 8 (the mean of x there);
    box 0 = (0, 0, 2, 2 + mean(A[0:2, 0:2]) / 4) stretches downwards with the picture;
    labels [1, 2]. Returned like torchvision: one dict per image, highest score first.
    """

    def __init__(self, threshold: float = 0.0):
        super().__init__()
        self.features = set_conv1x1(nn.Conv2d(1, 1, 1, bias=False), [[2.0]])
        self.threshold = threshold  # detections scoring less are dropped

    def forward(self, x):
        a = self.features(x)[:, 0]
        out = []
        for img in a:
            s0, s1 = img[0:2, 0:2].sum() / 8, img[2:4, 2:4].sum() / 8
            box0 = torch.stack([s0 * 0, s0 * 0, s0 * 0 + 2, 2 + img[0:2, 0:2].mean() / 4])
            box1 = torch.tensor([2.0, 2.0, 4.0, 4.0])
            scores, boxes, labels = torch.stack([s0, s1]), torch.stack([box0, box1]), torch.tensor([1, 2])
            order = scores.argsort(descending=True)
            order = order[scores[order] >= self.threshold]
            out.append({"boxes": boxes[order], "scores": scores[order], "labels": labels[order]})
        return out


def _picture():
    x = torch.zeros(1, 1, 4, 4)
    x[0, 0, :2, :2] = torch.tensor([[1.0, 2.0], [3.0, 4.0]])   # detection 0: score 2.5
    x[0, 0, 2:, 2:] = torch.tensor([[0.5, 0.5], [0.5, 0.5]])   # detection 1: score 0.5
    return x


def test_detection_score_and_gradcam_by_hand(snapshot):
    model, x = TinyDetector(), _picture()
    snap = snapshot(model)
    target = ng.Detection(box=(0, 0, 2, 2), label=1)
    out = model(x)
    match = target.match(out)[0]
    assert match.index == 0 and match.label == 1 and match.score == pytest.approx(2.5)
    # mean(A[0:2, 0:2]) = 5, so predicted box 0 = (0, 0, 2, 3.25): IoU with (0, 0, 2, 2) = 4 / 6.5
    assert match.iou == pytest.approx(4 / 6.5)
    assert float(target(out)[0].detach()) == pytest.approx(2.5)
    # dscore/dA = 1/8 on the 2x2 anchor, 0 elsewhere: channel weight = (4/8)/16 = 1/32; cam = relu(A / 32)
    cam = ng.gradcam(model, x, "features", target=target)
    assert torch.allclose(cam, 2 * x[:, 0] / 32)
    # the other detection (label 2) by index and by box
    by_box = ng.gradcam(model, x, "features", target=ng.Detection(box=np.array([2, 2, 4, 4]), label=np.int64(2)))
    by_index = ng.gradcam(model, x, "features", target=ng.Detection(index=1))
    by_label = ng.gradcam(model, x, "features", target=ng.Detection(label=2))  # label 2's best detection
    assert torch.allclose(by_box, by_index) and torch.allclose(by_box, by_label)
    assert torch.allclose(by_box, 2 * x[:, 0] / 32)
    snap.assert_unchanged()


def test_include_box_adds_the_iou_and_its_gradient():
    model, x = TinyDetector(), _picture()
    target = ng.Detection(box=(0, 0, 2, 2), label=1, include_box=True)
    # IoU = 4 / (2 * h) with h = 2 + mean(A)/4 = 3.25 -> 4/6.5; score 2.5 + 4/6.5
    assert float(target(model(x))[0].detach()) == pytest.approx(2.5 + 4 / 6.5)
    # d IoU / dA_ij = -4/(2 h^2) * (1/4) * (1/4) on the anchor = -1/(8 h^2); plus 1/8 from the score
    per_cell = 1 / 8 - 1 / (8 * 3.25 ** 2)
    weight = 4 * per_cell / 16
    cam = ng.gradcam(model, x, "features", target=target)
    assert torch.allclose(cam, (weight * 2 * x[:, 0]).clamp(min=0), atol=1e-6)


def test_no_match_is_zero_for_that_image_and_an_error_for_all():
    model = TinyDetector()
    x = torch.cat([_picture(), _picture()])
    target = ng.Detection(box=[[0, 0, 2, 2], [2, 2, 4, 4]], label=[1, 1])  # image 2: the label-1 box is elsewhere
    matches = target.match(model(x))
    assert matches[0].index == 0 and matches[1].index is None and matches[1].iou == 0
    assert ng.Detection(box=[[0, 0, 2, 2], [2, 2, 4, 4]]).match(model(x))[1].index == 1  # any label
    far = ng.Detection(box=(0, 0, 2, 2), label=[1, 7])
    cam = ng.gradcam(model, x, "features", target=far)
    assert cam[1].abs().sum() == 0 and cam[0].abs().sum() > 0
    with pytest.raises(ng.DetectionMatchError, match="no detection matches"):
        ng.gradcam(model, x, "features", target=ng.Detection(box=(0, 0, 2, 2), label=9))
    with pytest.raises(ValueError, match="needs box"):
        ng.Detection()
    with pytest.raises(ValueError, match="not both"):
        ng.Detection(box=(0, 0, 1, 1), index=0)
    with pytest.raises(ValueError, match="empty box"):
        ng.Detection(box=(3, 0, 1, 2))
    with pytest.raises(ValueError, match="needs class scores|detector's output"):
        ng.gradcam(nn.Sequential(nn.Conv2d(1, 2, 1), nn.Flatten()), x, "0", target=ng.Detection(index=0))


def test_scorecam_on_a_detector_counts_a_vanished_detection_as_zero():
    model, x = TinyDetector(threshold=0.3), _picture()
    target = ng.Detection(box=(2, 2, 4, 4), label=2)
    # the one mask is A scaled to [0, 1] = x / 4: detection 1 then scores 0.0625 < 0.3 and vanishes
    masked = model(x * (x / 4))
    assert target.match(masked)[0].index is None
    # one channel: the softmax weight is 1 whatever the score, so the map is relu(A) = 2x
    assert torch.allclose(ng.scorecam(model, x, "features", target=target), 2 * x[:, 0])

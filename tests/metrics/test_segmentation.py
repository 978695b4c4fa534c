"""Segmentation scores against confusion matrices computed by hand."""
import math

import numpy as np
import pytest
import torch

from netgaze.metrics.segmentation import ConfusionMeter, confusion_matrix, scores


def test_matrix_and_scores_by_hand_with_absent_class_and_ignore_label():
    # 4 classes; class 3 never occurs nor is predicted; the 255 pixel is left out.
    target = torch.tensor([[0, 0, 1], [1, 2, 255]])
    prediction = torch.tensor([[0, 1, 1], [1, 0, 2]])
    matrix = confusion_matrix(target, prediction, num_classes=4)
    assert matrix.tolist() == [[1, 1, 0, 0],
                               [0, 2, 0, 0],
                               [1, 0, 0, 0],
                               [0, 0, 0, 0]]
    s = scores(matrix)
    assert s.pixel_acc == pytest.approx(3 / 5)
    assert s.class_acc[:3] == pytest.approx((1 / 2, 1.0, 0.0)) and math.isnan(s.class_acc[3])
    assert s.mean_acc == pytest.approx((1 / 2 + 1 + 0) / 3)
    # IoU = n_ii / (t_i + sum_j n_ji - n_ii)
    assert s.class_iou[:3] == pytest.approx((1 / 3, 2 / 3, 0.0)) and math.isnan(s.class_iou[3])
    assert s.mean_iou == pytest.approx((1 / 3 + 2 / 3 + 0) / 3)
    assert s.fw_iou == pytest.approx((2 * (1 / 3) + 2 * (2 / 3) + 1 * 0) / 5)


def test_class_absent_from_truth_but_predicted_counts_as_zero_iou():
    target = torch.tensor([0, 0, 1, 1])
    prediction = torch.tensor([0, 3, 1, 1])
    s = scores(confusion_matrix(target, prediction, num_classes=4))
    assert s.pixel_acc == pytest.approx(3 / 4)
    assert s.mean_acc == pytest.approx((1 / 2 + 1) / 2)          # classes 2, 3 have no truth: left out
    assert s.class_iou[3] == 0.0 and math.isnan(s.class_iou[2])  # 3 was predicted, 2 never seen
    assert s.mean_iou == pytest.approx((1 / 2 + 1 + 0) / 3)
    assert s.fw_iou == pytest.approx((2 * 0.5 + 2 * 1.0) / 4)


def test_meter_accumulates_one_matrix_not_an_average_of_images():
    torch.manual_seed(0)
    logits = torch.randn(3, 3, 5, 7)
    masks = torch.randint(0, 3, (3, 5, 7))
    masks[0, 0, :] = 255
    meter = ConfusionMeter(3)
    for i in range(3):
        meter.update(logits[i:i + 1], masks[i:i + 1])
    whole = confusion_matrix(masks, logits.argmax(1), 3)
    assert torch.equal(meter.matrix, whole)
    assert meter.matrix.sum().item() == 3 * 5 * 7 - 7
    per_image = np.mean([scores(confusion_matrix(masks[i], logits[i].argmax(0), 3)).mean_iou for i in range(3)])
    assert meter.scores().mean_iou != pytest.approx(per_image)


def test_perfect_prediction_and_bad_labels():
    target = torch.tensor([[0, 1], [2, 255]])
    s = scores(confusion_matrix(target, target.clamp(max=2), 3))
    assert (s.pixel_acc, s.mean_acc, s.mean_iou, s.fw_iou) == (1.0, 1.0, 1.0, 1.0)
    with pytest.raises(ValueError, match="label 7"):
        confusion_matrix(torch.tensor([7]), torch.tensor([0]), 3)
    assert scores(np.zeros((2, 2))).as_dict()["mean_iou"] is None

import pytest
import torch

import netgaze as ng

LOGITS = torch.tensor([[0.0, 3.0, 1.0], [5.0, -1.0, 2.0]])


def test_class_and_top_class_scores():
    assert torch.equal(ng.Class(2)(LOGITS), torch.tensor([1.0, 2.0]))
    assert torch.equal(ng.Class([1, 0])(LOGITS), torch.tensor([3.0, 5.0]))
    assert torch.equal(ng.TopClass()(LOGITS), torch.tensor([3.0, 5.0]))
    assert torch.equal(ng.TopClass(2)(LOGITS), torch.tensor([[3.0, 1.0], [5.0, 2.0]]))
    assert ng.TopClass().resolve(LOGITS).c == [1, 0]


def test_area_box_is_end_exclusive_sum_and_channel_picks():
    out = torch.arange(2 * 2 * 3 * 3, dtype=torch.float32).view(2, 2, 3, 3)
    assert torch.equal(ng.Area(box=(0, 1, 2, 3))(out), out[:, :, 0:2, 1:3].sum(dim=(1, 2, 3)))
    assert torch.equal(ng.Area(box=(1, 1, 2, 2), channel=1)(out), out[:, 1, 1, 1])
    mask = torch.zeros(3, 3, dtype=torch.bool)
    mask[2, 0] = True
    assert torch.equal(ng.Area(mask=mask)(out), out[:, :, 2, 0].sum(1))


def test_area_predicted_channel_is_the_majority_class_of_the_area_per_sample():
    out = torch.zeros(2, 3, 4, 4)
    out[0, 2, :2, :2] = 5.0          # sample 0: class 2 wins the top-left box (the rest argmax to class 0)
    out[0, 1, 0, 0] = 9.0            # ... except one pixel of class 1
    out[1, 1, :, :2] = 1.0           # sample 1: class 1 on the left half
    target = ng.Area(box=(0, 0, 2, 2), channel="predicted")
    assert target.predicted_channels(out).tolist() == [2, 1]
    assert torch.equal(target(out), torch.stack([out[0, 2, :2, :2].sum(), out[1, 1, :2, :2].sum()]))
    masks = torch.zeros(2, 4, 4, dtype=torch.bool)
    masks[0, 3, 3] = True            # all-zero logits there: a tie, the lower class wins
    masks[1, :, 0] = True
    assert ng.Area(mask=masks, channel="predicted").predicted_channels(out).tolist() == [0, 1]
    with pytest.raises(ValueError, match="predicted"):
        ng.Area(box=(0, 0, 1, 1), channel="pred")


def test_area_errors():
    with pytest.raises(ValueError, match="exactly one"):
        ng.Area()
    with pytest.raises(ValueError, match="empty"):
        ng.Area(box=(2, 0, 2, 3))
    with pytest.raises(ValueError, match="outside"):
        ng.Area(box=(0, 0, 4, 4))(torch.zeros(1, 1, 3, 3))
    with pytest.raises(ValueError, match="dense output"):
        ng.Area(box=(0, 0, 1, 1))(LOGITS)


def test_repeat_and_sample():
    assert ng.Class([1, 2]).repeat(2).c == [1, 2, 1, 2]
    assert ng.Class([1, 2]).sample(1).c == 2
    masks = torch.rand(2, 3, 3)
    assert torch.equal(ng.Area(mask=masks).repeat(3).mask[4], masks[0])
    with pytest.raises(ValueError, match="Class"):
        ng.Class(1)(torch.zeros(2, 3, 4, 4))


@pytest.mark.parametrize("mask", [torch.zeros(4, 4, dtype=torch.bool), torch.zeros(4, 4),
                                  torch.stack([torch.ones(4, 4), torch.zeros(4, 4)])],
                         ids=["bool", "float", "second-sample"])
def test_empty_area_mask_is_an_error(mask):
    from netgaze.errors import UserError

    with pytest.raises(UserError, match="selects no pixel"):
        ng.Area(mask=mask)
    with pytest.raises(UserError, match="NaN"):
        ng.Area(mask=torch.full((4, 4), float("nan")))

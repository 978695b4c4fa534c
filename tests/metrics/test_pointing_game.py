"""Pointing games on hand-made maps with known answers."""
import pytest
import torch

from netgaze.metrics import (boxes_to_masks, centre_baseline, energy_inside, energy_pointing_game, pointing_game,
                             pointing_hits)


def square_mask(size=10, y0=2, x0=3, y1=5, x1=7):
    m = torch.zeros(1, size, size, dtype=torch.bool)
    m[0, y0:y1, x0:x1] = True
    return m


def test_max_inside_mask_scores_one_and_outside_zero():
    mask = square_mask()
    inside = torch.zeros(1, 10, 10)
    inside[0, 3, 4] = 5.0
    outside = torch.zeros(1, 10, 10)
    outside[0, 9, 9] = 5.0
    assert pointing_game(inside, mask) == 1.0
    assert pointing_game(outside, mask) == 0.0
    both = torch.cat([inside, outside])
    assert pointing_hits(both, mask.expand(2, 10, 10)).tolist() == [1.0, 0.0]
    assert pointing_game(both, mask.expand(2, 10, 10)) == 0.5


def test_boxes_equal_masks():
    mask = square_mask()
    assert torch.equal(boxes_to_masks([(2, 3, 5, 7)], (10, 10)), mask)
    maps = torch.rand(1, 10, 10, generator=torch.Generator().manual_seed(0))
    assert pointing_game(maps, [(2, 3, 5, 7)]) == pointing_game(maps, mask)
    assert energy_pointing_game(maps, torch.tensor([[2, 3, 5, 7]])) == pytest.approx(energy_pointing_game(maps, mask))


def test_uniform_map_scores_the_area_share():
    mask = square_mask()  # 3 x 4 = 12 of 100 pixels
    flat = torch.full((1, 10, 10), 0.7)
    assert energy_pointing_game(flat, mask) == pytest.approx(0.12)
    # a flat map's maximum is everywhere: the tie share, not a free hit
    assert pointing_game(flat, mask) == pytest.approx(0.12)
    # a zero map counts as flat too
    assert energy_inside(torch.zeros(1, 10, 10), mask).item() == pytest.approx(0.12)


def test_energy_of_hand_made_map():
    mask = square_mask()
    m = torch.zeros(1, 10, 10)
    m[0, 2, 3] = 3.0   # inside
    m[0, 8, 8] = 1.0   # outside
    m[0, 0, 0] = -4.0  # negative values are clipped
    assert energy_pointing_game(m, mask) == pytest.approx(0.75)


def test_tolerance_at_mask_border():
    mask = square_mask()  # rows 2..4, cols 3..6
    m = torch.zeros(1, 10, 10)
    m[0, 3, 8] = 1.0  # one column right of the border (x=6 is the last inside), distance 2
    assert pointing_game(m, mask) == 0.0
    assert pointing_game(m, mask, tolerance=1) == 0.0
    assert pointing_game(m, mask, tolerance=2) == 1.0
    diag = torch.zeros(1, 10, 10)
    diag[0, 6, 8] = 1.0  # from corner (4, 6): dy=2, dx=2 -> sqrt(8) = 2.83
    assert pointing_game(diag, mask, tolerance=2.8) == 0.0
    assert pointing_game(diag, mask, tolerance=2.9) == 1.0


def test_centre_baseline_peaks_at_centre():
    c = centre_baseline(2, (9, 9))
    assert c.shape == (2, 9, 9)
    assert c[0, 4, 4] == 1.0 and c[0].argmax() == 4 * 9 + 4
    centre_mask = torch.zeros(2, 9, 9, dtype=torch.bool)
    centre_mask[:, 3:6, 3:6] = True
    assert pointing_game(c, centre_mask) == 1.0
    corner = torch.zeros(2, 9, 9, dtype=torch.bool)
    corner[:, :3, :3] = True
    assert pointing_game(c, corner) == 0.0


def test_bad_shapes_are_refused():
    with pytest.raises(ValueError, match="does not match"):
        pointing_game(torch.rand(2, 10, 10), torch.zeros(3, 10, 10, dtype=torch.bool))
    with pytest.raises(ValueError, match=r"\[N, H, W\]"):
        pointing_game(torch.rand(2, 3, 10, 10), torch.zeros(2, 10, 10, dtype=torch.bool))

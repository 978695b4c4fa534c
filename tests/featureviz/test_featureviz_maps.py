"""Activation maps and their statistics on a hand-set model; filter images."""
from __future__ import annotations

import numpy as np
import torch
import torch.nn as nn

from netgaze.featureviz import activation_maps, filter_grid, filters


def _toy():
    model = nn.Sequential(nn.Conv2d(1, 4, 1), nn.ReLU(inplace=True), nn.Conv2d(4, 2, 1), nn.ReLU(),
                          nn.MaxPool2d(2), nn.Conv2d(2, 2, 1))
    with torch.no_grad():
        model[0].weight.copy_(torch.tensor([1.0, -1.0, 0.0, 2.0]).view(4, 1, 1, 1))
        model[0].bias.zero_()
        model[2].weight.copy_(torch.tensor([[1.0, 0, 0, 1.0], [-1.0, 0, 0, 0]]).view(2, 4, 1, 1))
        model[2].bias.zero_()
        model[5].weight.copy_(torch.tensor([[-1.0, 0.0], [0.0, -1.0]]).view(2, 2, 1, 1))
        model[5].bias.copy_(torch.tensor([0.0, 0.0]))
    return model


def test_stats_by_hand(snapshot):
    model = _toy()
    snap = snapshot(model)
    image = torch.rand(1, 8, 8, generator=torch.Generator().manual_seed(0)) + 0.1  # all positive
    result = activation_maps(model, image)
    snap.assert_unchanged()
    assert [s.name for s in result.stats] == ["0", "2", "5"]
    first, second, third = result.stats
    # conv 0: channels x, -x, 0, 2x -> after ReLU x, 0, 0, 2x: half blank, mean 3x/4
    assert first.blank_share == 0.5 and (first.height, first.width, first.channels) == (8, 8, 4)
    assert np.isclose(first.mean_activation, 0.75 * float(image.mean()), rtol=1e-5)
    # conv 2 sees ReLU'd input: x + 2x = 3x and -x -> one blank channel
    assert second.blank_share == 0.5 and np.isclose(second.mean_activation, 1.5 * float(image.mean()), rtol=1e-5)
    # conv 5: minus the pooled inputs -> all negative -> every channel blank
    assert third.blank_share == 1.0 and third.mean_activation == 0.0 and (third.height, third.width) == (4, 4)
    assert torch.allclose(result.maps["0"][3], 2 * image[0])
    assert result.maps["0"][1].abs().max() == 0
    table = result.table()
    assert "50.0%" in table and "100.0%" in table and "4x4" in table
    one = activation_maps(model, image, layers=["2"], rectify=False)
    assert one.stats[0].blank_share == 0.0 and one.maps["2"][1].max() < 0


def test_grid_and_plot(tmp_path):
    from netgaze import viz

    result = activation_maps(_toy(), torch.rand(1, 1, 8, 8) + 0.1)
    tiles = result.grid("0", ncols=4)
    assert tiles.dtype == np.uint8 and tiles.shape == (2 + 48 + 2, 2 + 4 * (48 + 2), 3)  # 8 px maps at scale 6
    tile = [tiles[2:50, 2 + 50 * c:50 + 50 * c] for c in range(4)]
    # channels x, 0, 0, 2x: each map is min-max normalised on its own, so x and 2x look the same
    assert np.array_equal(tile[0], tile[3]) and not np.array_equal(tile[0], tile[1])
    assert (tile[1] == tile[1][0, 0]).all() and np.array_equal(tile[1], tile[2])  # blank: one uniform colour
    expected = viz.colormap(viz.normalize(result.maps["0"][:1]), "viridis")[0].repeat(6, 0).repeat(6, 1)
    assert np.array_equal(tile[0], expected)
    result.plot(tmp_path / "sparsity.png")
    assert (tmp_path / "sparsity.png").stat().st_size > 1000


def test_filters_are_normalised_per_kernel():
    torch.manual_seed(0)
    model = nn.Sequential(nn.Conv2d(3, 4, 5), nn.ReLU(), nn.Conv2d(4, 6, 3))
    w = filters(model)
    assert w.shape == (4, 3, 5, 5)
    for k in range(4):
        assert w[k].min() == 0 and w[k].max() == 1
        raw = model[0].weight[k].detach()
        assert torch.allclose(w[k], (raw - raw.min()) / (raw.max() - raw.min()), atol=1e-6)
    first = filter_grid(model)
    deeper = filter_grid(model, "2", max_inputs=3)
    assert first.dtype == np.uint8 and deeper.shape[1] > first.shape[1] // 2

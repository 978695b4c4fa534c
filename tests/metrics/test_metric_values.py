"""Hand-computed values of the issue-25 metrics on tiny inputs (no peer needed)."""
from __future__ import annotations

import math

import numpy as np
import pytest
import torch
import torch.nn as nn

import netgaze as ng
from netgaze.core.targets import Class
from netgaze.errors import UserError

M = ng.metrics


class PixelSum(nn.Module):
    """Class 0's logit is the sum of all inputs, class 1's is 0: raw scores are easy to add up by hand."""

    def forward(self, x):
        s = x.flatten(1).sum(1)
        return torch.stack([s, torch.zeros_like(s)], 1)


def identity_map(model, x, target=None, output=None):
    return x[:, 0]


def test_sparseness_and_complexity_by_hand():
    one_hot = torch.zeros(2, 4, 5)
    one_hot[0, 1, 2] = 3.0
    one_hot[1, 0, 0] = -0.5  # the sign does not count
    flat = torch.full((1, 4, 5), 0.7)
    assert M.sparseness(one_hot).tolist() == pytest.approx([1 - 1 / 20] * 2, abs=1e-7)
    assert M.sparseness(flat).tolist() == pytest.approx([0.0], abs=1e-7)
    assert M.sparseness(torch.zeros(1, 2, 2)).tolist() == [0.0]
    two = torch.tensor([[[0.0, 1.0], [0.0, 3.0]]])  # Gini of sorted (0, 0, 1, 3): (1 * 1 + 3 * 3) / (4 * 4)
    assert float(M.sparseness(two)) == pytest.approx(10 / 16, abs=1e-7)
    assert M.complexity(flat).tolist() == pytest.approx([math.log(20)], abs=1e-6)
    assert M.complexity(one_hot).tolist() == pytest.approx([0.0, 0.0], abs=1e-7)
    p = np.array([1, 3]) / 4
    assert float(M.complexity(two)) == pytest.approx(float(-(p * np.log(p)).sum()), abs=1e-6)


def test_relevance_mass_and_rank_by_hand():
    maps = torch.tensor([[[1.0, 2.0], [3.0, 4.0]]]).repeat(2, 1, 1)
    masks = torch.tensor([[[True, True], [False, False]], [[False, True], [False, True]]])
    assert M.relevance_mass_accuracy(maps, masks).tolist() == pytest.approx([3 / 10, 6 / 10])
    assert M.relevance_rank_accuracy(maps, masks).tolist() == pytest.approx([0.0, 0.5])  # top-2 are 4 and 3
    empty = torch.zeros(1, 2, 2, dtype=torch.bool)
    assert math.isnan(float(M.relevance_mass_accuracy(maps[:1], empty)))
    assert math.isnan(float(M.relevance_rank_accuracy(maps[:1], empty)))
    signed = torch.tensor([[[2.0, -1.0], [0.0, 0.0]]])  # negative mass counts: 2 / (2 - 1)
    assert float(M.relevance_mass_accuracy(signed, masks[:1] & torch.tensor([[True, False], [False, False]]))) == 2.0


def ramp(size: int = 7) -> torch.Tensor:
    r = torch.arange(size, dtype=torch.float64)
    return (0.3 * r[:, None] - 0.2 * r[None, :] + 1.0)[None].float()


def test_linear_imputation_restores_a_ramp_inside_and_adds_the_noise_asked_for():
    image = ramp().repeat(2, 1, 1)
    removed = torch.zeros(7, 7, dtype=torch.bool)
    removed[2:5, 1:6] = True  # every removed pixel has all 8 neighbours inside the picture
    out = M.noisy_linear_imputation(image, removed, noise=0.0)
    assert torch.allclose(out, image, atol=1e-6)
    big = torch.zeros(1, 64, 64)
    hole = torch.zeros(64, 64, dtype=torch.bool)
    hole[4:60, 4:60] = True
    noisy = M.noisy_linear_imputation(big, hole, noise=0.5, generator=torch.Generator().manual_seed(0))
    assert float(noisy[0][hole].std()) == pytest.approx(0.5, rel=0.03)
    assert float(noisy[0][~hole].abs().max()) == 0.0
    with pytest.raises(UserError, match="at least one kept pixel"):
        M.noisy_linear_imputation(big, torch.ones(64, 64, dtype=torch.bool))


def test_road_morf_removes_the_ramps_inside_and_lerf_its_border():
    x = ramp()[None]  # [1, 1, 7, 7]; a linear model sees an exact imputation as no change
    maps = torch.zeros(1, 7, 7)
    maps[0, 1:6, 1:6] = 1 + torch.arange(25.0).view(5, 5) / 100  # the 25 inner pixels first
    target = Class(0)
    morf = M.road(PixelSum(), x, maps, target, percentages=[20, 40], noise=0.0, score="raw")
    assert morf.mean_change.tolist() == pytest.approx([0.0], abs=1e-4)
    lerf = M.road(PixelSum(), x, maps, target, order="lerf", percentages=[40], noise=0.0, score="raw")
    assert abs(float(lerf.mean_change)) > 0.05  # border pixels miss neighbours: the fill is not the ramp
    assert morf.correct.tolist() == [[True, True]]


def test_pixel_flipping_and_irof_by_hand():
    x = torch.tensor([[[[1.0, 2.0], [3.0, 4.0]]]])
    curve = M.pixel_flipping(PixelSum(), x, x[:, 0], Class(0), score="raw")  # black = the minimum, 1
    assert curve.scores.tolist() == [[7.0, 5.0, 4.0, 4.0]]
    assert curve.auc.tolist() == [pytest.approx((7 + 5) / 2 + (5 + 4) / 2 + (4 + 4) / 2)]
    two = M.pixel_flipping(PixelSum(), x, x[:, 0], Class(0), score="raw", pixels_per_step=3, baseline=0.0)
    assert two.scores.tolist() == [[1.0, 0.0]]
    segments = torch.tensor([[0, 0], [5, 5]])  # ids renumbered; the bottom row (mean 3.5) goes first
    result = M.irof(PixelSum(), x, x[:, 0], Class(0), segments=segments, baseline=0.0, score="raw")
    assert result.scores.tolist() == [[pytest.approx(3 / 10), 0.0]]
    assert result.auc.tolist() == [pytest.approx(2 - 0.15)]
    assert result.normalised.tolist() == [pytest.approx((2 - 0.15) / 2)]
    grid = M.irof(PixelSum(), x.repeat(1, 1, 4, 4), x[:, 0].repeat(1, 4, 4), Class(0), grid=2, score="raw")
    assert int(grid.steps[0]) == 4


def test_confidence_change_by_hand():
    x = torch.ones(1, 1, 2, 2)
    maps = torch.tensor([[[0.0, 1.0], [1.0, 1.0]]])
    result = M.confidence_change(PixelSum(), x, maps, Class(0), score="raw")
    assert float(result.before) == 4.0
    assert float(result.after) == pytest.approx(3.0, abs=1e-6)
    assert result.average_drop == pytest.approx(0.25, abs=1e-6)
    assert result.increase_rate == 0.0
    raised = M.confidence_change(PixelSum(), -x, maps, Class(0), score="raw")  # -4 -> -3: a rise
    assert raised.increase_rate == 1.0 and raised.average_drop == 0.0
    same = M.confidence_change(PixelSum(), torch.zeros(1, 1, 2, 2), maps, Class(0), score="raw")  # 0 -> 0
    assert same.increase_rate == 0.0 and same.average_drop == 0.0


def test_infidelity_is_zero_for_the_exact_gradient_of_a_linear_model():
    torch.manual_seed(0)
    model = nn.Sequential(nn.Flatten(), nn.Linear(12, 3)).eval()
    x = torch.rand(2, 3, 2, 2)
    w = model[1].weight[1].detach().view(1, 3, 2, 2).expand(2, 3, 2, 2)
    assert M.infidelity(model, x, w, Class(1), noise_std=0.5).tolist() == pytest.approx([0, 0], abs=1e-9)
    assert M.infidelity(model, x, 2 * w, Class(1), noise_std=0.5, normalize=True).tolist() == \
        pytest.approx([0, 0], abs=1e-9)
    doubled = M.infidelity(model, x, 2 * w, Class(1), noise_std=0.5, n_samples=4, random_state=3)
    noise = torch.randn((8, 3, 2, 2), generator=torch.Generator().manual_seed(3)) * 0.5
    expected = ((noise * w[:1]).flatten(1).sum(1) ** 2).view(2, 4).mean(1)  # (2 I.w - I.w)^2
    assert doubled.tolist() == pytest.approx(expected.tolist(), rel=1e-5)


def test_max_sensitivity_and_local_lipschitz_of_the_identity_map():
    x = torch.rand(3, 1, 4, 4, generator=torch.Generator().manual_seed(0)) + 0.5
    model = PixelSum()
    lipschitz = M.local_lipschitz(model, x, identity_map, None, Class(0), n_samples=3)
    assert lipschitz.tolist() == pytest.approx([1.0] * 3, abs=1e-6)  # ||e(x) - e(x')|| = ||x - x'||
    tripled = M.local_lipschitz(model, x, lambda model, x, target=None, output=None: 3 * x[:, 0], None, Class(0),
                                n_samples=3)
    assert tripled.tolist() == pytest.approx([3.0] * 3, abs=1e-5)
    sens = M.max_sensitivity(model, x, identity_map, None, Class(0), n_samples=5, radius=0.1, random_state=2)
    noise = torch.empty((15, 1, 4, 4)).uniform_(-0.1, 0.1, generator=torch.Generator().manual_seed(2))
    expected = (noise.flatten(1).norm(dim=1).view(3, 5) / x.flatten(1).norm(dim=1)[:, None]).amax(1)
    assert sens.tolist() == pytest.approx(expected.tolist(), rel=1e-5)


def test_random_logit_of_a_class_blind_method_is_one_and_never_draws_the_class():
    x = torch.rand(6, 1, 8, 8, generator=torch.Generator().manual_seed(0))
    model = nn.Sequential(nn.Flatten(), nn.Linear(64, 3))
    target = Class([0, 1, 2, 0, 1, 2])
    assert M.random_logit(model, x, identity_map, None, target).tolist() == pytest.approx([1.0] * 6)
    assert M.random_logit(model, x, identity_map, None, target, similarity="spearman").tolist() == \
        pytest.approx([1.0] * 6)
    grads = M.random_logit(model, x, "saliency", None, target, similarity="spearman")
    assert (grads < 0.9).all()  # a linear model's saliency is its class's weights: other class, other map
    draw = torch.randint(0, 2, (6,), generator=torch.Generator().manual_seed(4))
    other = (draw + (draw >= torch.tensor([0, 1, 2, 0, 1, 2])).long()).tolist()  # the K - 1 others, in order
    assert M.random_logit(model, x, "saliency", None, target, similarity="spearman", random_state=4).tolist() == \
        M.random_logit(model, x, "saliency", None, target, similarity="spearman", other=other).tolist()
    with pytest.raises(UserError, match="unlike the explained class"):
        M.random_logit(model, x, identity_map, None, target, other=[0, 0, 0, 0, 0, 0])


def test_histogram_entropy_and_emprt_by_hand():
    halves = torch.cat([torch.zeros(1, 2, 4), torch.ones(1, 2, 4)], 1)
    assert M.histogram_entropy(halves).tolist() == pytest.approx([math.log(2)])
    spread = torch.linspace(0, 1, 100).view(1, 10, 10)
    assert M.histogram_entropy(spread).tolist() == pytest.approx([math.log(100)], abs=1e-9)
    assert M.histogram_entropy(torch.ones(1, 3, 3)).tolist() == [0.0]
    x = torch.rand(2, 1, 8, 8, generator=torch.Generator().manual_seed(0))
    model = nn.Sequential(nn.Conv2d(1, 2, 3), nn.Flatten(), nn.Linear(72, 3))
    before = {k: v.clone() for k, v in model.state_dict().items()}
    blind = M.efficient_mprt(model, x, identity_map, None, Class(0))
    assert blind.rise.tolist() == pytest.approx([0.0, 0.0])
    result = M.efficient_mprt(model, x, "saliency", None, Class(0))
    assert not torch.allclose(result.after, result.before)
    assert all(torch.equal(before[k], v) for k, v in model.state_dict().items())

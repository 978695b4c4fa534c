"""Objectives: hand-computed values, algebra, parsing, and each one improves when optimised."""
from __future__ import annotations

import pytest
import torch
import torch.nn as nn

from netgaze.featureviz import (Context, as_objective, blur, channel, class_logit, direction, diversity, l1,
                                neuron, render, total_variation)
from netgaze.featureviz.render import objective_scores


def _ctx():
    acts = torch.arange(2 * 3 * 2 * 2, dtype=torch.float32).view(2, 3, 2, 2)  # [B=2, C=3, 2, 2]
    out = torch.tensor([[1.0, 5.0, -2.0], [0.5, -1.0, 4.0]])
    image = torch.tensor([[[[0.0, 1.0], [1.0, 1.0]]], [[[0.5, 0.5], [0.5, 0.5]]]])  # [2, 1, 2, 2]
    return Context(activations={"conv": acts}, output=out, image=image)


def test_leaf_values_by_hand():
    ctx = _ctx()
    # sample 0 channel 1 holds 4..7 (mean 5.5); sample 1 channel 2 holds 20..23 (mean 21.5)
    assert channel("conv", [1, 2])(ctx).tolist() == [5.5, 21.5]
    assert channel("conv", 0)(ctx).tolist() == [1.5, 13.5]
    # neuron at the centre (1, 1) of 2x2 maps, and at an explicit position
    assert neuron("conv", 1)(ctx).tolist() == [7.0, 19.0]
    assert neuron("conv", 1, y=0, x=1)(ctx).tolist() == [5.0, 17.0]
    assert class_logit([1, 2])(ctx).tolist() == [5.0, 4.0]
    # direction (1, 0, 1)/sqrt(2): per position (c0 + c2)/sqrt(2), averaged over positions
    d = direction("conv", torch.tensor([1.0, 0.0, 1.0]))(ctx)
    assert torch.allclose(d, torch.tensor([(1.5 + 9.5), (13.5 + 21.5)]) / 2 ** 0.5)
    # total variation of sample 0: vertical |1-0|,|1-1| -> 0.5; horizontal |1-0|,|1-1| -> 0.5
    assert total_variation()(ctx).tolist() == [1.0, 0.0]
    assert l1(0.0)(ctx).tolist() == [0.75, 0.5]
    assert l1(0.5)(ctx).tolist() == [0.5, 0.0]
    # blur: a constant image is its own blur; sample 0's replicate-padded box blur by hand
    b = blur()(ctx)
    assert b[1] == 0
    img = ctx.image[0, 0]
    padded = torch.nn.functional.pad(ctx.image[:1], [1, 1, 1, 1], mode="replicate")[0, 0]
    blurred = torch.stack([torch.stack([padded[y:y + 3, x:x + 3].mean() for x in range(2)]) for y in range(2)])
    assert torch.isclose(b[0], 0.5 * (img - blurred).pow(2).mean())


def test_diversity_is_mean_gram_similarity():
    ctx = _ctx()
    flat = ctx.activations["conv"].reshape(2, 3, 4)
    grams = torch.nn.functional.normalize(torch.bmm(flat, flat.transpose(1, 2)).flatten(1), dim=1)
    sim = float(grams[0] @ grams[1])
    assert torch.allclose(diversity("conv")(ctx), torch.tensor([sim, sim]))
    one = Context({"conv": ctx.activations["conv"][:1]}, None, ctx.image[:1])
    assert diversity("conv")(one).tolist() == [0.0]


def test_algebra_gives_combined_numbers():
    ctx = _ctx()
    a, b, t = channel("conv", [1, 2]), class_logit([1, 2]), total_variation()
    combo = 2 * a - b / 4 + (-t) - 0.5 * (a - b)
    expected = 2 * torch.tensor([5.5, 21.5]) - torch.tensor([5.0, 4.0]) / 4 - torch.tensor([1.0, 0.0]) \
        - 0.5 * (torch.tensor([5.5, 21.5]) - torch.tensor([5.0, 4.0]))
    assert torch.allclose(combo(ctx), expected)
    assert torch.allclose(sum([a, b, t])(ctx), torch.tensor([11.5, 25.5]))
    assert set(combo.layers) == {"conv", "logits"} and combo.model_layers == ["conv"]
    assert len(combo.terms) == 5  # flat weighted sum, no nesting
    with pytest.raises(TypeError):
        a * a


def test_string_parsing():
    ctx = _ctx()
    assert as_objective("conv:2")(ctx).tolist() == channel("conv", 2)(ctx).tolist()
    assert as_objective("logits:1")(ctx).tolist() == [5.0, -1.0]
    assert as_objective("features.28:5").layers == ("features.28",)
    assert as_objective("conv", [0, 1])(ctx).tolist() == [1.5, 17.5]
    with pytest.raises(ValueError, match="channel number"):
        as_objective("conv:x")
    with pytest.raises(ValueError, match="names no channel"):
        as_objective("conv")


def _toy():
    torch.manual_seed(0)
    return nn.Sequential(nn.Conv2d(1, 4, 3, padding=1), nn.ReLU(inplace=True), nn.Conv2d(4, 4, 3, padding=1),
                         nn.AdaptiveAvgPool2d(2), nn.Flatten(), nn.Linear(16, 3))


@pytest.mark.parametrize("name, objective", [
    ("channel", channel("2", [0, 1, 2])),
    ("neuron", neuron("2", [3, 1, 0])),
    ("class_logit", class_logit([0, 1, 2])),
    ("direction", direction("2", torch.tensor([1.0, -1.0, 0.5, 0.0]))),
    ("diversity", -diversity("2")),
    ("total_variation", -total_variation()),
    ("l1", -l1(0.5)),
    ("blur", -blur()),
])
def test_each_objective_lowers_its_loss(name, objective):
    model = _toy()
    kw = dict(param="pixel", transforms=[], random_state=3, lr=0.003)
    start = render(model, objective, 3, 12, steps=0, **kw)
    end = render(model, objective, 3, 12, steps=15, **kw)
    before, after = -objective_scores(model, objective, start).sum(), -objective_scores(model, objective, end).sum()
    assert after < before - 1e-4 * abs(before), (name, float(before), float(after))

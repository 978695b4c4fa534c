"""ng.lrp: rules by hand on toys, equal to zennit's own attributor, conservation, an untouched model."""
from __future__ import annotations

import pytest
import torch
import torch.nn as nn

import netgaze as ng

pytest.importorskip("zennit", reason="zennit is not installed (pip install 'netgaze[lrp]')")


def linear_model() -> nn.Sequential:
    head = nn.Linear(4, 2, bias=False)
    with torch.no_grad():
        head.weight.copy_(torch.tensor([[1.0, -2.0, 3.0, 0.5], [0.0, 1.0, 1.0, -1.0]]))
    return nn.Sequential(nn.Flatten(), head)


X = torch.tensor([[[[1.0, 2.0], [3.0, 4.0]]]])          # [1, 1, 2, 2] -> flattened [1, 2, 3, 4]


def test_epsilon_rule_by_hand():
    # R_i = x_i w_i / (z + eps sign z), z = 1 - 4 + 9 + 2 = 8, zennit's eps 1e-6; the relevance sums to ~1 (the seed)
    w = torch.tensor([1.0, -2.0, 3.0, 0.5])
    expected = (X.flatten() * w / (8 + 1e-6)).view(1, 1, 2, 2)
    got = ng.lrp(linear_model(), X, target=0, rule="epsilon", canonizers="none")
    assert torch.allclose(got, expected, atol=1e-7)
    assert abs(float(got.sum()) - 1.0) < 1e-6


def test_zplus_rule_by_hand():
    # only positive contributions: x w+ / sum(x w+): class 1 -> w+ = [0, 1, 1, 0], z+ = 2 + 3 = 5
    got = ng.lrp(linear_model(), X, target=1, rule="zplus", canonizers="none")
    assert torch.allclose(got, torch.tensor([[[[0.0, 2 / 5], [3 / 5, 0.0]]]]), atol=1e-6)


def test_flat_rule_spreads_relevance_over_the_receptive_field():
    # the flat rule ignores weights and inputs: each of the 4 inputs receives 1/4 of the output's relevance
    got = ng.lrp(linear_model(), X, target=0, rule="flat", canonizers="none")
    assert torch.allclose(got, torch.full((1, 1, 2, 2), 0.25), atol=1e-6)


@pytest.mark.parametrize("rule", ["epsilon_plus_flat", "epsilon_alpha2_beta1", "epsilon_gamma_box"])
def test_equals_zennit_on_resnet18(rule):
    import torchvision
    from zennit import composites
    from zennit.attribution import Gradient
    from zennit.torchvision import ResNetCanonizer

    torch.manual_seed(0)
    model = torchvision.models.resnet18(num_classes=5).eval()
    x = torch.rand(2, 3, 16, 16, generator=torch.Generator().manual_seed(1))
    kw = {"low": torch.zeros_like(x), "high": torch.ones_like(x)} if rule == "epsilon_gamma_box" else {}
    composite = composites.COMPOSITES[rule](canonizers=[ResNetCanonizer()], **kw)
    with Gradient(model=model, composite=composite) as attributor:
        _, theirs = attributor(x, torch.eye(5)[[1, 3]])
    ours = ng.lrp(model, x, target=[1, 3], rule=rule)
    assert float(theirs.abs().max()) > 0
    assert torch.allclose(ours, theirs, atol=1e-6 * float(theirs.abs().max()))


def test_batch_norm_is_merged_and_the_model_left_untouched(snapshot):
    torch.manual_seed(0)
    model = nn.Sequential(nn.Conv2d(3, 4, 3, padding=1), nn.BatchNorm2d(4), nn.ReLU(), nn.AdaptiveAvgPool2d(1),
                          nn.Flatten(), nn.Linear(4, 3))
    with torch.no_grad():
        model[1].running_mean.uniform_(-1, 1)
        model[1].running_var.uniform_(0.5, 2)
    model.train()
    x = torch.rand(2, 3, 8, 8)
    snap = snapshot(model)
    merged = ng.lrp(model, x, target=[0, 2], rule="epsilon", canonizers="auto")
    snap.assert_unchanged()
    raw = ng.lrp(model, x, target=[0, 2], rule="epsilon", canonizers="none")
    snap.assert_unchanged()
    assert not torch.allclose(merged, raw)           # the canonizer changed the propagation
    batch = ng.lrp(model, x, target=[0, 2], rule="epsilon")
    singles = torch.cat([ng.lrp(model, x[i:i + 1], target=[c], rule="epsilon") for i, c in enumerate([0, 2])])
    assert torch.allclose(batch, singles, atol=1e-6)
    with pytest.raises(ng.UserError, match="out of range"):
        ng.lrp(model, x, target=ng.Class([7, 7]))
    snap.assert_unchanged()


def test_top_k_and_bad_arguments():
    model = linear_model()
    two = ng.lrp(model, X, target=ng.TopClass(2), rule="epsilon", canonizers="none")
    assert two.shape == (1, 2, 1, 2, 2)
    assert torch.allclose(two[:, 0], ng.lrp(model, X, target=0, rule="epsilon", canonizers="none"))  # class 0 is top
    with pytest.raises(ng.UserError, match="unknown LRP rule .*epsilon_plus_flat"):
        ng.lrp(model, X, rule="epsilon_plus_flot")
    with pytest.raises(ng.UserError, match="unknown canonizers"):
        ng.lrp(model, X, canonizers="densenet")
    assert ng.methods.METHODS["lrp"] is ng.lrp

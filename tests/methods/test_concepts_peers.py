"""ng.concepts equals zennit-crp's CondAttribution with a plain gradient (no composite) on the same model.

Skipped, naming the package, when zennit-crp is not installed (it is in the ``bench`` extra, not
the test extra). Conventions that differ, set on the peer's side:

- CRP starts the backward pass from the logit's value (``init_rel`` None); ``init_rel=1`` starts
  it from 1, the gradient, as ours does;
- CRP's heatmap is the input's gradient summed over colours; ours is input times gradient, so the
  peer's documented ``heatmap_modifier`` is overridden to multiply by the input first;
- CRP's ``ChannelConcept.attribute`` normalises by the sum of absolute relevances
  (``abs_norm=True``); ours divides by the signed sum, so the raw sums (``abs_norm=False``) are
  compared, and our shares against them divided by their sum.

pytorch-grad-cam's Deep Feature Factorization is not compared: it factorizes the activations of a
batch by NMF into concepts that are mixtures of channels, with no target gradient, so it is not the
same quantity as a channel's relevance or conditional map (``ng.dff`` compares with it).
"""
from __future__ import annotations

import pytest
import torch
import torch.nn as nn

import netgaze as ng

crp_attribution = pytest.importorskip("crp.attribution", reason="zennit-crp is not installed (pip install zennit-crp)")
from crp.concepts import ChannelConcept  # noqa: E402


class Net(nn.Module):
    """Conv stages with biases, max pooling and a global-average-pool head; ``features`` is explained."""

    def __init__(self):
        super().__init__()
        torch.manual_seed(0)
        self.stem = nn.Sequential(nn.Conv2d(3, 6, 3, padding=1), nn.ReLU(), nn.MaxPool2d(2))
        self.features = nn.Conv2d(6, 8, 3, padding=1)
        self.act = nn.ReLU()
        self.fc = nn.Linear(8, 5)

    def forward(self, x):
        return self.fc(self.act(self.features(self.stem(x))).mean((2, 3)))


class InputTimesGradient(crp_attribution.CondAttribution):
    def heatmap_modifier(self, data, on_device=None):
        return (data * data.grad).detach().sum(1)


@pytest.fixture
def setup():
    model = Net().eval()
    x = torch.rand(3, 3, 16, 16, generator=torch.Generator().manual_seed(1))
    classes = model(x).argmax(1).tolist()
    return model, x, classes


def assert_close(ours, theirs, rel=1e-5):
    ours, theirs = ours.detach().double(), theirs.detach().double()
    scale = float(theirs.abs().max())
    assert scale > 0
    assert float((ours - theirs).abs().max()) <= rel * scale, float((ours - theirs).abs().max()) / scale


def test_relevance_and_shares_equal_crp(setup):
    model, x, classes = setup
    found = ng.concepts(model, x, layer="features", k=8)
    peer = crp_attribution.CondAttribution(model)
    data = x.clone().requires_grad_(True)
    attr = peer(data, [{"y": [c]} for c in classes], record_layer=["features"], init_rel=1)
    # CRP's relevance at the layer with no composite is the gradient; times the activation it recorded,
    # summed per channel by its own ChannelConcept, is our relevance
    theirs = ChannelConcept().attribute(attr.activations["features"] * attr.relevances["features"], abs_norm=False)
    assert_close(found.relevance, theirs.gather(1, found.channels))
    assert_close(found.shares, (theirs / theirs.sum(1, keepdim=True)).gather(1, found.channels))
    model.requires_grad_(True)          # CondAttribution froze the parameters (no_param_grad=True)


def test_gradient_maps_equal_crp_conditional_heatmaps(setup):
    model, x, classes = setup
    found = ng.concepts(model, x, layer="features", k=3, maps="gradient")
    peer = InputTimesGradient(model)
    for b, c in enumerate(classes):
        data = x[b:b + 1].clone().requires_grad_(True)
        conditions = [{"features": [int(ch)], "y": [c]} for ch in found.channels[b]]
        attr = peer(data, conditions, init_rel=1)              # one copy of the picture per condition
        assert_close(found.maps[b], attr.heatmap)
    model.requires_grad_(True)


def test_relevance_maps_equal_crp_started_at_the_layer(setup):
    model, x, classes = setup
    found = ng.concepts(model, x, layer="features", k=3, maps="relevance")
    with ng.Recorder(model, ["features"]) as rec:
        out = rec.forward(x)
        grads = rec.gradients(ng.Class(classes)(out))["features"]
        relevance_map = (rec.activations["features"] * grads).detach()           # A * G, [B, C, h, w]
    peer = InputTimesGradient(model)
    for b in range(len(x)):
        data = x[b:b + 1].clone().requires_grad_(True)
        channels = [int(ch) for ch in found.channels[b]]
        start = relevance_map[b:b + 1].repeat(len(channels), 1, 1, 1)
        for i, ch in enumerate(channels):                                  # kept on each condition's channel
            keep = torch.zeros_like(start[i])
            keep[ch] = 1
            start[i] *= keep
        attr = peer(data, [{"features": [ch]} for ch in channels], start_layer="features", init_rel=start)
        assert_close(found.maps[b], attr.heatmap)
    model.requires_grad_(True)

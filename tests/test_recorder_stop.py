"""Recorder(stop=True): the forward pass ends after the deepest recorded layer.

Activations and gradients must equal those of a full pass, the layers after the deepest
recorded one must not run, and the model must be left as found (also in train mode,
with in-place ReLUs, and inside no_grad)."""
from __future__ import annotations

import pytest
import torch
import torch.nn as nn

from netgaze.core.recorder import Recorder, RecorderError


class _Counter(nn.Module):
    def __init__(self):
        super().__init__()
        self.calls = 0

    def forward(self, x):
        self.calls += 1
        return x


def _model() -> nn.Sequential:
    torch.manual_seed(0)
    return nn.Sequential(nn.Conv2d(3, 8, 3, padding=1), nn.BatchNorm2d(8), nn.ReLU(inplace=True),
                         nn.Conv2d(8, 8, 3, padding=1), nn.ReLU(inplace=True), _Counter(),
                         nn.Flatten(), nn.Dropout(0.5), nn.Linear(8 * 6 * 6, 4)).train()


@pytest.mark.parametrize("layers", [["3"], ["0", "3"], ["3", "0"]])
def test_stop_gives_the_same_activations_and_gradients(layers, snapshot):
    model = _model()
    snap = snapshot(model)
    x = torch.randn(2, 3, 6, 6)
    results = {}
    for stop in (False, True):
        with Recorder(model, layers, input_grad=True, stop=stop) as rec:
            out = rec.forward(x)
            assert (out is None) == stop
            acts = {n: a.detach().clone() for n, a in rec.activations.items()}
            score = (rec.activations["3"] ** 2).mean((1, 2, 3)) + rec.activations[layers[0]][:, 1].mean((1, 2))
            grads = rec.gradients(score)
        results[stop] = acts, grads
        snap.assert_unchanged()
    (acts_full, grads_full), (acts_stop, grads_stop) = results[False], results[True]
    assert acts_full.keys() == acts_stop.keys() and grads_full.keys() == grads_stop.keys()
    for name in acts_full:
        assert torch.equal(acts_full[name], acts_stop[name])
    for name in grads_full:
        assert torch.equal(grads_full[name], grads_stop[name]), name
    assert float(grads_full["input"].abs().sum()) > 0


def test_stop_skips_later_layers_and_restores_grad_mode(snapshot):
    model = _model()
    snap = snapshot(model)
    with torch.no_grad():
        with Recorder(model, ["3"], stop=True) as rec:
            assert rec.forward(torch.randn(1, 3, 6, 6)) is None
            assert rec.activations["3"].requires_grad
        assert not torch.is_grad_enabled()
    assert model[5].calls == 0
    with Recorder(model, ["3"], stop=False, grads=False) as rec:
        assert rec.forward(torch.randn(1, 3, 6, 6)).shape == (1, 4)
    assert model[5].calls == 1
    with Recorder(model, ["3"], stop=True, grads=False) as rec:
        assert rec.forward(torch.randn(1, 3, 6, 6)) is None
    assert model[5].calls == 1
    snap.assert_unchanged()


def test_stop_needs_a_layer():
    with pytest.raises(RecorderError, match="at least one layer"):
        Recorder(_model(), [], stop=True)

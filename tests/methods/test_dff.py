"""ng.dff: the factorization by hand, the head's concept scores, and equal to pytorch-grad-cam's
DeepFeatureFactorization on resnet18."""
from __future__ import annotations

import pytest
import torch
import torch.nn as nn

import netgaze as ng


class Probe(nn.Module):
    def __init__(self):
        super().__init__()
        self.feat = nn.Identity()
        self.fc = nn.Linear(3, 2, bias=False)
        with torch.no_grad():
            self.fc.weight.copy_(torch.tensor([[1.0, 0.0, 0.0], [0.0, 1.0, 1.0]]))

    def forward(self, x):
        return self.fc(self.feat(x).mean((2, 3)))


def test_a_rank_one_batch_is_one_exact_concept():
    # A[b, c, y, x] = v_c * p_b(y, x) with v, p >= 0 and one position at 0 in every channel (offset 0):
    # one NMF component reproduces it exactly, the concept is v up to a scale moved into the maps.
    v = torch.tensor([2.0, 1.0, 0.5])
    p = torch.rand(2, 1, 4, 4, generator=torch.Generator().manual_seed(0))
    p[:, :, 0, 0] = 0
    x = v[None, :, None, None] * p
    result = ng.dff(Probe(), x, "feat", n_components=1, head=Probe().fc)
    concept, maps = result.concepts[:, 0], result.factors[:, 0]
    assert result.layer == "feat" and result.maps.shape == (2, 1, 4, 4)
    scale = float(concept[0] / v[0])
    assert torch.allclose(concept, v * scale, rtol=1e-3)
    assert torch.allclose(maps * scale, p[:, 0], atol=1e-3)
    assert torch.allclose(result.scores, (torch.tensor([[1.0, 0.0, 0.0], [0.0, 1.0, 1.0]]) @ concept)[None], atol=1e-5)


def test_bad_arguments():
    x = torch.rand(1, 3, 4, 4)
    with pytest.raises(ng.UserError, match="n_components"):
        ng.dff(Probe(), x, "feat", n_components=0)
    with pytest.raises(ng.UserError, match="one layer"):
        ng.dff(Probe(), x, ["feat", "feat"])


def test_equal_to_pytorch_grad_cam(snapshot):
    pgc = pytest.importorskip("pytorch_grad_cam", reason="pytorch-grad-cam is not installed (pip install grad-cam)")
    import numpy as np
    import torchvision

    torch.manual_seed(0)
    model = torchvision.models.resnet18(num_classes=10).eval()
    x = torch.rand(2, 3, 64, 64, generator=torch.Generator().manual_seed(1))
    snap = snapshot(model)
    ours = ng.dff(model, x, "layer4", n_components=3, head=model.fc)
    snap.assert_unchanged()
    concepts, maps, scores = pgc.DeepFeatureFactorization(model=model, target_layer=model.layer4,
                                                          computation_on_concepts=model.fc)(x, n_components=3)
    assert np.abs(ours.concepts.numpy() - concepts).max() <= 1e-5 * np.abs(concepts).max()
    assert np.abs(ours.scores.numpy() - scores).max() <= 1e-5 * np.abs(scores).max()
    f = ours.factors - ours.factors.flatten(2).amin(2)[..., None, None]     # the peer scales each map, then resizes
    f = f / (1e-7 + f.flatten(2).amax(2)[..., None, None])
    scaled = torch.nn.functional.interpolate(f, size=(64, 64), mode="bilinear", align_corners=False)
    assert float((scaled - torch.from_numpy(np.stack(maps))).abs().max()) <= 1e-5

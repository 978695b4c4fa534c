"""FEM, KPCA-CAM, Finer-CAM, ShapleyCAM and FullGrad equal pytorch-grad-cam on a tiny model.

Skipped, naming the package, when pytorch-grad-cam is not installed (the ``bench`` extra);
the numbers are also tested by hand in test_cam_variants_more.py. pytorch-grad-cam min-max
scales every map (twice for the layer methods), so ours are scaled alike before comparing.
"""
from __future__ import annotations

import sys
from pathlib import Path

import pytest
import torch
import torch.nn as nn

import netgaze as ng

sys.path.insert(0, str(Path(__file__).parent))
from test_parity_peers import Tiny, assert_close, normalise  # noqa: E402

pgc = pytest.importorskip("pytorch_grad_cam", reason="pytorch-grad-cam is not installed (pip install grad-cam)")


class TinyBN(nn.Module):
    """Convolutions with biases and batch norms with set statistics: every FullGrad bias term is used."""

    def __init__(self):
        super().__init__()
        torch.manual_seed(0)
        self.features = nn.Sequential(nn.Conv2d(3, 8, 3, padding=1), nn.BatchNorm2d(8), nn.ReLU(),
                                      nn.Conv2d(8, 8, 3, padding=1, stride=2), nn.BatchNorm2d(8), nn.GELU())
        for m in self.features:
            if isinstance(m, nn.BatchNorm2d):
                with torch.no_grad():
                    m.running_mean.uniform_(-0.5, 0.5)
                    m.running_var.uniform_(0.5, 2.0)
                    m.weight.uniform_(0.5, 1.5)
                    m.bias.uniform_(-0.5, 0.5)
        self.pool = nn.AdaptiveAvgPool2d(1)
        self.fc = nn.Linear(8, 5)

    def forward(self, x):
        return self.fc(torch.flatten(self.pool(self.features(x)), 1))


@pytest.fixture
def setup():
    x = torch.rand(2, 3, 16, 16, generator=torch.Generator().manual_seed(1))
    return x, [1, 3]


def _targets(classes):
    from pytorch_grad_cam.utils.model_targets import ClassifierOutputTarget

    return [ClassifierOutputTarget(c) for c in classes]


@pytest.mark.parametrize("name", ["fem", "kpca_cam", "shapleycam"])
@pytest.mark.parametrize("model_class", [Tiny, TinyBN])
def test_layer_methods_equal_pytorch_grad_cam(name, model_class, setup):
    x, classes = setup
    model = model_class().eval()
    peer_class = {"fem": pgc.FEM, "kpca_cam": pgc.KPCA_CAM, "shapleycam": pgc.ShapleyCAM}[name]
    with peer_class(model=model, target_layers=[model.features]) as peer:
        theirs = torch.from_numpy(peer(input_tensor=x, targets=_targets(classes)))
    ours = normalise(getattr(ng, name)(model, x, "features", target=classes))
    assert float(theirs.max()) > 0
    # the peer runs scikit-learn's kernel PCA on float32 activations; ours is float64 (equal to 1e-8 to
    # scikit-learn in float64: test_cam_variants_more.py)
    assert_close(ours, theirs, rel=2e-4 if name == "kpca_cam" else 1e-5)


def test_shapleycam_differs_from_gradcam_where_the_network_is_curved(setup):
    x, classes = setup
    model = TinyBN().eval()                               # a GELU after the explained layer's input
    shapley = ng.shapleycam(model, x, "features.3", target=classes)
    grad = ng.gradcam(model, x, "features.3", target=classes)
    assert float((shapley - grad).abs().max()) > 1e-3 * float(grad.abs().max())


@pytest.mark.parametrize("model_class, main, alpha", [(Tiny, 4, 1.0), (TinyBN, None, 1.0), (TinyBN, None, 0.5)])
def test_finercam_equals_pytorch_grad_cam(model_class, main, alpha, setup):
    x, _ = setup
    model = model_class().eval()
    peer = pgc.FinerCAM(model, [model.features])
    theirs = torch.from_numpy(peer(input_tensor=x, target_idx=main, alpha=alpha))
    assert_close(normalise(ng.finercam(model, x, "features", target=main, alpha=alpha)), theirs)


@pytest.mark.parametrize("model_class", [Tiny, TinyBN])
def test_fullgrad_equals_pytorch_grad_cam(model_class, setup):
    x, classes = setup
    model = model_class().eval()
    with pgc.FullGrad(model=model, target_layers=[]) as peer:
        theirs = torch.from_numpy(peer(input_tensor=x, targets=_targets(classes)))
    ours = ng.fullgrad(model, x, target=classes)
    shifted = ours - ours.flatten(1).amin(1)[:, None, None]
    assert_close(shifted / (1e-7 + shifted.flatten(1).amax(1)[:, None, None]), theirs)

"""eigen_smooth (every gradient CAM) and ng.augmented (test-time augmentation for any method):
by hand, and equal to pytorch-grad-cam's ``eigen_smooth`` / ``aug_smooth`` when it is installed."""
from __future__ import annotations

import sys
from pathlib import Path

import pytest
import torch
import torch.nn as nn

import netgaze as ng

sys.path.insert(0, str(Path(__file__).parent))
from test_cam_variants_more import Probe  # noqa: E402

SMOOTHED = ["gradcam", "gradcam_pp", "hirescam", "layercam", "xgradcam", "gradcam_elementwise"]


def test_eigen_smooth_of_rank_one_terms_by_hand():
    # A_c = a_c p (rank one); the head reads channel means, so every method's terms are v_c p with
    # v_c = (its channel weight) * a_c: the principal component is |v| (p - mean p), sign fixed by sum(v) > 0.
    p = torch.tensor([[1.0, 5.0, 2.0], [0.0, 3.0, 1.0]])
    a = torch.tensor([1.0, 2.0])
    x = (a[:, None, None] * p)[None]                              # [1, 2, 2, 3]
    head = nn.Linear(2, 1, bias=False)
    with torch.no_grad():
        head.weight.copy_(torch.tensor([[3.0, 1.0]]))
    model = Probe(head=head)
    v = torch.tensor([3.0, 1.0]) / 6 * a                          # Grad-CAM: mean gradient W / hw
    expected = (v.norm() * (p - p.mean())).clamp(min=0)[None]
    assert torch.allclose(ng.gradcam(model, x, "feat", target=0, eigen_smooth=True), expected, atol=1e-6)
    v = torch.tensor([3.0, 1.0]) / 6 * a                          # HiResCAM: g * A, g = W / hw everywhere
    assert torch.allclose(ng.hirescam(model, x, "feat", target=0, eigen_smooth=True), expected, atol=1e-6)
    # without smoothing: the channel sum
    assert torch.allclose(ng.gradcam(model, x, "feat", target=0), (v.sum() * p)[None].clamp(min=0), atol=1e-6)


@pytest.mark.parametrize("name", SMOOTHED)
def test_eigen_smooth_keeps_batches_and_many_layers(name):
    from test_cam_variants import tiny_net

    model = tiny_net()
    x = torch.rand(3, 3, 8, 8, generator=torch.Generator().manual_seed(0))
    method = getattr(ng, name)
    batch = method(model, x, "3", target=[0, 2, 4], eigen_smooth=True)
    singles = torch.cat([method(model, x[i:i + 1], "3", target=[c], eigen_smooth=True) for i, c in enumerate([0, 2, 4])])
    assert torch.allclose(batch, singles, atol=1e-5 * float(singles.abs().max()) + 1e-9)
    together = method(model, x, ["1", "3"], target=[0, 2, 4], eigen_smooth=True)
    assert torch.allclose(together["3"], batch, atol=1e-6)
    assert not torch.allclose(batch, method(model, x, "3", target=[0, 2, 4]))



def test_augmented_by_hand():
    # a "method" that returns the first colour channel: each copy, flipped back, is factor * x[:, 0]
    def first_channel(model, x, target=None):
        return x[:, 0]

    x = torch.rand(2, 3, 4, 5, generator=torch.Generator().manual_seed(1))
    got = ng.augmented(first_channel, None, x)
    assert torch.allclose(got, x[:, 0] * (0.9 + 1.0 + 1.1) / 3, atol=1e-6)
    got = ng.augmented(first_channel, None, x, flips=False, factors=(2.0,))
    assert torch.allclose(got, 2 * x[:, 0])

    def left_half_mark(model, x, target=None):     # a method that is not flip-equivariant
        out = torch.zeros_like(x[:, 0])
        out[..., :2] = 1.0
        return {"a": out}

    got = ng.augmented(left_half_mark, None, x, factors=(1.0,))["a"]
    assert torch.allclose(got[0, 0], torch.tensor([0.5, 0.5, 0.0, 0.5, 0.5]))   # the flipped copies' marks come back mirrored
    with pytest.raises(ng.UserError, match="factors must be positive"):
        ng.augmented(first_channel, None, x, factors=(0.0,))


def test_augmented_explains_the_unaugmented_top_class_on_every_copy():
    from test_cam_variants import tiny_net

    model = tiny_net()
    x = torch.rand(2, 3, 8, 8, generator=torch.Generator().manual_seed(2))
    top = model(x).argmax(1).tolist()
    assert torch.allclose(ng.augmented(ng.gradcam, model, x, "3", target=None),
                          ng.augmented(ng.gradcam, model, x, "3", target=top), atol=1e-7)


def _scaled(maps):
    for _ in range(2):
        maps = maps - maps.flatten(1).amin(1)[:, None, None]
        maps = maps / (1e-7 + maps.flatten(1).amax(1)[:, None, None])
    return maps


@pytest.mark.parametrize("name", ["gradcam", "hirescam", "layercam", "xgradcam", "gradcam_elementwise"])
def test_equal_to_pytorch_grad_cam(name, monkeypatch):
    pgc = pytest.importorskip("pytorch_grad_cam", reason="pytorch-grad-cam is not installed (pip install grad-cam)")
    from pytorch_grad_cam.utils.model_targets import ClassifierOutputTarget
    from test_parity_peers import Tiny

    import importlib

    eigencam = importlib.import_module("netgaze.methods.eigencam")

    model = Tiny().eval()
    x = torch.rand(2, 3, 16, 16, generator=torch.Generator().manual_seed(1))
    peer_class = {"gradcam": pgc.GradCAM, "hirescam": pgc.HiResCAM, "layercam": pgc.LayerCAM,
                  "xgradcam": pgc.XGradCAM, "gradcam_elementwise": pgc.GradCAMElementWise}[name]
    targets = [ClassifierOutputTarget(c) for c in (1, 3)]
    with peer_class(model=model, target_layers=[model.features]) as peer:
        eigen = torch.from_numpy(peer(input_tensor=x, targets=targets, eigen_smooth=True))
        augmented = torch.from_numpy(peer(input_tensor=x, targets=targets, aug_smooth=True))
    method = getattr(ng, name)
    ours = _scaled(method(model, x, "features", target=[1, 3], eigen_smooth=True))
    # the peer leaves the component's sign to LAPACK: match it picture by picture
    original = eigencam.principal_projection
    monkeypatch.setattr(eigencam, "principal_projection", lambda maps: -original(maps))
    flipped = _scaled(method(model, x, "features", target=[1, 3], eigen_smooth=True))
    for b in range(2):
        best = min(float((ours[b] - eigen[b]).abs().max()), float((flipped[b] - eigen[b]).abs().max()))
        assert best <= 1e-5, (name, b, best)
    monkeypatch.undo()
    # aug_smooth averages the peer's scaled maps of the 6 copies
    mine = ng.augmented(lambda *a, **k: _scaled(method(*a, **k)), model, x, "features", target=[1, 3])
    assert float((mine - augmented).abs().max()) <= 1e-5

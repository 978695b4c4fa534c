"""The new methods equal their peers (pytorch-grad-cam, torchcam, Captum) on a tiny model.

Each test is skipped, naming the package, when that peer is not installed (they are the
``bench`` extra, not the test extra): the numbers of every method are also tested by hand
in test_cam_variants.py and test_input_methods_new.py. Conventions as in
benchmarks/parity.py: pytorch-grad-cam's maps are min-max normalised, so ours are
normalised alike; torchcam's raw maps (``normalized=False``) are upsampled bilinearly like
ours; Captum's attributions are compared raw.
"""
from __future__ import annotations

import pytest
import torch
import torch.nn as nn
import torch.nn.functional as F

import netgaze as ng

REL = 1e-5


class Tiny(nn.Module):
    def __init__(self):
        super().__init__()
        torch.manual_seed(0)
        self.features = nn.Sequential(nn.Conv2d(3, 8, 3, padding=1), nn.ReLU(inplace=True),
                                      nn.Conv2d(8, 8, 3, padding=1, stride=2), nn.ReLU())
        self.pool = nn.AdaptiveAvgPool2d(1)
        self.fc = nn.Linear(8, 5)

    def forward(self, x):
        return self.fc(torch.flatten(self.pool(self.features(x)), 1))


@pytest.fixture
def setup():
    model = Tiny().eval()
    x = torch.rand(2, 3, 16, 16, generator=torch.Generator().manual_seed(1))
    return model, x, [1, 3]


def normalise(maps: torch.Tensor) -> torch.Tensor:
    """pytorch-grad-cam's scale_cam_image, applied twice as it does (per layer, then across layers)."""
    for _ in range(2):
        shifted = maps - maps.flatten(1).amin(1)[:, None, None]
        maps = shifted / (1e-7 + shifted.flatten(1).amax(1)[:, None, None])
    return maps


def up(maps: torch.Tensor, size) -> torch.Tensor:
    return F.interpolate(maps[:, None], size=tuple(size), mode="bilinear", align_corners=False)[:, 0]


def assert_close(ours: torch.Tensor, theirs: torch.Tensor, rel: float = REL) -> None:
    ours, theirs = ours.detach().double(), theirs.detach().double()
    scale = float(theirs.abs().max())
    assert scale > 0
    assert float((ours - theirs).abs().max()) <= rel * scale, float((ours - theirs).abs().max()) / scale


@pytest.mark.parametrize("name", ["eigencam", "eigen_gradcam", "gradcam_elementwise", "ablationcam"])
def test_pytorch_grad_cam(name, setup):
    pgc = pytest.importorskip("pytorch_grad_cam", reason="pytorch-grad-cam is not installed (pip install grad-cam)")
    from pytorch_grad_cam.utils.model_targets import ClassifierOutputTarget

    model, x, classes = setup
    peer_class = {"eigencam": pgc.EigenCAM, "eigen_gradcam": pgc.EigenGradCAM,
                  "gradcam_elementwise": pgc.GradCAMElementWise, "ablationcam": pgc.AblationCAM}[name]
    with peer_class(model=model, target_layers=[model.features]) as peer:
        theirs = torch.from_numpy(peer(input_tensor=x, targets=[ClassifierOutputTarget(c) for c in classes]))
    ours = normalise(getattr(ng, name)(model, x, "features", target=classes))
    if name.startswith("eigen"):
        # The peer leaves the component's sign to LAPACK; ours is fixed. Either sign must match per picture.
        from netgaze.methods.eigencam import principal_projection

        with ng.Recorder(model, ["features"]) as rec:
            out = rec.forward(x)
            acts = rec.activations["features"]
            grads = rec.gradients(ng.Class(classes)(out))["features"]
            maps = acts.detach() if name == "eigencam" else (acts * grads).detach()
        flipped = normalise(up((-principal_projection(maps)).clamp(min=0), x.shape[-2:]))
        for i in range(len(x)):
            same, other = (ours[i] - theirs[i]).abs().max(), (flipped[i] - theirs[i]).abs().max()
            assert_close(ours[i:i + 1] if same <= other else flipped[i:i + 1], theirs[i:i + 1], 1e-5)
        return
    assert_close(ours, theirs)


def torchcam_raw(extractor_class, model, x, classes, relu: bool = False, **kw) -> torch.Tensor:
    with extractor_class(model, "features", input_shape=tuple(x.shape[1:]), **kw) as extractor:
        scores = model(x)
        maps = extractor(class_idx=list(classes), scores=scores, normalized=False)[0].detach()
    return up(maps.clamp(min=0) if relu else maps, x.shape[-2:])


def test_torchcam_cam_iscam_sscam(setup):
    methods = pytest.importorskip("torchcam.methods", reason="torchcam is not installed (pip install torchcam)")
    model, x, classes = setup
    # torchcam's CAM is not ReLU'd (its docstring's formula is; ours is, as pytorch-grad-cam's)
    assert torchcam_raw(methods.CAM, model, x, classes, fc_layer="fc").min() < 0
    theirs = torchcam_raw(methods.CAM, model, x, classes, relu=True, fc_layer="fc")
    assert_close(ng.cam(model, x, "features", target=classes), theirs)
    # Score-CAM masks: torchcam min-max scales each channel on the layer's grid, then upsamples; we
    # (the paper, pytorch-grad-cam) scale the upsampled map. The two agree when every channel's
    # extremes lie on the grid's border: on a 2x2 grid.
    x = torch.rand(2, 3, 4, 4, generator=torch.Generator().manual_seed(2))
    assert_close(ng.iscam(model, x, "features", target=classes, n=3),
                 torchcam_raw(methods.ISCAM, model, x, classes, num_samples=3))
    one = x[:1]    # a batch of one: torchcam's noise draw for the batch is ours
    torch.manual_seed(5)
    theirs = torchcam_raw(methods.SSCAM, model, one, classes[:1], num_samples=3, std=2.0)
    assert_close(ng.sscam(model, one, "features", target=classes[:1], n=3, sigma=2.0, seed=5), theirs)


def test_torchcam_smoothgradcam_pp_differs_by_its_named_conventions_only(setup):
    # torchcam departs from the paper three ways (see ng.smoothgradcam_pp): relu of the LAST noisy
    # copy's gradient, sum(A * mean g^3) in alpha's denominator, the last copy's activations. Rebuilt
    # on ng.Recorder with those conventions and the same noise, it equals torchcam; ours differs.
    methods = pytest.importorskip("torchcam.methods", reason="torchcam is not installed (pip install torchcam)")
    model, x, classes = setup
    one, std, n = x[:1], 0.3, 3
    torch.manual_seed(7)
    theirs = torchcam_raw(methods.SmoothGradCAMpp, model, one, classes[:1], num_samples=n, std=std)
    g = torch.Generator().manual_seed(7)
    g2 = g3 = 0
    with ng.Recorder(model, ["features"]) as rec:
        rec.forward(one)
        clean = rec.activations["features"].detach()
        for _ in range(n):
            out = rec.forward(one + torch.randn(one.shape, generator=g) * std)
            grad = rec.gradients(ng.Class(classes[:1])(out))["features"]
            g2, g3 = g2 + grad.pow(2) / n, g3 + grad.pow(3) / n
            last = rec.activations["features"].detach()
    alpha = g2 / (2 * g2 + (g3 * clean).flatten(2).sum(-1)[..., None, None] + 1e-8)
    weights = (alpha * grad.clamp(min=0)).flatten(2).sum(-1)
    rebuilt = up((weights[..., None, None] * last).sum(1).clamp(min=0), one.shape[-2:])
    assert_close(rebuilt, theirs, 1e-5)
    sigma = std / float(one.max() - one.min())
    ours = ng.smoothgradcam_pp(model, one, "features", target=classes[:1], n=n, sigma=sigma,
                               seed=7)
    assert float((ours - theirs).abs().max()) > 1e-3 * float(theirs.abs().max())


def test_captum(setup):
    attr = pytest.importorskip("captum.attr", reason="captum is not installed (pip install captum)")
    model, x, classes = setup
    xs = x.clone().requires_grad_()
    theirs = attr.InputXGradient(model).attribute(xs, target=classes)
    assert_close(ng.input_x_gradient(model, x, target=classes), theirs)
    assert_close(ng.deconvolution(model, x, target=classes), attr.Deconvolution(model).attribute(xs, target=classes))
    window, strides = (3, 5, 5), (1, 3, 2)
    theirs = attr.Occlusion(model).attribute(x, sliding_window_shapes=window, strides=strides, baselines=0.25,
                                             target=classes, perturbations_per_eval=8)
    assert_close(ng.occlusion(model, x, classes, window=window, strides=strides, baseline=0.25), theirs)
    one = x[:1]
    for kind in ("smoothgrad", "smoothgrad_sq", "vargrad"):
        torch.manual_seed(3)
        theirs = attr.NoiseTunnel(attr.Saliency(model)).attribute(one.clone().requires_grad_(), nt_type=kind,
                                                                  nt_samples=6, stdevs=0.1, target=classes[:1],
                                                                  abs=False)
        ours = ng.smoothgrad(model, one, target=classes[:1], n=6, sigma=0.1 / float(one.max() - one.min()),
                             kind=kind, random_state=3)
        assert_close(ours, theirs, 1e-5)

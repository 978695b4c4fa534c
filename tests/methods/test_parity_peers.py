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


def _captum_per_picture(explainer, x, classes, **kw) -> torch.Tensor:
    """Captum's Lime / KernelShap one picture at a time (its batches fit one surrogate per picture too)."""
    return torch.cat([explainer.attribute(x[i:i + 1], target=classes[i], perturbations_per_eval=64, **kw)
                      for i in range(len(x))])


def test_captum_feature_ablation_kernel_shap_lime(setup, one_thread):
    attr = pytest.importorskip("captum.attr", reason="captum is not installed (pip install captum)")
    from captum._utils.models.linear_model import SkLearnLinearRegression
    from netgaze.methods.feature_masks import grid_mask
    from netgaze.methods.kernel_shap import shapley_coalitions

    model, x, classes = setup
    mask = grid_mask((16, 16), 3)[None, None]                       # 9 superpixels
    theirs = attr.FeatureAblation(model).attribute(x, target=classes, baselines=0.2, feature_mask=mask,
                                                   perturbations_per_eval=16)
    assert_close(ng.feature_ablation(model, x, classes, grid=3, baseline=0.2), theirs)
    # all 2^4 coalitions with the Shapley kernel: the exact Shapley values (Captum's ShapleyValues)
    theirs = attr.ShapleyValues(model).attribute(x, target=classes, baselines=0.2, perturbations_per_eval=16,
                                                 feature_mask=grid_mask((16, 16), 2)[None, None])
    assert_close(ng.kernel_shap(model, x, classes, grid=2, baseline=0.2, n=16), theirs)
    # sampled: the same coalitions given to both (Captum draws from torch's global stream, we from a seeded one)
    coalitions, _ = shapley_coalitions(9, 40, torch.Generator().manual_seed(0))

    def same(_inputs, **_kw):
        yield from (row[None] for row in coalitions)

    peer = attr.KernelShap(model)
    peer.perturb_func = same
    theirs = _captum_per_picture(peer, x, classes, baselines=0.2, feature_mask=mask, n_samples=len(coalitions))
    assert_close(ng.kernel_shap(model, x, classes, grid=3, baseline=0.2, coalitions=coalitions), theirs)
    # LIME: Captum's cosine kernel with its Lasso(alpha=0.01), and with least squares (our alpha=0)
    coalitions = (torch.rand(60, 9, generator=torch.Generator().manual_seed(1)) < 0.5).long()
    scaled = x * 50                                                 # scores large enough for the Lasso to keep some
    for alpha, surrogate in ((0.01, None), (0.0, SkLearnLinearRegression())):
        peer = attr.Lime(model, interpretable_model=surrogate, perturb_func=same)
        theirs = _captum_per_picture(peer, scaled, classes, baselines=0.2, feature_mask=mask,
                                     n_samples=len(coalitions))
        ours = ng.lime(model, scaled, classes, grid=3, baseline=0.2, coalitions=coalitions, alpha=alpha)
        assert_close(ours, theirs)
        assert (theirs == 0).any() == (alpha > 0)                  # the Lasso zeroes some superpixels


class PoolNet(nn.Module):
    """Max-pool right after a convolution (Captum's rule and ours agree there) and after a ReLU."""

    def __init__(self, relu_before_pool: bool = False):
        super().__init__()
        torch.manual_seed(0)
        first = [nn.Conv2d(3, 6, 3, padding=1)] + ([nn.ReLU()] if relu_before_pool else [])
        self.features = nn.Sequential(*first, nn.MaxPool2d(2), nn.Conv2d(6, 8, 3, padding=1), nn.ReLU(inplace=True),
                                      nn.Conv2d(8, 8, 3), nn.Tanh(), nn.AdaptiveAvgPool2d(1), nn.Flatten(),
                                      nn.Linear(8, 6), nn.Sigmoid(), nn.Linear(6, 5))

    def forward(self, x):
        return self.features(x)


def test_captum_deeplift_deeplift_shap_gradient_shap(setup, monkeypatch, one_thread):
    attr = pytest.importorskip("captum.attr", reason="captum is not installed (pip install captum)")
    import captum._utils.common as captum_common
    import captum.attr._core.gradient_shap as captum_gradient_shap
    from netgaze.methods.gradient_shap import draws

    _, x, classes = setup
    model = PoolNet().eval()
    base = torch.rand(3, 16, 16, generator=torch.Generator().manual_seed(4)) * 0.3
    theirs = attr.DeepLift(model).attribute(x.clone().requires_grad_(), target=classes,
                                            baselines=base.expand_as(x).contiguous())
    assert_close(ng.deeplift(model, x, classes, baseline=base), theirs)
    refs = torch.rand(4, 3, 16, 16, generator=torch.Generator().manual_seed(5))
    # in float64: the attributions are ~1e-4 after the sigmoid, float32 rounding alone is 5e-5 of that
    wide, x64, refs64 = PoolNet().eval().double(), x.double(), refs.double()
    theirs = attr.DeepLiftShap(wide).attribute(x64.clone().requires_grad_(), target=classes, baselines=refs64)
    assert_close(ng.deeplift_shap(wide, x64, classes, baselines=refs64, batch_size=3), theirs)
    # Convention: where a max-pool input does not change (|delta in| < eps, e.g. a ReLU's zeros before
    # the pool), Captum 0.9 uses the first picture's gradient for every picture (captum#1276), so its
    # sum misses score(x) - score(baseline); ours uses each picture's own and sums to it.
    model = PoolNet(relu_before_pool=True).eval()
    with torch.no_grad():
        difference = (model(x) - model(base[None]))[[0, 1], classes]
    theirs = attr.DeepLift(model).attribute(x.clone().requires_grad_(), target=classes,
                                            baselines=base.expand_as(x).contiguous())
    ours = ng.deeplift(model, x, classes, baseline=base)
    assert torch.allclose(ours.sum((1, 2, 3)), difference, rtol=1e-4, atol=1e-6)
    assert not torch.allclose(theirs.sum((1, 2, 3)).detach(), difference, rtol=1e-2)
    # GradientSHAP: Captum draws baselines and points from numpy's global stream; it is handed ours.
    model = setup[0]
    picks, alphas = draws(len(x), 5, len(refs), torch.Generator().manual_seed(0))

    class Draws:
        def choice(self, count, size):
            return picks.reshape(-1).numpy()

        def uniform(self, low, high, size):
            return alphas.reshape(-1).double().numpy()

    fake = type("numpy", (), {"random": Draws()})
    monkeypatch.setattr(captum_common, "np", fake)
    monkeypatch.setattr(captum_gradient_shap, "np", fake)
    theirs = attr.GradientShap(model).attribute(x, baselines=refs, target=classes, n_samples=5, stdevs=0.0)
    assert_close(ng.gradient_shap(model, x, classes, baselines=refs, n=5, batch_size=4), theirs)

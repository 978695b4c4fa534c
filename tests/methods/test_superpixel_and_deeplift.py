"""Feature ablation, KernelSHAP, LIME, DeepLift, DeepLiftShap and GradientSHAP on toys whose answers
are known by hand (a linear model), completeness identities, batches, and the model left as found."""
from __future__ import annotations

import itertools

import pytest
import torch
import torch.nn as nn

import netgaze as ng
from netgaze.methods.feature_masks import grid_mask


def linear_model(seed: int = 0) -> tuple[nn.Module, torch.Tensor]:
    """score_k = sum(w_k * x) + bias over [B, 2, 4, 4] pictures; returns the model and w [5, 2, 4, 4]."""
    torch.manual_seed(seed)
    model = nn.Sequential(nn.Flatten(), nn.Linear(32, 5)).eval()
    return model, model[1].weight.detach().view(5, 2, 4, 4)


def pictures(seed: int = 1, count: int = 2) -> torch.Tensor:
    return torch.rand(count, 2, 4, 4, generator=torch.Generator().manual_seed(seed))


def per_feature(values: torch.Tensor, ids: torch.Tensor) -> torch.Tensor:
    """[B, C, H, W] (ids [1, C or 1, H, W]) summed over each feature's elements -> [B, F], spread back to [B, C, H, W]."""
    flat = ids[0].expand(values.shape[1:]).reshape(-1)
    sums = torch.zeros(values.shape[0], int(flat.max()) + 1, dtype=values.dtype).index_add_(1, flat,
                                                                                            values.flatten(1))
    return sums[:, flat].view(values.shape)


CLASSES = [1, 3]


# -- the superpixel methods on a linear model: every one is w . (x - b) summed per feature ---------
@pytest.mark.parametrize("name, grid, options", [
    ("feature_ablation", 2, {}),
    ("kernel_shap", 2, dict(n=16)),             # all 2^4 coalitions
    ("kernel_shap", (2, 4), dict(n=60)),        # 8 features, 60 sampled coalitions
    ("lime", 2, dict(n=40, alpha=0.0)),
])
def test_superpixel_methods_on_a_linear_model_by_hand(name, grid, options):
    model, w = linear_model()
    x = pictures()
    got = getattr(ng, name)(model, x, CLASSES, grid=grid, baseline=0.3, **options)
    expected = per_feature(w[CLASSES] * (x - 0.3), grid_mask((4, 4), grid)[None, None])
    assert torch.allclose(got, expected, atol=1e-5), (got - expected).abs().max()


def test_kernel_shap_exact_values_are_shapley_values_of_an_interacting_model():
    # score = a b c + a^2 + b d with a..d the sums of four vertical strips (baseline 0): the Shapley
    # values by brute force over the 4! orders of arrival, against KernelSHAP with all 16 coalitions
    # (four features: the kernel's weights differ by coalition size, so a wrong kernel shows).
    def score(a, b, c, d):
        return a * b * c + a ** 2 + b * d

    class Interacting(nn.Module):
        def forward(self, x):
            return score(*x.sum((1, 2)).unbind(1))[:, None]

    x = pictures(count=1)
    strips = [float(v) for v in x.sum((1, 2))[0]]
    shapley = [0.0] * 4
    for order in itertools.permutations(range(4)):
        present = [0.0] * 4
        for f in order:
            before = score(*present)
            present[f] = strips[f]
            shapley[f] += (score(*present) - before) / 24
    got = ng.kernel_shap(Interacting(), x, 0, grid=(1, 4), n=16)
    assert torch.allclose(got[0, 0, 0], torch.tensor(shapley), rtol=1e-4)
    assert sum(shapley) == pytest.approx(score(*strips), rel=1e-6)      # efficiency


def test_feature_mask_ids_are_renumbered_and_per_picture_masks_differ():
    model, w = linear_model()
    x = pictures()
    labels = torch.tensor([[7, 7, 9, 9]] * 4)                      # SLIC-like ids, not 0..F-1
    got = ng.feature_ablation(model, x, CLASSES, feature_mask=labels)
    assert torch.allclose(got, per_feature(w[CLASSES] * x, (labels == 9).long()[None, None]), atol=1e-6)
    # one mask per picture (and per channel): [B, C, H, W]
    masks = torch.stack([torch.zeros(2, 4, 4, dtype=torch.long), torch.arange(32).view(2, 4, 4)])
    got = ng.kernel_shap(model, x, CLASSES, feature_mask=masks, n=2 ** 12)
    assert torch.allclose(got[0], (w[1] * x[0]).sum().expand(2, 4, 4), atol=1e-5)
    assert torch.allclose(got[1], w[3] * x[1], atol=1e-4)


def test_a_batch_equals_its_pictures_and_batch_size_changes_nothing(one_thread):
    torch.manual_seed(0)
    model = nn.Sequential(nn.Conv2d(2, 3, 3, padding=1), nn.ReLU(), nn.AdaptiveAvgPool2d(1), nn.Flatten(),
                          nn.Linear(3, 4)).eval()
    x = pictures(count=3)
    for method, kw in ((ng.kernel_shap, dict(n=30)), (ng.lime, dict(n=30, alpha=0.0)), (ng.feature_ablation, {})):
        whole = method(model, x, [0, 1, 2], grid=2, **kw)
        ones = torch.cat([method(model, x[i:i + 1], [i], grid=2, batch_size=1, **kw) for i in range(3)])
        assert torch.allclose(whole, ones, atol=1e-6), method.__name__
        assert whole.abs().max() > 0
    # different seeds draw different coalitions
    assert not torch.allclose(ng.lime(model, x, 0, grid=2, n=30, seed=1, alpha=0.0),
                              ng.lime(model, x, 0, grid=2, n=30, alpha=0.0))


def test_user_mistakes_are_one_line_errors():
    model, _ = linear_model()
    x = pictures()
    for bad in (dict(feature_mask=torch.zeros(3, 3, dtype=torch.long)), dict(feature_mask=torch.zeros(4, 4)),
                dict(grid=9), dict(batch_size=0)):
        with pytest.raises(ng.UserError):
            ng.feature_ablation(model, x, 0, **bad)
    with pytest.raises(ng.UserError, match="coalitions"):
        ng.kernel_shap(model, x, 0, grid=2, coalitions=torch.ones(5, 3))
    with pytest.raises(ng.UserError):
        ng.lime(model, (x, x), 0)
    with pytest.raises(ng.UserError, match="baselines"):
        ng.deeplift_shap(model, x, 0, baselines=torch.zeros(3, 2, 4))


# -- DeepLift, DeepLiftShap, GradientSHAP ---------------------------------------------------------
def test_deeplift_gradient_shap_on_a_linear_model_by_hand():
    model, w = linear_model()
    x = pictures()
    refs = pictures(seed=5, count=3)
    assert torch.allclose(ng.deeplift(model, x, CLASSES, baseline=0.3), w[CLASSES] * (x - 0.3), atol=1e-6)
    expected = w[CLASSES] * (x - refs.mean(0))
    assert torch.allclose(ng.deeplift_shap(model, x, CLASSES, baselines=refs, batch_size=2), expected, atol=1e-6)
    # GradientSHAP: the gradient is w everywhere, so each draw gives w * (x - b); the mean over the
    # drawn baselines is exact for any draws with one baseline
    assert torch.allclose(ng.gradient_shap(model, x, CLASSES, baselines=refs[:1], n=3), w[CLASSES] * (x - refs[0]),
                          atol=1e-6)


def relu_pool_net(seed: int = 0) -> nn.Module:
    torch.manual_seed(seed)
    return nn.Sequential(nn.Conv2d(3, 6, 3, padding=1), nn.ReLU(inplace=True), nn.MaxPool2d(3, 2, padding=1),
                         nn.Conv2d(6, 8, 3, padding=1), nn.BatchNorm2d(8), nn.ReLU(), nn.MaxPool2d(2),
                         nn.Conv2d(8, 8, 3), nn.Tanh(), nn.AdaptiveAvgPool2d(1), nn.Flatten(), nn.Linear(8, 6),
                         nn.ELU(), nn.Linear(6, 5)).eval()


def test_deeplift_sums_to_the_score_difference_on_relu_and_pool_nets(snapshot):
    model = relu_pool_net()
    with torch.no_grad():
        model[4].running_mean.uniform_(-0.2, 0.2)
    x = torch.rand(3, 3, 16, 16, generator=torch.Generator().manual_seed(1))
    base = torch.rand(3, 16, 16, generator=torch.Generator().manual_seed(2)) * 0.5
    snap = snapshot(model)
    got = ng.deeplift(model, x, [0, 2, 4], baseline=base)
    snap.assert_unchanged()
    with torch.no_grad():
        expected = (model(x) - model(base[None]))[[0, 1, 2], [0, 2, 4]]
    assert torch.allclose(got.sum((1, 2, 3)), expected, rtol=1e-4, atol=1e-6)
    # it is not the gradient times (x - b): the rescale rule changes the numbers
    grad = ng.input_x_gradient(model, x - base, target=[0, 2, 4])
    assert not torch.allclose(got, grad, atol=1e-4)
    refs = torch.rand(4, 3, 16, 16, generator=torch.Generator().manual_seed(3))
    shap = ng.deeplift_shap(model, x, [0, 2, 4], baselines=refs, batch_size=5)
    with torch.no_grad():
        expected = model(x)[[0, 1, 2], [0, 2, 4]] - model(refs)[:, [0, 2, 4]].mean(0)
    assert torch.allclose(shap.sum((1, 2, 3)), expected, rtol=1e-4, atol=1e-6)


def test_deeplift_on_a_resnet_with_shared_relus_is_complete_and_leaves_no_hook(snapshot, one_thread):
    torchvision = pytest.importorskip("torchvision")
    torch.manual_seed(0)
    model = torchvision.models.resnet18(num_classes=4).eval()
    x = torch.rand(1, 3, 32, 32, generator=torch.Generator().manual_seed(1))
    snap = snapshot(model)
    got = ng.deeplift(model, x, 2, baseline=0.1)
    snap.assert_unchanged()
    with torch.no_grad():
        expected = float(model(x)[0, 2] - model(torch.full_like(x, 0.1))[0, 2])
    assert float(got.sum()) == pytest.approx(expected, rel=1e-3, abs=1e-5)
    assert not any(m._forward_hooks or m._forward_pre_hooks for m in model.modules())


def test_hooks_are_removed_when_the_model_raises():
    class Broken(nn.Module):
        def __init__(self):
            super().__init__()
            self.relu = nn.ReLU()

        def forward(self, x):
            self.relu(x)
            raise ValueError("boom")

    model = Broken()
    with pytest.raises(ValueError):
        ng.deeplift(model, torch.rand(1, 1, 2, 2), lambda out: out.sum((1, 2, 3)))
    assert not model.relu._forward_hooks and not model.relu._forward_pre_hooks


def test_lime_default_alpha_follows_the_scale_of_the_scores():
    """Captum's absolute alpha 0.01 blanks a model whose scores move less than that; ours scales with them."""
    torch.manual_seed(0)
    model = nn.Sequential(nn.Conv2d(3, 4, 3, padding=1), nn.ReLU(), nn.AdaptiveAvgPool2d(1), nn.Flatten(),
                          nn.Linear(4, 3))
    with torch.no_grad():
        model[-1].weight.mul_(1e-3)
        model[-1].bias.zero_()
    x = torch.rand(1, 3, 8, 8, generator=torch.Generator().manual_seed(1))
    small = ng.lime(model, x, 0, grid=2, n=64)
    assert small.abs().sum() > 0
    assert torch.equal(ng.lime(model, x, 0, grid=2, n=64, alpha=0.01), torch.zeros_like(x))   # Captum's absolute alpha
    with torch.no_grad():
        scaled = nn.Sequential(model, nn.Linear(3, 3))
        scaled[1].weight.copy_(torch.eye(3) * 1000.0)
        scaled[1].bias.zero_()
    assert torch.allclose(ng.lime(scaled, x, 0, grid=2, n=64), 1000 * small, rtol=1e-3, atol=1e-6 * 1000)

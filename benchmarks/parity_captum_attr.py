"""Rows of ``parity.py`` for Captum's FeatureAblation, KernelShap, ShapleyValues, Lime, DeepLift,
DeepLiftShap and GradientShap: the same inputs, baselines, feature mask and samples on both sides."""
from __future__ import annotations

import torch
import torch.nn as nn

import netgaze as ng
from netgaze.methods.feature_masks import grid_mask
from netgaze.methods.gradient_shap import draws
from netgaze.methods.kernel_shap import shapley_coalitions

DEEPLIFT_CONVENTION = ("resnet18: Captum hooks a module once, so torchvision's shared ReLU (two calls per block) "
                       "breaks its rule, and its max-pool rule keeps one of two overlapping windows "
                       "(max_unpool2d) and takes the first picture's gradient where delta in is 0 (captum#1276); "
                       "ours applies the rule at every call and sums overlapping windows: complete, sum = "
                       "score(x) - score(baseline)")


def _same(coalitions):
    def perturb(_inputs, **_kw):
        yield from (row[None] for row in coalitions)
    return perturb


def _per_picture(explainer, x, target, **kw) -> torch.Tensor:
    return torch.cat([explainer.attribute(x[i:i + 1], target=target[i], perturbations_per_eval=64, **kw)
                      for i in range(len(x))])


def small_cnn() -> nn.Module:
    """Conv, max-pool right after it (where Captum's max-pool rule equals ours), ReLU, Tanh, Sigmoid."""
    torch.manual_seed(0)
    return nn.Sequential(nn.Conv2d(3, 6, 3, padding=1), nn.MaxPool2d(2), nn.Conv2d(6, 8, 3, padding=1), nn.ReLU(),
                         nn.Conv2d(8, 8, 3), nn.Tanh(), nn.AdaptiveAvgPool2d(1), nn.Flatten(), nn.Linear(8, 6),
                         nn.Sigmoid(), nn.Linear(6, 10)).eval()


def captum_attribution_rows(model, x, classes, row) -> list[dict]:
    from captum._utils.models.linear_model import SkLearnLinearRegression
    import captum._utils.common as captum_common
    import captum.attr._core.gradient_shap as captum_gradient_shap
    from captum.attr import DeepLift, DeepLiftShap, FeatureAblation, GradientShap, KernelShap, Lime, ShapleyValues

    target = [int(c) for c in classes]
    size = tuple(x.shape[-2:])
    mask = grid_mask(size, 4)[None, None]
    rows = [row("feature_ablation", "captum", ng.feature_ablation(model, x, classes, grid=4, baseline=0.1),
                FeatureAblation(model).attribute(x, target=target, baselines=0.1, feature_mask=mask,
                                                 perturbations_per_eval=16), "raw", "4 x 4 grid of patches")]
    small = grid_mask(size, 2)[None, None]
    rows.append(row("kernel_shap (all 16 coalitions)", "captum ShapleyValues",
                    ng.kernel_shap(model, x, classes, grid=2, baseline=0.1, n=16),
                    ShapleyValues(model).attribute(x, target=target, baselines=0.1, feature_mask=small,
                                                   perturbations_per_eval=16), "raw",
                    "n >= 2^features: every coalition with the Shapley kernel, the exact Shapley values"))
    coalitions, _ = shapley_coalitions(16, 200, torch.Generator().manual_seed(0))
    peer = KernelShap(model)
    peer.perturb_func = _same(coalitions)
    rows.append(row("kernel_shap", "captum", ng.kernel_shap(model, x, classes, grid=4, baseline=0.1,
                                                            coalitions=coalitions),
                    _per_picture(peer, x, target, baselines=0.1, feature_mask=mask, n_samples=len(coalitions)),
                    "raw", "the same 200 coalitions (Captum's sampler, our seeded stream) on both sides"))
    coalitions = (torch.rand(200, 16, generator=torch.Generator().manual_seed(1)) < 0.5).long()
    scaled = x * 20                                   # scores that vary enough for the Lasso to keep some patches
    for alpha, surrogate in ((0.01, None), (0.0, SkLearnLinearRegression())):
        peer = Lime(model, interpretable_model=surrogate, perturb_func=_same(coalitions))
        rows.append(row(f"lime alpha={alpha}", "captum Lime" + ("" if alpha else "(SkLearnLinearRegression)"),
                        ng.lime(model, scaled, classes, grid=4, baseline=0.1, coalitions=coalitions, alpha=alpha),
                        _per_picture(peer, scaled, target, baselines=0.1, feature_mask=mask, n_samples=len(coalitions)),
                        "raw", "the same 200 coalitions; Captum's cosine kernel and Lasso(0.01); alpha=0: least "
                        "squares"))
    base = torch.full_like(x, 0.1)
    refs = torch.rand(4, *x.shape[1:], generator=torch.Generator().manual_seed(2))
    for name, net in (("resnet18", model), ("small CNN", small_cnn())):
        convention = DEEPLIFT_CONVENTION if name == "resnet18" else "equal (no shared module, no overlapping pool)"
        try:
            theirs = DeepLift(net).attribute(x.clone().requires_grad_(), target=target, baselines=base)
            theirs_shap = DeepLiftShap(net).attribute(x.clone().requires_grad_(), target=target, baselines=refs)
        except Exception as err:                        # noqa: BLE001 - the peer's failure is the finding
            rows.append({"method": f"deeplift ({name})", "peer": "captum", "skipped": f"captum raised: {err}"})
            continue
        rows.append(row(f"deeplift ({name})", "captum", ng.deeplift(net, x, classes, baseline=0.1), theirs, "raw",
                        convention))
        rows.append(row(f"deeplift_shap ({name})", "captum", ng.deeplift_shap(net, x, classes, baselines=refs),
                        theirs_shap, "raw", convention))
    picks, alphas = draws(len(x), 8, len(refs), torch.Generator().manual_seed(3))

    class Draws:                                       # Captum draws from numpy's global stream: hand it ours
        def choice(self, count, size):
            return picks.reshape(-1).numpy()

        def uniform(self, low, high, size):
            return alphas.reshape(-1).double().numpy()

    saved = captum_common.np, captum_gradient_shap.np
    captum_common.np = captum_gradient_shap.np = type("numpy", (), {"random": Draws()})
    try:
        theirs = GradientShap(model).attribute(x, baselines=refs, target=target, n_samples=8, stdevs=0.0)
    finally:
        captum_common.np, captum_gradient_shap.np = saved
    rows.append(row("gradient_shap", "captum", ng.gradient_shap(model, x, classes, baselines=refs, n=8, seed=3), theirs,
                    "raw", "the same draws of baselines and points (Captum's numpy stream replaced by ours)"))
    return rows

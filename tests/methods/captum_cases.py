"""Captum's own test cases, as data: the helper model, inputs, baselines, target and the expected
numbers copied from Captum's test files (github.com/pytorch/captum, commit faac087 of 2025-10-02,
``tests/attr/<file>``), each with the netgaze call that answers it.

Shared by tests/methods/test_captum_own_cases.py and benchmarks/parity_own_cases.py. Captum's
1-D cases ``[B, N]`` travel as pictures ``[B, 1, 1, N]`` (``Picture`` reshapes them back before the
helper model); where Captum attributes several inputs of a one-picture case, each input is one
netgaze call with the others held at their values (Captum perturbs one input at a time too).
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Callable

import torch
import torch.nn as nn
import torch.nn.functional as F

import netgaze as ng

COMMIT = "faac08773131888714b15709b28494ebeea7f6eb"
REL = 1e-5
SALIENCY_ABS = "Captum's Saliency returns |gradient| (abs=True by default); ours is signed: compared as .abs()"
SHAP_EXACT = ("Captum samples 500 coalitions and its test allows 1.0; with n >= 2^features ours scores every "
              "coalition with the Shapley kernel: the exact Shapley values, which Captum's expected numbers are")
LIME_SAMPLED = ("sampled coalitions: Captum's expected numbers come from its own random draws (the test allows 1.0 "
                "absolute); ours draws its own seeded coalitions, so equal only within Captum's tolerance")
RELU_DEEPLIFT = ("two inputs, one ng.deeplift call each with the other held at its value: the model is a sum "
                 "of one term per input, so each input's share is the same as when both move")
LRP_SCALE = ("Captum's LRP starts from the target's score, ours (zennit's) from relevance 1: compared as ours x "
             "score")
CAM_GRID = ("Captum's LayerGradCam returns the layer's grid without ReLU (relu_attributions=False); ours is "
            "ReLU'd and upsampled bilinearly to the input: Captum's numbers compared after the same ReLU and resize")
ROUNDED = "; Captum's expected numbers have 3 significant digits (its test allows 1e-4)"
DEFAULT_STRIDE = "Captum's default stride is 1, ours the window: strides=1 passed"


class Picture(nn.Module):
    """``net`` fed from a picture batch: input ``i`` is ``x`` reshaped to ``shape`` (per sample), the
    other inputs (batch 1) held fixed; the output is read as scores ``[B, K]``."""

    def __init__(self, net: nn.Module, shape: tuple, others: tuple = (), i: int = 0):
        super().__init__()
        self.net, self.shape, self.others, self.i = net, shape, others, i

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        args = [o.expand(len(x), *o.shape[1:]) for o in self.others]
        args.insert(self.i, x.reshape(len(x), *self.shape))
        return self.net(*args).reshape(len(x), -1)


def row(x: torch.Tensor | list) -> torch.Tensor:
    """Captum's 1-D batch ``[B, N]`` as pictures ``[B, 1, 1, N]``."""
    t = torch.as_tensor(x)
    return t.reshape(len(t), 1, 1, -1)


@dataclass
class Case:
    method: str
    test: str                                   # Captum's test file :: test name
    run: Callable[[], torch.Tensor]             # netgaze's attributions, laid out like ``expected``
    expected: list | torch.Tensor               # copied from Captum's test file
    convention: str = ""
    delta: float | None = None                  # None: equal to REL relative; else Captum's own tolerance

    def ours_and_expected(self) -> tuple[torch.Tensor, torch.Tensor]:
        ours = self.run().detach().double()
        return ours, torch.as_tensor(self.expected, dtype=torch.float64).reshape(ours.shape)


def max_rel_diff(ours: torch.Tensor, expected: torch.Tensor) -> float:
    """Largest difference over the largest expected magnitude (benchmarks/parity.py's measure)."""
    diff, scale = float((ours - expected).abs().max()), float(expected.abs().max())
    return diff / scale if scale > 0 else diff


def _models():
    from captum.testing.helpers import basic_models as m
    return m


def _conv_pair():
    return torch.arange(16, dtype=torch.float).view(1, 1, 4, 4), torch.ones(1, 1, 4, 4)


CONV_DECONV = [[2.0, 3.0, 3.0, 1.0], [3.0, 5.0, 5.0, 2.0], [3.0, 5.0, 5.0, 2.0], [1.0, 2.0, 2.0, 1.0]]
CONV_GB = [[0.0, 1.0, 1.0, 1.0], [1.0, 3.0, 3.0, 2.0], [1.0, 3.0, 3.0, 2.0], [1.0, 2.0, 2.0, 1.0]]
CONV_GB_PAIR = [[1.0, 2.0, 2.0, 1.0], [2.0, 4.0, 4.0, 2.0], [2.0, 4.0, 4.0, 2.0], [1.0, 2.0, 2.0, 1.0]]
BASIC_X = [1.0, 2.0, 3.0, 0.0, -1.0, 7.0]                      # get_basic_config: BasicModel, one value per sample
BASIC_GRADS = [-0.0, -0.0, -0.0, 1.0, 1.0, -0.0]


def _basic(method):
    m = _models()
    return method(Picture(m.BasicModel(), (1,)), torch.tensor(BASIC_X).view(6, 1, 1, 1), 0).flatten()


def _pair(method, **kw):
    m = _models()
    net = m.BasicModel_ConvNet_One_Conv()
    return torch.cat([a.flatten() for a in method(net, _conv_pair(), 0, **kw)])


def _one_of_pair(method, i: int, **kw):
    """Input ``i`` of the conv pair attributed with the other input held at its value."""
    m = _models()
    pair = _conv_pair()
    net = Picture(m.BasicModel_ConvNet_One_Conv(), (1, 4, 4), others=(pair[1 - i],), i=i)
    return method(net, pair[i], 0, **kw)


def _relu_deeplift(i: int) -> torch.Tensor:
    """ReLUDeepLiftModel ``2 relu(x1) + 2 relu(x2 - 1.5)`` at (1, 2) against (0, 0), input ``i`` alone."""
    x = (torch.tensor([1.0]), torch.tensor([2.0]))
    net = Picture(_models().ReLUDeepLiftModel(), (), others=(x[1 - i],), i=i)
    return ng.deeplift(net, x[i].view(1, 1, 1, 1), 0).flatten()


def _cam_at_input(grid: list) -> torch.Tensor:
    """Captum's LayerGradCam map (the layer's grid, no ReLU) as ours: ReLU'd, bilinear to the 4 x 4 input."""
    return F.interpolate(torch.tensor(grid)[None, None].relu(), size=(4, 4), mode="bilinear", align_corners=False)[0]


def _frozen(net: nn.Module) -> nn.Module:
    for p in net.parameters():
        p.requires_grad_(False)
    return net


def _lrp(net: nn.Module, x: torch.Tensor) -> torch.Tensor:
    """ng.lrp with the epsilon rule on every layer (Captum's default rules), times the target's score
    (in eval mode, as ng.lrp runs: SimpleLRPModel has a dropout)."""
    return ng.lrp(net, x, 0, rule="epsilon", canonizers="none") * net.eval()(x)[:, :1, None, None]


class _LinearTanhLinear(nn.Module):
    """The model defined inside Captum's test_lrp_simple_tanh."""

    def __init__(self):
        super().__init__()
        self.linear, self.tanh, self.linear2 = nn.Linear(3, 3, bias=False), nn.Tanh(), nn.Linear(3, 1, bias=False)
        self.linear.weight.data.fill_(0.1)
        self.linear2.weight.data.fill_(0.1)

    def forward(self, x):
        return self.linear2(self.tanh(self.linear(x)))


def _multilayer(method, x, **kw):
    return method(Picture(_models().BasicModel_MultiLayer(), (3,)), row(x), 0, **kw).reshape(len(x), 3)


X1, X2 = [[20.0, 50.0, 30.0]], [[2.0, 10.0, 3.0], [20.0, 50.0, 30.0]]
EACH = torch.arange(3).view(1, 3)              # one feature per value (Captum's default mask)
MASK, MASKS = torch.tensor([[0, 0, 1]]), torch.tensor([[0, 0, 1], [1, 1, 0]]).view(2, 1, 1, 3)


def cases() -> list[Case]:
    fa, ks, occ = ng.feature_ablation, ng.kernel_shap, ng.occlusion
    pair_fa = [[0.0, 2.0, 4.0, 3.0], [4.0, 9.0, 10.0, 7.0], [4.0, 13.0, 14.0, 11.0], [0.0, 0.0, 0.0, 0.0]]
    pair_fa2 = [[1.0, 2.0, 2.0, 1.0], [1.0, 2.0, 2.0, 1.0], [1.0, 2.0, 2.0, 1.0], [0.0, 0.0, 0.0, 0.0]]
    occ1 = [[17.0] * 4, [17.0] * 4, [64.0, 65.5, 65.5, 67.0], [64.0, 65.5, 65.5, 67.0]]
    occ2 = [[3.0] * 4, [3.0] * 4, [3.0] * 4, [0.0] * 4]
    each = torch.arange(16).view(4, 4)
    return [
        Case("saliency", "test_saliency.py::test_saliency_test_basic_vanilla",
             lambda: _basic(ng.saliency).abs(), [abs(g) for g in BASIC_GRADS], SALIENCY_ABS),
        Case("saliency", "test_saliency.py::test_saliency_test_basic_vanilla (signed: get_basic_config's grads)",
             lambda: _basic(ng.saliency), BASIC_GRADS, "signed, as the gradients get_basic_config lists"),
        Case("input_x_gradient", "test_input_x_gradient.py::test_input_x_gradient_test_basic_vanilla",
             lambda: _basic(ng.input_x_gradient), [g * x for g, x in zip(BASIC_GRADS, BASIC_X)]),
        Case("deconvolution", "test_deconvolution.py::test_simple_input_conv_deconv",
             lambda: ng.deconvolution(_models().BasicModel_ConvNet_One_Conv(), _conv_pair()[0], 0), CONV_DECONV),
        Case("deconvolution", "test_deconvolution.py::test_simple_multi_input_conv_deconv",
             lambda: _pair(ng.deconvolution), [CONV_DECONV, CONV_DECONV]),
        Case("guided_backprop", "test_guided_backprop.py::test_simple_input_conv_gb",
             lambda: ng.guided_backprop(_models().BasicModel_ConvNet_One_Conv(), _conv_pair()[0], 0), CONV_GB),
        Case("guided_backprop", "test_guided_backprop.py::test_simple_multi_input_conv_gb",
             lambda: _pair(ng.guided_backprop), [CONV_GB_PAIR, CONV_GB_PAIR]),
        Case("deeplift", "test_deeplift_basic.py::test_relu_deeplift_exact_match",
             lambda: torch.cat([_relu_deeplift(i) for i in (0, 1)]), [2.0, 1.0], RELU_DEEPLIFT),
        Case("lrp", "test_lrp.py::test_lrp_basic_attributions",
             lambda: _lrp(_models().BasicModel_ConvNet_One_Conv(), torch.arange(16).view(1, 1, 4, 4).float()),
             [[0, 1, 2, 3], [0, 5, 6, 7], [0, 9, 10, 11], [0, 0, 0, 0]], LRP_SCALE),
        Case("lrp", "test_lrp.py::test_lrp_simple_attributions",
             lambda: _lrp(Picture(_models().SimpleLRPModel(False), (3,)), row([[1.0, 2.0, 3.0]])),
             [[18.0, 36.0, 54.0]], LRP_SCALE),
        Case("lrp", "test_lrp.py::test_lrp_simple_attributions_batch",
             lambda: _lrp(Picture(_models().SimpleLRPModel(False), (3,)), row([[1.0, 2.0, 3.0], [3.0, 6.0, 9.0]])),
             [[18.0, 36.0, 54.0], [54.0, 108.0, 162.0]], LRP_SCALE),
        Case("lrp", "test_lrp.py::test_lrp_simple_tanh",
             lambda: _lrp(Picture(_LinearTanhLinear(), (3,)), row([[1.0, 2.0, 3.0]])),
             [[0.0269, 0.0537, 0.0806]], LRP_SCALE + ROUNDED, delta=1e-4),
        Case("gradcam", "layer/test_grad_cam.py::test_simple_input_conv",
             lambda: ng.gradcam(_models().BasicModel_ConvNet_One_Conv(), _conv_pair()[0], "conv1", 0),
             _cam_at_input([[11.25, 13.5], [20.25, 22.5]]), CAM_GRID),
        Case("gradcam", "layer/test_grad_cam.py::test_simple_input_conv_no_grad",
             lambda: ng.gradcam(_frozen(_models().BasicModel_ConvNet_One_Conv()), _conv_pair()[0], "conv1", 0),
             _cam_at_input([[11.25, 13.5], [20.25, 22.5]]), CAM_GRID),
        Case("gradcam", "layer/test_grad_cam.py::test_simple_input_conv_relu",
             lambda: ng.gradcam(_models().BasicModel_ConvNet_One_Conv(), _conv_pair()[0], "relu1", 0),
             _cam_at_input([[0.0, 4.0], [28.0, 32.5]]), CAM_GRID),
        Case("gradcam", "layer/test_grad_cam.py::test_simple_multi_input_conv",
             lambda: ng.gradcam(_models().BasicModel_ConvNet_One_Conv(), _conv_pair(), "conv1", 0),
             _cam_at_input([[14.5, 19.0], [32.5, 37.0]]), CAM_GRID),
        Case("occlusion", "test_occlusion.py::test_simple_input",
             lambda: _multilayer(occ, X1, window=(1, 1), strides=1), [[80.0, 200.0, 120.0]], DEFAULT_STRIDE),
        Case("occlusion", "test_occlusion.py::test_simple_input_larger_shape",
             lambda: _multilayer(occ, X1, window=(1, 2), strides=1, baseline=torch.tensor([10.0, 10.0, 10.0])),
             [[200.0, 220.0, 240.0]], DEFAULT_STRIDE),
        Case("occlusion", "test_occlusion.py::test_simple_input_shape_with_stride",
             lambda: _multilayer(occ, X1, window=(1, 2), strides=2), [[280.0, 280.0, 120.0]]),
        Case("occlusion", "test_occlusion.py::test_multi_sample_ablation",
             lambda: _multilayer(occ, X2, window=(1, 1), strides=1), [[8.0, 35.0, 12.0], [80.0, 200.0, 120.0]],
             DEFAULT_STRIDE),
        Case("occlusion", "test_occlusion.py::test_simple_multi_input_conv (whole-input window)",
             lambda: torch.cat([_one_of_pair(occ, i, window=(4, 4)) for i in (0, 1)]), [[67.0] * 16, [13.0] * 16]),
        Case("occlusion", "test_occlusion.py::test_simple_multi_input_conv",
             lambda: torch.cat([_one_of_pair(occ, 0, window=(2, 3), strides=(2, 1)),
                                _one_of_pair(occ, 1, window=(1, 2), strides=(1, 2))]), [occ1, occ2]),
        Case("feature_ablation", "test_feature_ablation.py::test_simple_ablation",
             lambda: _multilayer(fa, X1, feature_mask=EACH), [[80.0, 200.0, 120.0]]),
        Case("feature_ablation", "test_feature_ablation.py::test_simple_ablation_int_to_int",
             lambda: fa(Picture(_models().BasicModel(), (3,)), row([[-3, 1, 2]]), 0,
                        feature_mask=torch.arange(3).view(1, 3)).flatten(), [[-3, 0, 0]]),
        Case("feature_ablation", "test_feature_ablation.py::test_simple_ablation_with_mask",
             lambda: _multilayer(fa, X1, feature_mask=MASK), [[280.0, 280.0, 120.0]]),
        Case("feature_ablation", "test_feature_ablation.py::test_simple_ablation_with_baselines",
             lambda: _multilayer(fa, X1, feature_mask=MASK, baseline=4.0), [[248.0, 248.0, 104.0]]),
        Case("feature_ablation", "test_feature_ablation.py::test_multi_sample_ablation",
             lambda: _multilayer(fa, X2, feature_mask=EACH), [[8.0, 35.0, 12.0], [80.0, 200.0, 120.0]]),
        Case("feature_ablation", "test_feature_ablation.py::test_multi_sample_ablation_with_mask",
             lambda: _multilayer(fa, X2, feature_mask=MASKS), [[41.0, 41.0, 12.0], [280.0, 280.0, 120.0]]),
        Case("feature_ablation", "test_feature_ablation.py::test_simple_multi_input_conv (one feature per input)",
             lambda: torch.cat([_one_of_pair(fa, i, feature_mask=torch.zeros(4, 4, dtype=torch.long))
                                for i in (0, 1)]), [[67.0] * 16, [13.0] * 16]),
        Case("feature_ablation", "test_feature_ablation.py::test_simple_multi_input_conv",
             lambda: torch.cat([_one_of_pair(fa, i, feature_mask=each) for i in (0, 1)]), [pair_fa, pair_fa2]),
        Case("kernel_shap", "test_kernel_shap.py::test_linear_kernel_shap",
             lambda: _multilayer(ks, X1, feature_mask=EACH, n=8, baseline=torch.tensor([10.0, 20.0, 10.0])),
             [[40.0, 120.0, 80.0]], SHAP_EXACT),
        Case("kernel_shap", "test_kernel_shap.py::test_simple_kernel_shap",
             lambda: _multilayer(ks, X1, feature_mask=EACH, n=8), [[76.66666, 196.66666, 116.66666]], SHAP_EXACT),
        Case("kernel_shap", "test_kernel_shap.py::test_simple_kernel_shap_with_mask",
             lambda: _multilayer(ks, X1, feature_mask=MASK, n=4), [[275.0, 275.0, 115.0]], SHAP_EXACT),
        Case("kernel_shap", "test_kernel_shap.py::test_simple_kernel_shap_with_baselines",
             lambda: _multilayer(ks, X1, feature_mask=MASK, n=4, baseline=4.0), [[248.0, 248.0, 104.0]], SHAP_EXACT),
        Case("kernel_shap", "test_kernel_shap.py::test_simple_batch_kernel_shap",
             lambda: _multilayer(ks, X2, feature_mask=EACH, n=8),
             [[7.0, 32.5, 10.5], [76.66666, 196.66666, 116.66666]], SHAP_EXACT),
        Case("kernel_shap", "test_kernel_shap.py::test_simple_batch_kernel_shap_with_mask",
             lambda: _multilayer(ks, X2, feature_mask=MASKS, n=4), [[39.5, 39.5, 10.5], [275.0, 275.0, 115.0]],
             SHAP_EXACT),
        Case("lime", "test_lime.py::test_simple_lime",
             lambda: _multilayer(ng.lime, X1, feature_mask=EACH, n=500, alpha=1.0),
             [[73.3716, 193.3349, 113.3349]], LIME_SAMPLED, delta=1.0),
        Case("lime", "test_lime.py::test_simple_lime_with_mask",
             lambda: _multilayer(ng.lime, X1, feature_mask=MASK, n=500, alpha=1.0),
             [[271.0, 271.0, 111.0]], LIME_SAMPLED, delta=1.0),
        Case("lime", "test_lime.py::test_simple_batch_lime",
             lambda: _multilayer(ng.lime, [[20.0, 50.0, 30.0], [10.0, 14.0, 4.0]], feature_mask=EACH, n=800,
                                 alpha=1.0), [[73.4450, 193.5979, 113.4363], [32.11, 48.00, 11.00]],
             LIME_SAMPLED, delta=1.0),
        Case("lime", "test_lime.py::test_simple_lime_with_baselines",
             lambda: _multilayer(ng.lime, X1, feature_mask=MASK, n=100, alpha=1.0, baseline=4.0),
             [[244.0, 244.0, 100.0]], LIME_SAMPLED, delta=1.0),
        Case("lime", "test_lime.py::test_simple_batch_lime_with_mask",
             lambda: _multilayer(ng.lime, [[20.0, 50.0, 30.0], [10.0, 14.0, 4.0]], n=600, alpha=1.0,
                                 feature_mask=torch.tensor([[0, 0, 1], [0, 1, 2]]).view(2, 1, 1, 3)),
             [[271.0, 271.0, 111.0], [32.11, 48.00, 11.00]], LIME_SAMPLED, delta=1.0),
    ]


# Captum test files, or cases of them, that do not map onto netgaze's calls, with the reason.
SKIPPED = {
    "test_integrated_gradients_basic.py": "asserts completeness (convergence delta) and batch consistency only, "
                                          "no expected numbers",
    "test_gradient_shap.py": "asserts completeness and agreement with IntegratedGradients only, no expected numbers",
    "test_deeplift_basic.py (but test_relu_deeplift_exact_match)": "the other cases assert completeness only, "
        "take multipliers (multiply_by_inputs=False: not an option of ours), a MaxPool1d (LinearMaxPoolLinearModel: "
        "netgaze's max-pool rule covers MaxPool2d only) or assert that Captum raises on a reused module "
        "(test_reusable_modules: ours applies the rule at each call)",
    "test_deeplift_classification.py": "asserts completeness and agreement with IntegratedGradients only",
    "noise tunnel (smoothgrad, smoothgrad_sq, vargrad in test_saliency.py, test_input_x_gradient.py, "
    "test_integrated_gradients_basic.py)": "asserts shapes and batch-size consistency only, no expected numbers",
    "test_saliency.py / test_input_x_gradient.py classification and multi-argument cases":
        "expected values computed by autograd inside the test (SoftmaxModel, BasicModel5_MultiArgs), not data",
    "test_occlusion.py / test_feature_ablation.py / test_kernel_shap.py / test_lime.py multi-input cases":
        "BasicModel_MultiLayer_MultiInput / BasicModel3 with batches of 2 and extra forward arguments; "
        "boolean inputs (BasicModelBoolInput)",
    "test_lrp.py (other cases)": "rules set per layer that ng.lrp has no name for (GammaRule(gamma=1) beside "
        "gamma 0.25, IdentityRule, a custom Addition_Module), MaxPool-only or 1-D pooling models, several inputs; "
        "test_lrp_simple_attributions_AlphaBeta (Alpha1_Beta0 on both layers) expects [[12, 33.6, 50.4]] where "
        "ng.lrp rule='zplus' gives [[18, 36, 54]] (not investigated)",
    "layer/test_grad_cam.py (other cases)": "per-channel maps (attr_dim_summation=False), attributions to a "
        "layer's input (attribute_to_layer_input=True) and linear layers: no netgaze counterpart",
    "test_guided_grad_cam.py": "Captum upsamples Grad-CAM by nearest neighbour before multiplying, ours bilinearly; "
        "its expected numbers are the products, which cannot be converted",
    "test_shapley.py": "its single-input cases are the models, inputs, masks and numbers of test_kernel_shap.py's "
        "(exact Shapley values), answered above by kernel_shap; not repeated",
    "test_guided_backprop.py::test_gb_matching": "random input; compares Captum's two classes with each other",
}

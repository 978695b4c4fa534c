"""FEM, KPCA-CAM, Finer-CAM, ShapleyCAM and FullGrad on toys with hand-set weights, identities
with other methods, batches, layouts and an untouched model."""
from __future__ import annotations

import sys
from pathlib import Path

import pytest
import torch
import torch.nn as nn

import netgaze as ng

sys.path.insert(0, str(Path(__file__).parent))     # toys.py beside this file, from any working directory
from test_cam_variants import ChannelsLast, Tokens, tiny_net  # noqa: E402
from toys import set_conv1x1  # noqa: E402


class Probe(nn.Module):
    """The input itself is the explained layer ("feat"); a linear head on its channel means."""

    def __init__(self, channels: int = 2, classes: int = 3, head: nn.Module | None = None):
        super().__init__()
        self.feat = nn.Identity()
        self.head = head or nn.Linear(channels, classes)

    def forward(self, x):
        return self.head(self.feat(x).mean((2, 3)))


# -- FEM -----------------------------------------------------------------------------------------
def test_fem_by_hand():
    # channel 0 = [0, 0, 0, 0, 10]: mean 2, std 4 -> with k = 1 one position of five is above 6 -> w = 0.2;
    # channel 1 is constant: nothing lies above mean + k std -> w = 0.
    x = torch.tensor([[[[0.0, 0, 0, 0, 10]], [[3.0, 3, 3, 3, 3]]]])
    assert torch.allclose(ng.fem(Probe(), x, "feat", k=1), torch.tensor([[[0.0, 0, 0, 0, 2]]]))
    # the population std (4, as the peer's numpy std), not the sample std (4.47): 10 > 2 + 1.9 * 4 = 9.6
    assert torch.allclose(ng.fem(Probe(), x, "feat", k=1.9), torch.tensor([[[0.0, 0, 0, 0, 2]]]))
    # k = 2: 10 is not above 2 + 2 * 4 = 10 -> every weight is 0
    assert torch.equal(ng.fem(Probe(), x, "feat"), torch.zeros(1, 1, 5))
    with pytest.raises(ng.UserError, match="k must be"):
        ng.fem(Probe(), x, "feat", k="2")


# -- KPCA-CAM ------------------------------------------------------------------------------------
@pytest.mark.parametrize("kernel", ["sigmoid", "rbf", "poly", "linear", "cosine"])
def test_kpca_projection_equals_scikit_learn_kernel_pca(kernel):
    from sklearn.decomposition import KernelPCA

    from netgaze.methods.kpca_cam import kernel_projection

    a = torch.randn(3, 6, 4, 5, generator=torch.Generator().manual_seed(0))
    ours = kernel_projection(a, kernel).double()
    for b in range(3):
        rows = a[b].reshape(6, -1).T.double().numpy()
        rows = rows - rows.mean(0)
        theirs = torch.from_numpy(KernelPCA(n_components=1, kernel=kernel).fit_transform(rows)[:, 0]).view(4, 5)
        assert torch.allclose(ours[b], theirs, atol=1e-5 * float(theirs.abs().max())), b


def test_kpca_with_a_linear_kernel_is_eigencam_scaled():
    x = torch.randn(2, 4, 3, 3, generator=torch.Generator().manual_seed(1))
    eigen = ng.eigencam(Probe(4), x, "feat")
    kpca = ng.kpca_cam(Probe(4), x, "feat", kernel="linear")
    # both are the centred rows' first principal component, KPCA's scaled by 1/sqrt(eigenvalue) * eigenvalue / ...:
    # the ratio is one positive constant per picture (or both maps are zero after the ReLU, sign rule aside)
    for b in range(2):
        ratio = kpca[b][eigen[b] > 1e-6] / eigen[b][eigen[b] > 1e-6]
        if ratio.numel():
            assert torch.allclose(ratio, ratio[0].expand_as(ratio), rtol=1e-4) or torch.allclose(kpca[b], eigen[b] * 0)
    with pytest.raises(ng.UserError, match="unknown kernel"):
        ng.kpca_cam(Probe(4), x, "feat", kernel="laplace")


# -- Finer-CAM -----------------------------------------------------------------------------------
def test_finer_target_by_hand():
    from netgaze.methods.finercam import Finer

    logits = torch.tensor([[2.0, 1.5, 0.0, -1.0]])
    p = torch.softmax(logits, 1)[0]
    # main = class 0 (top); the two closest other logits: class 1 (|0.5|) then class 2 (|2|)
    expected = (p[1] * (2 - 1.5) + p[2] * (2 - 0)) / (p[1] + p[2] + 1e-9)
    assert torch.allclose(Finer(ng.TopClass(1), 1.0, 2)(logits), expected[None])
    # main = class 3 given: closest are class 2 (1) and class 1 (2.5); alpha = 0.5
    expected = (p[2] * (-1 - 0.5 * 0) + p[1] * (-1 - 0.5 * 1.5)) / (p[2] + p[1] + 1e-9)
    assert torch.allclose(Finer(ng.Class(3), 0.5, 2)(logits), expected[None])


def test_finercam_is_gradcam_of_the_logit_difference_with_one_compared_class():
    model = tiny_net()
    x = torch.rand(2, 3, 8, 8, generator=torch.Generator().manual_seed(2))
    logits = model(x)
    top = logits.argmax(1)
    second = logits.topk(2, 1).indices[:, 1]     # not always the closest: compute the closest other class
    closest = (logits - logits.gather(1, top[:, None])).abs().scatter(1, top[:, None], float("inf")).argmin(1)
    assert second.shape == closest.shape
    with ng.Recorder(model, ["3"]) as rec:
        out = rec.forward(x)
        diff = out.gather(1, top[:, None])[:, 0] - out.gather(1, closest[:, None])[:, 0]
        a, g = rec.activations["3"].detach(), rec.gradients(diff)["3"]
    expected = (g.mean((2, 3), keepdim=True) * a).sum(1).clamp(min=0)
    # p / (p + 1e-9) differentiated: a relative change below 1e-8
    assert torch.allclose(ng.finercam(model, x, "3", compare=1), expected, rtol=1e-4, atol=1e-7)
    with pytest.raises(ng.UserError, match="compare must be"):
        ng.finercam(model, x, "3", compare=0)
    with pytest.raises(ng.UserError, match="N > compare"):
        ng.finercam(model, x, "3", compare=5)


# -- ShapleyCAM ----------------------------------------------------------------------------------
class QuadraticProbe(nn.Module):
    """y = sum_c w_c mean_hw(A_c^2): g = 2 w A / hw, H A = 2 w A / hw, so g - HA/2 = w A / hw."""

    def __init__(self, w):
        super().__init__()
        self.feat = nn.Identity()
        self.register_buffer("w", torch.tensor(w))

    def forward(self, x):
        a = self.feat(x)
        return ((a ** 2).mean((2, 3)) * self.w).sum(1, keepdim=True)


def test_shapleycam_by_hand_on_a_curved_target():
    x = torch.tensor([[[[1.0, 2.0], [3.0, 4.0]]], [[[0.0, -1.0], [2.0, 1.0]]]]).repeat(1, 2, 1, 1)
    x[:, 1] *= -1.5
    model = QuadraticProbe([1.0, 2.0])
    hw = 4
    weights = (model.w[None, :, None, None] * x / hw).mean((2, 3), keepdim=True)
    expected = (weights * x).sum(1).clamp(min=0)
    assert torch.allclose(ng.shapleycam(model, x, "feat", target=0, layout="nchw"), expected, atol=1e-6)
    # Grad-CAM sees twice those weights: the second-order term is what ShapleyCAM takes away
    assert torch.allclose(ng.gradcam(model, x, "feat", target=0, layout="nchw"), 2 * expected, atol=1e-6)


def test_shapleycam_equals_gradcam_through_relu_networks():
    model = tiny_net()
    x = torch.rand(3, 3, 8, 8, generator=torch.Generator().manual_seed(3))
    assert torch.allclose(ng.shapleycam(model, x, ["1", "3"], target=[0, 2, 4])["3"],
                          ng.gradcam(model, x, "3", target=[0, 2, 4]), atol=1e-7)
    top = ng.shapleycam(model, x, "3", target=ng.TopClass(2))
    assert top.shape == (3, 2, 8, 8)
    assert torch.allclose(top, ng.gradcam(model, x, "3", target=ng.TopClass(2)), atol=1e-7)


# -- FullGrad ------------------------------------------------------------------------------------
def test_fullgrad_by_hand():
    # conv1x1 (w = 1, b = 0.5) -> ReLU -> mean; conv output [[1.5, -1.5], [3.5, 0.5]]: the ReLU passes
    # three positions. Input term |x g|, g = w / 4 where passed: [[1/4, 0], [3/4, 0]] -> scaled [[1/3, 0], [1, 0]];
    # bias term |b G|, G = 1/4 where passed, else 0 -> scaled: [[1, 0], [1, 1]].
    conv = set_conv1x1(nn.Conv2d(1, 1, 1), [[1.0]])
    with torch.no_grad():
        conv.bias.fill_(0.5)
    model = nn.Sequential(conv, nn.ReLU(), nn.AdaptiveAvgPool2d(1), nn.Flatten())
    x = torch.tensor([[[[1.0, -2.0], [3.0, 0.0]]]])
    expected = torch.tensor([[[1 / 3 + 1, 0.0], [2.0, 1.0]]])
    assert torch.allclose(ng.fullgrad(model, x, target=0), expected, atol=1e-6)


def test_fullgrad_reads_the_effective_bias_of_a_batch_norm():
    from netgaze.methods.fullgrad import bias_layers

    bn = nn.BatchNorm2d(2).eval()
    with torch.no_grad():
        bn.running_mean.copy_(torch.tensor([1.0, -2.0]))
        bn.running_var.copy_(torch.tensor([4.0, 1.0]))
        bn.weight.copy_(torch.tensor([2.0, 3.0]))
        bn.bias.copy_(torch.tensor([0.5, 0.0]))
    (_, bias), = bias_layers(nn.Sequential(bn))
    x = torch.randn(1, 2, 1, 1)
    assert torch.allclose(bias, bn(torch.zeros(1, 2, 1, 1))[0, :, 0, 0], atol=1e-5)   # the output for a 0 input
    assert torch.allclose(bias, torch.tensor([0.5 - 1 * 2 / (4 + 1e-5) ** 0.5, 0 + 2 * 3 / (1 + 1e-5) ** 0.5]))
    assert x.shape == (1, 2, 1, 1)


# -- all of them ---------------------------------------------------------------------------------
QUICK = {"fem": {"k": 1.0}, "kpca_cam": {}, "finercam": {}, "shapleycam": {}}


def _run(name, model, x, layer, target=None, **extra):
    return ng.methods.METHODS[name](model, x, layer, target, **QUICK[name], **extra)


@pytest.mark.parametrize("name", list(QUICK))
def test_batch_equals_samples_and_many_layers_equal_one_at_a_time(name):
    model = tiny_net()
    x = torch.rand(3, 3, 8, 8, generator=torch.Generator().manual_seed(4))
    batch = _run(name, model, x, "3", target=[0, 2, 4])
    singles = torch.cat([_run(name, model, x[i:i + 1], "3", target=[c]) for i, c in enumerate([0, 2, 4])])
    assert batch.shape == (3, 8, 8) and (batch >= 0).all() and batch.max() > 0
    assert torch.allclose(batch, singles, atol=1e-5 * float(singles.abs().max()) + 1e-9)
    together = _run(name, model, x, ["1", "3"], target=[0, 2, 4])
    for one in ["1", "3"]:
        alone = _run(name, model, x, one, target=[0, 2, 4])
        assert torch.allclose(together[one], alone, atol=1e-5 * float(alone.abs().max()) + 1e-9)


@pytest.mark.parametrize("name", list(QUICK))
def test_channels_last_and_token_layers_equal_channels_first(name):
    net = tiny_net()
    x = torch.rand(2, 3, 8, 8, generator=torch.Generator().manual_seed(5))
    first = _run(name, net, x, "3", target=[1, 3])
    last = _run(name, ChannelsLast(net), x, "last", target=[1, 3], layout="nhwc")
    tokens = _run(name, Tokens(net), x, "tokens", target=[1, 3], layout="tokens")
    assert torch.allclose(first, last, atol=1e-5 * float(first.abs().max()) + 1e-9)
    assert torch.allclose(first, tokens, atol=1e-5 * float(first.abs().max()) + 1e-9)


@pytest.mark.parametrize("name", [*QUICK, "fullgrad"])
def test_on_resnet18_in_train_mode_the_model_is_left_untouched(name, snapshot):
    import torchvision

    torch.manual_seed(0)
    model = torchvision.models.resnet18(num_classes=7).train()
    x = torch.rand(2, 3, 64, 64)
    snap = snapshot(model)
    method = ng.methods.METHODS[name]
    result = method(model, x, "layer3", **QUICK[name]) if name in QUICK else method(model, x)
    snap.assert_unchanged()
    assert result.shape == (2, 64, 64) and torch.isfinite(result).all() and result.max() > 0
    if name not in ("fem", "kpca_cam"):           # class-agnostic methods read no target
        with pytest.raises(ng.UserError, match="out of range"):
            method(model, x, "layer3", ng.Class([9, 9])) if name in QUICK else method(model, x, ng.Class([9, 9]))
        snap.assert_unchanged()


def test_registered_for_the_cli_and_the_explorer():
    from netgaze.methods import CAM_METHODS, GRADIENT_METHODS, METHODS

    for name in QUICK:
        assert METHODS[name] is getattr(ng, name) and name in CAM_METHODS
    assert METHODS["fullgrad"] is ng.fullgrad and "fullgrad" in GRADIENT_METHODS

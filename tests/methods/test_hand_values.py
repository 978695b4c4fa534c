"""Explanations of toy models with hand-set weights against values computed by hand."""
import pytest
import torch
import torch.nn.functional as F

import netgaze as ng
from toys import TwoHeads, gap_classifier, relu_net, scaled_image_model

X = torch.tensor([[[[1.0, 2.0], [3.0, 4.0]]]])  # [1, 1, 2, 2]


def test_gradcam_top_class_by_hand():
    # logits = W @ mean(A): mean(A1) = 2.5, mean(A2) = -2.5 -> [-2.5, 5.0], top class 1.
    # d logit1 / dA = W[1]/4 = [0.25, -0.25] per pixel; weights = those means;
    # cam = 0.25 * x + (-0.25) * (-x) = 0.5 x.
    cam = ng.gradcam(gap_classifier(), X, layer="0")
    assert torch.allclose(cam, 0.5 * X[:, 0])


def test_gradcam_relu_zeroes_negative_evidence():
    # class 0: weights [0.5, 0.75]; cam = 0.5 x - 0.75 x = -0.25 x -> ReLU -> 0.
    cam = ng.gradcam(gap_classifier(), X, layer="0", target=ng.Class(0))
    assert torch.equal(cam, torch.zeros_like(cam))


def test_gradcam_equals_cam_over_hw_before_relu():
    # Identity on conv -> GAP -> linear: Grad-CAM = CAM / (H*W) before the ReLU.
    torch.manual_seed(0)
    model = torch.nn.Sequential(torch.nn.Conv2d(3, 6, 3), torch.nn.AdaptiveAvgPool2d(1),
                                torch.nn.Flatten(), torch.nn.Linear(6, 4))
    x = torch.randn(3, 3, 9, 9)
    acts = model[0](x).detach()
    hw = acts.shape[-1] * acts.shape[-2]
    for c in range(4):
        cam = torch.einsum("k,bkhw->bhw", model[3].weight[c].detach(), acts) / hw
        got = ng.gradcam(model, x, layer="0", target=ng.Class(c))
        expected = F.interpolate(cam.clamp(min=0)[:, None], size=(9, 9), mode="bilinear", align_corners=False)[:, 0]
        assert torch.allclose(got, expected, atol=1e-6)


def test_hirescam_equals_gradcam_after_global_average_pooling():
    torch.manual_seed(1)
    model = torch.nn.Sequential(torch.nn.Conv2d(3, 5, 3), torch.nn.AdaptiveAvgPool2d(1),
                                torch.nn.Flatten(), torch.nn.Linear(5, 3))
    x = torch.randn(2, 3, 8, 8)
    assert torch.allclose(ng.hirescam(model, x, "0"), ng.gradcam(model, x, "0"), atol=1e-6)


def test_gradcam_pp_xgradcam_layercam_by_hand():
    # Top class 1: g = [0.25, -0.25], A1 = x, A2 = -x, sum(A1) = 10, sum(A2) = -10.
    model = gap_classifier()
    g1, g2 = 0.25, -0.25
    s1, s2 = 10.0, -10.0
    # Grad-CAM++: alpha_k = g^2 / (2 g^2 + S_k g^3); w_k = sum_ij alpha_k * relu(g_k)
    alpha1 = g1 ** 2 / (2 * g1 ** 2 + s1 * g1 ** 3)
    w1 = 4 * alpha1 * max(g1, 0)
    assert torch.allclose(ng.gradcam_pp(model, X, "0"), (w1 * X[:, 0]).clamp(min=0))
    # XGrad-CAM: w_k = sum(g A) / sum(A): w1 = 0.25, w2 = sum(-0.25 * -x) / -10 = -0.25 -> 0.5 x
    assert torch.allclose(ng.xgradcam(model, X, "0"), 0.5 * X[:, 0], atol=1e-6)
    # LayerCAM: relu(g) * A summed: 0.25 * x + 0 = 0.25 x
    assert torch.allclose(ng.layercam(model, X, "0"), 0.25 * X[:, 0])


def test_scorecam_by_hand():
    # A1 = x, A2 = 2x have the same min-max mask, so both channels score the same:
    # softmax weights 0.5 / 0.5 and cam = 0.5 x + 0.5 * 2x = 1.5 x.
    conv = torch.nn.Conv2d(1, 2, 1, bias=False)
    with torch.no_grad():
        conv.weight.copy_(torch.tensor([1.0, 2.0]).view(2, 1, 1, 1))
    model = torch.nn.Sequential(conv, torch.nn.AdaptiveAvgPool2d(1), torch.nn.Flatten(),
                                torch.nn.Linear(2, 1, bias=False))
    torch.nn.init.ones_(model[3].weight)
    assert torch.allclose(ng.scorecam(model, X, "0", target=0), 1.5 * X[:, 0])


@pytest.mark.parametrize("inplace", [False, True])
def test_saliency_and_guided_backprop_by_hand(inplace):
    # x = [1, -1]; z1 = x, z2 = -x; h = relu(z); score = mean(2 h1 - 3 h2).
    # d/dh1 = 1, d/dh2 = -1.5 per pixel. Plain: pixel0 via z1 -> 1; pixel1 via z2 -> (-1)(-1.5) = 1.5.
    # Guided: the negative gradient -1.5 at h2 is dropped -> [1, 0].
    x = torch.tensor([[[[1.0, -1.0]]]])
    model = relu_net(inplace)
    assert torch.allclose(ng.saliency(model, x, target=0), torch.tensor([[[[1.0, 1.5]]]]))
    assert torch.allclose(ng.guided_backprop(model, x, target=0), torch.tensor([[[[1.0, 0.0]]]]))


def test_guided_backprop_through_leaky_relu_by_hand():
    # LeakyReLU(0.1): h1 = [1, -0.1], h2 = [-0.1, 1]; d/dh1 = 1, d/dh2 = -1.5 per pixel.
    # Plain: pixel0 = 1 + (-1)(0.1)(-1.5) = 1.15; pixel1 = (0.1)(1) + (-1)(1)(-1.5) = 1.6.
    # Guided drops the negative -1.5: pixel0 = 1, pixel1 = 0.1.
    x = torch.tensor([[[[1.0, -1.0]]]])
    model = relu_net(activation=torch.nn.LeakyReLU(0.1))
    assert torch.allclose(ng.saliency(model, x, target=0), torch.tensor([[[[1.15, 1.6]]]]))
    assert torch.allclose(ng.guided_backprop(model, x, target=0), torch.tensor([[[[1.0, 0.1]]]]))


def test_guided_backprop_without_relu_is_the_gradient():
    torch.manual_seed(2)
    model = torch.nn.Sequential(torch.nn.Conv2d(3, 4, 3), torch.nn.Tanh(), torch.nn.Flatten(),
                                torch.nn.LazyLinear(5))
    x = torch.randn(2, 3, 6, 6)
    model(x)
    assert torch.allclose(ng.guided_backprop(model, x, target=[1, 3]), ng.saliency(model, x, target=[1, 3]))


def test_guided_gradcam_is_guided_backprop_times_gradcam():
    torch.manual_seed(3)
    model = torch.nn.Sequential(torch.nn.Conv2d(3, 4, 3, padding=1), torch.nn.ReLU(inplace=True),
                                torch.nn.Conv2d(4, 4, 3, padding=1), torch.nn.ReLU(),
                                torch.nn.AdaptiveAvgPool2d(1), torch.nn.Flatten(), torch.nn.Linear(4, 3))
    x = torch.randn(2, 3, 7, 7)
    expected = ng.guided_backprop(model, x) * ng.gradcam(model, x, "2")[:, None]
    assert torch.allclose(ng.guided_gradcam(model, x, "2"), expected, atol=1e-7)


def test_area_box_on_a_dense_output():
    # output = 2 x; Area sums output over the box -> d/dx = 2 inside the box, 0 outside.
    x = torch.rand(2, 1, 5, 6)
    grad = ng.saliency(scaled_image_model(2.0), x, target=ng.Area(box=(1, 2, 3, 5)))
    expected = torch.zeros_like(x)
    expected[:, :, 1:3, 2:5] = 2.0
    assert torch.equal(grad, expected)


def test_area_mask_per_sample_and_channel():
    # Two output channels A1 = x, A2 = 3x; channel=1 and a per-sample mask of weights.
    model = TwoHeads()
    x = torch.rand(2, 1, 3, 3)
    mask = torch.zeros(2, 3, 3)
    mask[0, 0, 0] = 1.0
    mask[1, 2, 1] = 0.5
    grad = ng.saliency(model, x, target=ng.Area(mask=mask, channel=1), output=0)
    assert torch.allclose(grad[:, 0], 3.0 * mask)


def test_latent_target_through_output_selector():
    # latent = mean over space of [x, 3x]: d latent_1 / dx = 3 / (H W)
    x = torch.rand(1, 1, 2, 2)
    grad = ng.saliency(TwoHeads(), x, target=ng.Latent(1), output=1)
    assert torch.allclose(grad, torch.full_like(x, 0.75))


def test_area_gradcam_on_a_dense_output():
    # Layer "encoder" output = [x, 3x]; score = sum over box of channel 0 = sum of x in box.
    # grads: channel 0 = 1 inside the box, channel 1 = 0; weights = [|box| / HW, 0].
    x = torch.rand(1, 1, 4, 4) + 0.1
    cam = ng.gradcam(TwoHeads(), x, layer="encoder", target=ng.Area(box=(0, 0, 2, 2), channel=0), output=0)
    assert torch.allclose(cam, 4 / 16 * x[:, 0])


def test_integrated_gradients_completeness_and_linear_case():
    torch.manual_seed(4)
    model = torch.nn.Sequential(torch.nn.Conv2d(3, 8, 3), torch.nn.Softplus(), torch.nn.AdaptiveAvgPool2d(1),
                                torch.nn.Flatten(), torch.nn.Linear(8, 3))
    x = torch.randn(2, 3, 8, 8)
    attr = ng.integrated_gradients(model, x, target=2, steps=64)
    gap = model(x)[:, 2] - model(torch.zeros_like(x))[:, 2]
    assert torch.allclose(attr.flatten(1).sum(1), gap.detach(), rtol=1e-3, atol=1e-4)
    # For a linear model, IG = (x - baseline) * gradient exactly.
    linear = scaled_image_model(3.0)
    img = torch.rand(1, 1, 3, 3)
    ig = ng.integrated_gradients(linear, img, target=ng.Area(box=(0, 0, 3, 3)), steps=3)
    assert torch.allclose(ig, 3.0 * img)


def test_smoothgrad_without_noise_is_the_wrapped_method_and_is_seeded():
    torch.manual_seed(5)
    model = torch.nn.Sequential(torch.nn.Conv2d(3, 4, 3), torch.nn.ReLU(), torch.nn.Flatten(), torch.nn.LazyLinear(3))
    x = torch.randn(3, 3, 6, 6)
    model(x)
    assert torch.allclose(ng.smoothgrad(model, x, sigma=0.0, n=4), ng.saliency(model, x), atol=1e-6)
    a = ng.smoothgrad(model, x, n=6, batch_size=6, random_state=7)
    b = ng.smoothgrad(model, x, n=6, batch_size=9, random_state=7)
    assert torch.allclose(a, b, atol=1e-6)
    assert not torch.allclose(a, ng.smoothgrad(model, x, n=6, random_state=8))

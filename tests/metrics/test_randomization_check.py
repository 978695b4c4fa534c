"""Cascading model randomization: the caller's model is untouched; model-blind methods score ~1."""
import numpy as np
import pytest
import torch
import torch.nn as nn
import torch.nn.functional as F

from netgaze.metrics import model_randomization, parametrized_layers, spearman, ssim


def small_cnn():
    torch.manual_seed(0)
    return nn.Sequential(nn.Conv2d(3, 8, 3, padding=1), nn.ReLU(), nn.Conv2d(8, 8, 3, padding=1), nn.ReLU(),
                         nn.AdaptiveAvgPool2d(1), nn.Flatten(), nn.Linear(8, 4))


def edge_detector(model, x, target=None, output=None):
    """Sobel edge magnitude of the image: ignores the model completely."""
    gray = x.mean(1, keepdim=True)
    k = torch.tensor([[1.0, 0, -1], [2, 0, -2], [1, 0, -1]]).view(1, 1, 3, 3)
    gx, gy = F.conv2d(gray, k, padding=1), F.conv2d(gray, k.transpose(2, 3), padding=1)
    return (gx ** 2 + gy ** 2).sqrt()[:, 0]


def test_caller_model_is_bit_identical_and_keeps_its_mode():
    model = small_cnn()
    model.train()
    before = {k: v.clone() for k, v in model.state_dict().items()}
    x = torch.rand(3, 3, 12, 12, generator=torch.Generator().manual_seed(0))
    result = model_randomization(model, x, "gradcam", layer="2")
    after = model.state_dict()
    assert before.keys() == after.keys()
    assert all(torch.equal(before[k], after[k]) for k in before)
    assert model.training and all(p.requires_grad for p in model.parameters())
    assert result.layers == ["6", "2", "0"]
    assert result.spearman.shape == (3,) and result.spearman_per_image.shape == (3, 3)


def test_model_blind_method_scores_one_and_gradcam_falls():
    model = small_cnn()
    x = torch.rand(4, 3, 12, 12, generator=torch.Generator().manual_seed(1))
    blind = model_randomization(model, x, edge_detector, with_ssim=True)
    np.testing.assert_allclose(blind.spearman, 1.0)
    np.testing.assert_allclose(blind.ssim, 1.0)
    grad = model_randomization(model, x, "saliency")
    assert grad.spearman[-1] < 0.9


def test_layer_order_is_output_to_input():
    assert parametrized_layers(small_cnn()) == ["6", "2", "0"]
    with pytest.raises(ValueError, match="unknown layer"):
        model_randomization(small_cnn(), torch.rand(1, 3, 8, 8), "gradcam", layers=["9"])


def test_spearman_and_ssim_known_values():
    a = torch.arange(16.0).view(1, 4, 4)
    assert spearman(a, a ** 3)[0] == pytest.approx(1.0)  # monotone: ranks identical
    assert spearman(a, -a)[0] == pytest.approx(-1.0)
    assert spearman(torch.zeros(1, 4, 4), a)[0] == 0.0
    assert spearman(torch.zeros(1, 4, 4), torch.ones(1, 4, 4))[0] == 1.0
    assert ssim(a, 2 * a + 1)[0] == pytest.approx(1.0)  # equal after min-max normalisation

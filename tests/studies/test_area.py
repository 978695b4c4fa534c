"""Area explanations of reconstructions: hand-computed gradients on toy decoders, the mass-share measure."""
from __future__ import annotations

import json

import numpy as np
import pytest
import torch
import torch.nn as nn

import netgaze as ng
from netgaze.lab.models.vae import ConvVAE, LinearVAE
from netgaze.lab.reconstruct import train_reconstruction
from netgaze.studies.area import area_explanations, area_mass_share, area_study, draw_box, encoder_stages, grow_box


class ToyAutoencoder(nn.Module):
    """x [B, 1, 2, 2] -> W2 relu(W1 x) as [B, 1, 2, 2], returned like a VAE: (recon, mu, logvar)."""

    def __init__(self):
        super().__init__()
        self.enc = nn.Linear(4, 4, bias=False)
        self.relu = nn.ReLU()
        self.dec = nn.Linear(4, 4, bias=False)
        with torch.no_grad():
            self.enc.weight.copy_(torch.tensor([[1., 0, 0, 0], [0, 1, 0, 0], [0, 0, 1, 0], [1, 1, 0, 0]]))
            self.dec.weight.copy_(torch.tensor([[1., -1, 0, 0], [0, 1, 0, -2], [1, 0, 1, 0], [0, 0, 0, 1]]))

    def forward(self, x):
        h = self.relu(self.enc(x.flatten(1)))
        return self.dec(h).view(-1, 1, 2, 2), h, torch.zeros_like(h)


def test_area_gradients_on_a_hand_set_toy_decoder(snapshot):
    model = ToyAutoencoder()
    snap = snapshot(model)
    x = torch.tensor([[[[1.0, 2.0], [-1.0, 0.5]]]])
    box = (0, 0, 1, 2)  # the top row: outputs 0 and 1
    # W1 x = [1, 2, -1, 3] -> ReLU mask [1, 1, 0, 1]; d(out0 + out1)/dh = W2[0] + W2[1] = [1, 0, 0, -2]
    # plain: W1^T ([1, 0, 0, -2] * mask) = [1 - 2, -2, 0, 0]
    plain = ng.saliency(model, x, target=ng.Area(box=box), output=0)
    assert plain.flatten().tolist() == [-1.0, -2.0, 0.0, 0.0]
    # guided: the ReLU passes only the positive part [1, 0, 0, 0] -> W1^T [1, 0, 0, 0] = [1, 0, 0, 0]
    guided = ng.guided_backprop(model, x, target=ng.Area(box=box), output=0)
    assert guided.flatten().tolist() == [1.0, 0.0, 0.0, 0.0]
    # the bottom-right pixel alone: d out3 / dh = W2[3] = [0, 0, 0, 1] -> W1^T = [1, 1, 0, 0]
    corner = ng.guided_backprop(model, x, target=ng.Area(box=(1, 1, 2, 2)), output=0)
    assert corner.flatten().tolist() == [1.0, 1.0, 0.0, 0.0]
    snap.assert_unchanged()


class ToyConvDecoder(nn.Module):
    """A 1x1 conv with weight 2 is the whole 'reconstruction'."""

    def __init__(self):
        super().__init__()
        self.conv = nn.Conv2d(1, 1, 1, bias=False)
        with torch.no_grad():
            self.conv.weight.fill_(2.0)

    def forward(self, x):
        out = self.conv(x)
        return out, out.flatten(1), out.flatten(1)


def test_area_gradcam_on_a_toy_conv():
    x = (torch.arange(9.0) - 4).view(1, 1, 3, 3)
    cam = ng.gradcam(ToyConvDecoder(), x, layer="conv", target=ng.Area(box=(0, 0, 2, 2)), output=0)
    # d(sum of a 2x2 box)/dA is 1 on 4 of 9 cells -> weight 4/9; CAM = relu(4/9 * 2x)
    assert torch.allclose(cam, (8 / 9 * x[:, 0]).clamp(min=0), atol=1e-6)


def test_area_mass_share_on_known_maps():
    ones = torch.ones(1, 10, 10)
    assert area_mass_share(ones, (2, 2, 4, 4)).item() == pytest.approx(4 / 100)
    assert area_mass_share(ones, (2, 2, 4, 4), margin=1).item() == pytest.approx(16 / 100)
    assert area_mass_share(ones, (0, 0, 2, 2), margin=1).item() == pytest.approx(9 / 100)  # clipped at the corner
    signed = torch.zeros(1, 2, 6, 6)
    signed[0, 0, 1:3, 1:3] = -1.0  # 4 inside, absolute value counts
    signed[0, 1, 5, 5] = 2.0
    signed[0, 0, 5, 5] = 2.0  # two channels of one pixel outside: 4
    assert area_mass_share(signed, (1, 1, 3, 3)).item() == pytest.approx(0.5)
    assert area_mass_share(torch.zeros(2, 4, 4), (0, 0, 2, 2)).tolist() == [0.0, 0.0]
    assert grow_box((1, 1, 3, 3), 2, (4, 5)) == (0, 0, 4, 5)


def test_encoder_stages_and_box_outline():
    assert encoder_stages(ConvVAE(width=4)) == ["encoder.2", "encoder.5"]
    assert encoder_stages(ConvVAE(3, 64, width=4)) == ["encoder.2", "encoder.5", "encoder.8", "encoder.11"]
    assert encoder_stages(LinearVAE(hidden=8)) == []
    tiles = draw_box(np.zeros((1, 6, 6, 3), np.uint8), (1, 1, 4, 5))
    outline = tiles[0, :, :, 0] == 255
    assert outline.sum() == 2 * 4 + 2 * 1 and not outline[2, 2] and outline[3, 4]


def test_area_explanations_of_a_conv_vae_match_the_methods():
    torch.manual_seed(0)
    model = ConvVAE(width=4, latent=3)
    x = torch.rand(2, 1, 28, 28)
    out = area_explanations(model, x, (10, 10, 18, 18))
    assert set(out["gradcam"]) == {"encoder.2", "encoder.5"}
    expected = ng.gradcam(model, x, layer="encoder.5", target=ng.Area(box=(10, 10, 18, 18)), output=0)
    assert torch.allclose(out["gradcam"]["encoder.5"], expected)
    assert torch.allclose(out["reconstruction"], model.eval()(x)[0])


def test_area_study_on_a_trained_run(tmp_path):
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        _area_study_checks(tmp_path)
    finally:
        torch.set_num_threads(before)


def _area_study_checks(tmp_path):
    run = train_reconstruction("digits", "vae-conv", latent=4, epochs=1, batch_size=256, out=tmp_path / "conv",
                               model_args={"width": 4, "activation": "relu"}, progress=False)
    test = run.dataset("test")
    result = area_study(run, dataset=test, box=(10, 10, 18, 18), margin=3, n_show=3)
    inside, wider = result.maps["inside"], result.maps["inside_margin"]
    assert inside.shape == (360,) and bool((inside <= wider + 1e-6).all())
    images, _ = test.tensors()
    guided = ng.guided_backprop(run.model, images[:5], target=ng.Area(box=(10, 10, 18, 18)), output=0)
    assert torch.allclose(inside[:5], area_mass_share(guided, (10, 10, 18, 18)), atol=1e-6)
    numbers = json.loads(result.path.read_text())["numbers"]
    assert numbers["guided_mass_inside_box"] == pytest.approx(float(inside.mean()), abs=1e-5)
    assert numbers["box_area_share"] == pytest.approx(64 / 784, abs=1e-5)
    assert numbers["box_margin_area_share"] == pytest.approx(14 * 14 / 784, abs=1e-5)
    assert set(result.maps["gradcam"]) == {"encoder.2", "encoder.5"}
    assert (run.artifacts / "area.png").is_file()

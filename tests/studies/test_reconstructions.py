"""Denoising pairs and prior samples: numbers recomputed by hand from the models."""
from __future__ import annotations

import pytest
import torch
import torch.nn as nn

from netgaze.lab.models.vae_loss import corrupt
from netgaze.lab.reconstruct import train_reconstruction
from netgaze.studies.reconstructions import denoising, judge, prior_samples


@pytest.fixture(scope="module")
def runs(tmp_path_factory):
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    root = tmp_path_factory.mktemp("family")
    made = {name: train_reconstruction("digits", model, latent=3, epochs=1, batch_size=256, out=root / name,
                                       model_args={"hidden": 16, **extra}, progress=False)
            for name, model, extra in (("vae", "vae-linear", {}), ("dvae", "dvae", {"noise": 0.4, "erase": 0.5}),
                                       ("cvae", "cvae", {}))}
    yield made
    torch.set_num_threads(before)


def test_denoising_numbers_are_the_pixel_errors(runs):
    run = runs["dvae"]
    result = denoising(run, n=4, seed=3)
    test = run.dataset("test")
    images, _ = test.tensors()
    noisy = corrupt(images, 0.4, 0.5, generator=torch.Generator().manual_seed(3))  # the model's own corruption
    assert torch.equal(result.maps["noisy"], noisy)
    with torch.no_grad():
        rebuilt = run.model.eval()(noisy)[0]
    numbers = result.manifest["numbers"]
    assert abs(numbers["mse_corrupted"] - float((noisy - images).pow(2).mean())) < 1e-6
    assert abs(numbers["mse_rebuilt"] - float((rebuilt - images).pow(2).mean())) < 1e-6
    per_picture = ((rebuilt - images).pow(2).flatten(1).mean(1) < (noisy - images).pow(2).flatten(1).mean(1))
    assert abs(numbers["share_improved"] - float(per_picture.float().mean())) < 1e-6
    assert result.manifest["tables"][0]["rows"][0][1] == numbers["mse_corrupted"]
    with pytest.raises(ValueError, match="corruption"):
        denoising(runs["vae"])  # a plain VAE has no corruption of its own


def test_prior_samples_decode_the_same_draws(runs):
    class Constant(nn.Module):
        def forward(self, x):
            return torch.tensor([[0.0, 3.0, 0.0]]).repeat(len(x), 1)

    result = prior_samples([runs["vae"], runs["cvae"]], names=["plain", "conditional"], n=5, seed=7,
                           classifier=Constant(), judge_n=20)
    z = torch.randn(20, 3, generator=torch.Generator().manual_seed(7))
    with torch.no_grad():
        assert torch.allclose(result.maps["plain"], runs["vae"].model.decode(z[:5]), atol=1e-6)
        labels = torch.arange(20) % 10
        assert torch.allclose(result.maps["conditional"], runs["cvae"].model.decode(z[:5], labels[:5]), atol=1e-6)
    plain = result.manifest["numbers"]["per_model"]["plain"]
    assert plain["classes_seen"] == 1 and plain["predicted_counts"][1] == 20
    softmax = torch.tensor([0.0, 3.0, 0.0]).softmax(0)[1]
    assert abs(plain["mean_confidence"] - float(softmax)) < 1e-6
    # the conditional model's draws carry labels 0..9 in turn; the constant classifier says 1 every time
    assert result.manifest["numbers"]["per_model"]["conditional"]["judged_as_label"] == pytest.approx(2 / 20)
    predicted, _ = judge(Constant(), torch.zeros(4, 1, 28, 28))
    assert predicted.tolist() == [1, 1, 1, 1]

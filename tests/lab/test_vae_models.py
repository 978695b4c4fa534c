"""VAE models: shapes, gradients, the KL/BCE formulas on hand values, eval determinism, corruption, VAE-GAN gating."""
from __future__ import annotations

import math

import pytest
import torch

import netgaze as ng
from netgaze.lab.models import build_model
from netgaze.lab.models.vae import LinearVAE
from netgaze.lab.models.vae_loss import corrupt, kl_divergence, reconstruction_error, vae_loss
from netgaze.lab.models.vaegan import VAEGAN

SMALL = {
    "vae-linear": dict(hidden=16),
    "vae-conv": dict(width=4),
    "cvae": dict(num_classes=3, hidden=16),
    "dvae": dict(hidden=16),
    "vaegan": dict(width=4),
}


pytestmark = pytest.mark.usefixtures("one_thread")


def _call(model, x, y):
    return model(x, y) if model.conditional else model(x)


@pytest.mark.parametrize("name", sorted(SMALL))
@pytest.mark.parametrize("channels,size", [(1, 28), (3, 64)])
def test_shapes_and_gradients(name, channels, size):
    torch.manual_seed(0)
    model = build_model(name, in_channels=channels, image_size=size, latent=5, **SMALL[name])
    x = torch.rand(4, channels, size, size)
    y = torch.tensor([0, 1, 2, 0])
    recon, mu, logvar = _call(model.train(), x, y)
    assert recon.shape == x.shape and mu.shape == (4, 5) and logvar.shape == (4, 5)
    assert float(recon.detach().min()) >= 0 and float(recon.detach().max()) <= 1
    vae_loss(recon, x, mu, logvar)["loss"].backward()
    trained = [n for n, p in model.named_parameters() if not n.startswith("discriminator")]
    for n, p in model.named_parameters():
        if n in trained:
            assert p.grad is not None and torch.isfinite(p.grad).all(), n
    # every weight matrix of encoder and decoder receives a non-zero gradient
    assert all(float(p.grad.abs().sum()) > 0 for n, p in model.named_parameters() if n in trained and p.dim() > 1)


def test_kl_closed_form_on_hand_values():
    mu = torch.tensor([[1.0, 0.0]])
    logvar = torch.tensor([[0.0, math.log(2.0)]])
    # -0.5 * [(1 + 0 - 1 - 1) + (1 + log 2 - 0 - 2)] = 1 - log(2) / 2
    assert kl_divergence(mu, logvar).item() == pytest.approx(1 - math.log(2) / 2, abs=1e-6)
    q = torch.distributions.Normal(mu, (0.5 * logvar).exp())
    p = torch.distributions.Normal(torch.zeros(2), torch.ones(2))
    assert kl_divergence(mu, logvar).item() == pytest.approx(torch.distributions.kl_divergence(q, p).sum().item(),
                                                             abs=1e-6)
    assert kl_divergence(torch.zeros(3, 4), torch.zeros(3, 4)).tolist() == [0.0, 0.0, 0.0]


def test_reconstruction_errors_on_hand_values():
    recon = torch.full((1, 1, 2, 2), 0.5)
    target = torch.tensor([[[[1.0, 0.0], [1.0, 0.5]]]])
    # BCE per pixel: -[t log r + (1-t) log(1-r)] = log 2 for r = 0.5, whatever t
    assert reconstruction_error(recon, target, "bce").item() == pytest.approx(4 * math.log(2), abs=1e-6)
    assert reconstruction_error(recon, target, "mse").item() == pytest.approx(0.25 * 3, abs=1e-6)
    parts = vae_loss(recon, target, torch.tensor([[1.0, 0.0]]), torch.tensor([[0.0, math.log(2.0)]]), "mse")
    assert parts["loss"].item() == pytest.approx(0.75 + 1 - math.log(2) / 2, abs=1e-6)
    with pytest.raises(ValueError, match="bce, mse"):
        reconstruction_error(recon, target, "l1")


def test_linear_vae_is_the_classic_784_400_20():
    model = build_model("vae-linear")
    assert sum(p.numel() for p in model.parameters()) == 652824  # fc1, fc21, fc22, fc3, fc4 of the example
    assert [m.out_features for m in model.modules() if isinstance(m, torch.nn.Linear)] == [400, 20, 20, 400, 784]


@pytest.mark.parametrize("name", sorted(SMALL))
def test_eval_uses_the_mean_and_is_deterministic(name):
    torch.manual_seed(0)
    model = build_model(name, latent=3, **SMALL[name])
    x, y = torch.rand(5, 1, 28, 28), torch.tensor([0, 1, 2, 1, 0])
    model.eval()
    r1, mu, _ = _call(model, x, y)
    r2, _, _ = _call(model, x, y)
    assert torch.equal(r1, r2)
    assert torch.allclose(r1, model.decode(mu, y if model.conditional else None))
    model.train()
    torch.manual_seed(1)
    r3 = _call(model, x, y)[0]
    assert not torch.allclose(r3, r1)  # training samples z (and a dvae corrupts its input)


def test_conditional_vae_labels():
    torch.manual_seed(0)
    model = build_model("cvae", num_classes=3, latent=2, hidden=8).eval()
    x = torch.rand(2, 1, 28, 28)
    with pytest.raises(ValueError, match="needs labels"):
        model(x)
    with pytest.raises(ValueError, match=r"0\.\.2"):
        model(x, torch.tensor([0, 3]))
    a, b = model(x, torch.tensor([0, 0]))[0], model(x, torch.tensor([1, 1]))[0]
    assert not torch.allclose(a, b)
    assert torch.equal(model.conditioned(1)(x)[0], b)
    with pytest.raises(ValueError, match="not conditional"):
        build_model("vae-linear", hidden=8)(x, torch.tensor([0, 0]))


def test_mean_encoder_explains_a_latent_unit():
    torch.manual_seed(0)
    model = build_model("vae-linear", hidden=8, latent=3)
    x = torch.rand(2, 1, 28, 28)
    grad = ng.saliency(model.mean_encoder(), x, target=ng.Latent(1))
    xr = x.clone().requires_grad_(True)
    expected = torch.autograd.grad(model.eval().encode(xr)[0][:, 1].sum(), xr)[0]
    assert torch.allclose(grad, expected, atol=1e-6)


def test_corrupt_noise_and_erasing():
    x = torch.ones(64, 1, 20, 20)
    erased = corrupt(x, noise=0.0, erase=1.0, generator=torch.Generator().manual_seed(0))
    assert torch.equal(x, torch.ones_like(x))  # input untouched
    zero_share = (erased == 0).float().flatten(1).mean(1)
    assert (zero_share > 0).all()  # erase=1: every sample loses a rectangle
    assert float(zero_share.min()) >= 0.02 * 0.5 and float(zero_share.max()) <= 0.2 * 1.6  # area 2-20% (rounding)
    for sample in erased[:, 0]:  # the erased region is one rectangle
        rows, cols = (sample == 0).nonzero(as_tuple=True)
        assert (sample[rows.min():rows.max() + 1, cols.min():cols.max() + 1] == 0).all()
    kept = corrupt(x, noise=0.0, erase=0.0)
    assert torch.equal(kept, x)
    noisy = corrupt(torch.full((2000, 1, 4, 4), 0.5), noise=0.1, erase=0.0, generator=torch.Generator().manual_seed(0))
    assert float(noisy.std()) == pytest.approx(0.1, rel=0.05)
    a = corrupt(x, 0.3, 0.5, generator=torch.Generator().manual_seed(3))
    b = corrupt(x, 0.3, 0.5, generator=torch.Generator().manual_seed(3))
    assert torch.equal(a, b)


def test_dvae_corrupts_only_in_training():
    torch.manual_seed(0)
    model = build_model("dvae", hidden=8, latent=2, noise=0.0, erase=1.0)
    clean = LinearVAE(hidden=8, latent=2)
    clean.load_state_dict(model.state_dict())
    x = torch.rand(3, 1, 28, 28)
    assert torch.equal(model.eval()(x)[1], clean.eval()(x)[1])
    assert not torch.allclose(model.train()(x)[1], clean.train()(x)[1])  # mu of the erased input differs
    with pytest.raises(ValueError, match="noise > 0 or erase > 0"):
        build_model("dvae", noise=0.0, erase=0.0)


def test_vaegan_gates_and_separate_updates():
    model = VAEGAN(latent=4, width=4)
    # equilibrium 0.68, margin 0.35: D trains unless a BCE < 0.33; the decoder unless a BCE > 1.03
    assert model.gates(0.7, 0.7) == (True, True)
    assert model.gates(0.2, 0.7) == (False, True)
    assert model.gates(1.2, 0.7) == (True, False)
    assert model.gates(0.2, 1.2) == (True, True)  # both would stop: both train
    # the prior samples' BCE gates too: a discriminator that wins on them pauses
    assert model.gates(0.7, 0.7, 0.2) == (False, True)
    assert model.gates(0.7, 0.7, 1.2) == (True, False)
    assert model.gates(0.7, 0.7, 0.7) == (True, True)
    torch.manual_seed(0)
    x = torch.rand(8, 1, 28, 28)
    opts = model.optimizers(1e-3)
    before = {n: p.detach().clone() for n, p in model.named_parameters()}
    model.gates = lambda *losses: (False, True)  # pin the gates: discriminator frozen this step
    terms = model.train_step(x, opts)
    assert terms["train_dis"] == 0.0 and terms["train_dec"] == 1.0
    changed = {n for n, p in model.named_parameters() if not torch.equal(p, before[n])}
    assert not any(n.startswith("discriminator") for n in changed)
    assert any(n.startswith("decoder") for n in changed) and any(n.startswith("encoder") for n in changed)
    for key in ("kl", "feature", "gan_dec", "discriminator", "pixel_mse"):
        assert math.isfinite(terms[key])
    # layer -1 is the encoder's last conv, not the discriminator's
    assert ng.resolve_layer(model, -1)[0].startswith("encoder.")


@pytest.mark.parametrize("gate_prior", [False, True])
def test_vaegan_gates_read_the_prior_loss_only_when_asked(gate_prior):
    model = VAEGAN(latent=4, width=4, gate_prior=gate_prior)
    seen = []
    model.gates = lambda *losses: seen.append(losses) or (True, True)
    torch.manual_seed(0)
    terms = model.train_step(torch.rand(4, 1, 28, 28), model.optimizers(1e-3))
    assert len(seen) == 1 and len(seen[0]) == (3 if gate_prior else 2)
    assert seen[0][-1] == pytest.approx(terms["dis_prior" if gate_prior else "dis_rec"], rel=1e-6)

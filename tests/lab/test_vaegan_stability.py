"""VAE-GAN stabilisers: feature-stage choice, one-sided label smoothing, accuracies, gating inputs."""
import math

import pytest
import torch
import torch.nn as nn
import torch.nn.functional as F

from netgaze.lab.models.vaegan import VAEGAN, Discriminator


def test_feature_stage_default_is_the_last_and_another_can_be_tapped():
    x28, x64 = torch.rand(2, 1, 28, 28), torch.rand(2, 3, 64, 64)
    d28, d64 = Discriminator(1, 28, 4), Discriminator(3, 64, 4)
    assert d28.feature_stage == 1 and d64.feature_stage == 3  # 28: 14, 7 -> 7x7; 64: 32, 16, 8, 4 -> 4x4
    features, logit = d28(x28)
    assert features.shape == (2, 8, 7, 7) and logit.shape == (2,)
    features, logit = d64(x64)
    assert features.shape == (2, 32, 4, 4) and logit.shape == (2,)
    mid = Discriminator(3, 64, 4, feature_stage=2)
    mid.load_state_dict(d64.state_dict())  # same weights: only the tapped layer differs
    d64.eval(), mid.eval()
    assert mid(x64)[0].shape == (2, 16, 8, 8)
    assert torch.equal(mid(x64)[1], d64(x64)[1])
    assert torch.equal(mid(x64)[0], mid.features[:8](x64))  # conv, lrelu, conv, bn, lrelu, conv, bn, lrelu
    with pytest.raises(ValueError, match="feature_stage must lie in 0..3"):
        Discriminator(3, 64, 4, feature_stage=4)


class _FixedLogits(nn.Module):
    """A stand-in discriminator: zero features, hand-set logits for [real, recon, prior]."""

    def __init__(self, logits: torch.Tensor):
        super().__init__()
        self.logits = logits

    def forward(self, x):
        return x[:, :1, :4, :4] * 0, self.logits


def test_one_sided_label_smoothing_and_accuracies_by_hand():
    torch.manual_seed(0)
    model = VAEGAN(latent=2, width=4, real_label=0.9)
    real, rec, prior = torch.tensor([10.0, -1.0]), torch.tensor([-2.0, 3.0]), torch.tensor([-4.0, -0.5])
    model.discriminator = _FixedLogits(torch.cat([real, rec, prior]))
    terms = model.losses(torch.rand(2, 1, 28, 28))
    sp = F.softplus  # BCE(l, 1) = softplus(-l), BCE(l, 0) = softplus(l)
    hard_real = float(sp(-real).mean())
    smooth_real = float((0.9 * sp(-real) + 0.1 * sp(real)).mean())
    assert terms["dis_real"].item() == pytest.approx(hard_real, rel=1e-5)  # the gates read the hard BCE
    want = smooth_real + float(sp(rec).mean()) + float(sp(prior).mean())
    assert terms["discriminator"].item() == pytest.approx(want, rel=1e-5)
    assert terms["gan_dec"].item() == pytest.approx(float(sp(-rec).mean() + sp(-prior).mean()), rel=1e-5)
    assert (terms["acc_real"].item(), terms["acc_rec"].item(), terms["acc_prior"].item()) == (0.5, 0.5, 1.0)
    # a smoothed label puts a floor under the discriminator's own real loss (the label's entropy,
    # 0.325 at 0.9): the gates must not read it, or "D wins on real" (BCE < 0.33) could never fire
    assert smooth_real > 0.9 * -math.log(0.9) + 0.1 * -math.log(0.1) - 1e-6
    model.discriminator = _FixedLogits(torch.tensor([10.0, 10.0, -10.0, -10.0, -10.0, -10.0]))
    terms = model.losses(torch.rand(2, 1, 28, 28))
    assert model.gates(terms["dis_real"].item(), terms["dis_rec"].item()) == (False, True)


def test_real_label_range():
    with pytest.raises(ValueError, match="real_label"):
        VAEGAN(latent=2, width=4, real_label=0.4)


def test_cli_passes_the_stabiliser_options_to_the_model():
    import argparse

    from netgaze.cli.parsing import UserError
    from netgaze.cli.training import reconstruct as cli

    parser = argparse.ArgumentParser()
    cli.add_arguments(parser)
    args = parser.parse_args(["--model", "vaegan", "--real-label", "0.9", "--feature-stage", "0", "--width", "8"])
    assert cli._model_args(args) == {"width": 8, "feature_stage": 0, "real_label": 0.9}
    with pytest.raises(UserError, match="--real-label does not apply to vae-conv"):
        cli._model_args(parser.parse_args(["--model", "vae-conv", "--real-label", "0.9"]))


def test_few_updates_per_epoch_warn(tmp_path, monkeypatch):
    from netgaze.lab import reconstruct

    tiny = torch.utils.data.TensorDataset(torch.rand(40, 1, 28, 28), torch.zeros(40, dtype=torch.long))
    monkeypatch.setattr(reconstruct, "load_reconstruction_data", lambda data, split, options: tiny)
    with pytest.warns(UserWarning, match="make only 2 updates per epoch.*batch size of 2 or less"):
        run = reconstruct.train_reconstruction("x", "vaegan", epochs=1, batch_size=32, latent=2,
                                               model_args={"width": 4}, out=tmp_path / "run", progress=False)
    record = run.history[0]  # the per-epoch numbers the stability bar reads, averaged over the 2 batches
    for key in ("real_acc", "rec_acc", "prior_acc", "dis_updates", "dec_updates"):
        assert 0.0 <= record[f"train_{key}"] <= 1.0
    for key in ("dis_real", "dis_rec", "dis_prior", "gan_dec", "gan_dis"):
        assert math.isfinite(record[f"train_{key}"]) and record[f"train_{key}"] > 0
    assert record["test_pixel_mse"] > 0


def test_resize_conv_decoder_option_keeps_sizes_and_has_no_checkerboard():
    torch.manual_seed(0)
    for channels, size in ((1, 28), (3, 64)):
        model = VAEGAN(channels, size, latent=3, width=4, upsample="nearest")
        old = VAEGAN(channels, size, latent=3, width=4)
        assert sum(p.numel() for p in model.decoder.parameters()) < sum(p.numel() for p in old.decoder.parameters())
        model.eval()
        z = torch.randn(2, 3, requires_grad=True)
        out = model.decode(z)
        assert out.shape == (2, channels, size, size) and 0 < out.min() and out.max() < 1
        out.sum().backward()
        assert z.grad.abs().sum() > 0
    # every conv weight 1, biases 0, identity batch norm: a constant 7x7 map decodes to a picture
    # constant away from the zero-padded border (a stride-2 transposed conv with a kernel the
    # stride does not divide would alternate there)
    model = VAEGAN(1, 28, latent=3, width=2, upsample="nearest").eval()
    with torch.no_grad():
        for m in model.decoder:
            if isinstance(m, nn.Linear):
                m.weight.zero_(), m.bias.fill_(1.0)
            elif isinstance(m, nn.Conv2d):
                m.weight.fill_(0.01)
                if m.bias is not None:
                    m.bias.zero_()
        out = model.decode(torch.zeros(1, 3))[0, 0]
    interior = out[3:-3, 3:-3]
    assert interior.max() - interior.min() < 1e-6
    assert interior.mean() > 0.5
    with pytest.raises(ValueError, match="upsample must be one of transposed, nearest"):
        VAEGAN(upsample="bilinear")

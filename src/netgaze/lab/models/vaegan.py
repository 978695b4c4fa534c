"""VAE-GAN (Larsen et al. 2016, "Autoencoding beyond pixels using a learned similarity metric").

A conv VAE whose reconstruction error is measured in a feature layer of a discriminator
instead of in pixels. Three parts, three optimisers, three losses (per image):

* encoder:        ``KL + L_feat``
* decoder:        ``gamma * L_feat + L_GAN_dec``
* discriminator:  ``L_GAN_dis = BCE(D(x), 1) + BCE(D(x_rec), 0) + BCE(D(x_prior), 0)``

``L_feat = 0.5 * sum((D_l(x_rec) - D_l(x))^2)`` over one conv stage of the discriminator
(a Gaussian likelihood in feature space; D_l(x) is held fixed), by default the last, as the
paper's (``feature_stage`` picks another; on the 64-pixel shapes folder, 8 epochs, the
last 4x4 stage and the 8x8 one end at about the same test pixel MSE, 0.031 and 0.030; the
last one gets there faster at first, the 8x8 one more steadily). Real, reconstructed and
prior pictures go through the discriminator in ONE batch, so its batch norm cannot hide
a brightness or contrast difference. ``pixel > 0`` adds a summed squared pixel error to
the encoder's and decoder's losses (not in the paper). ``L_GAN_dec`` is the
non-saturating ``BCE(D(x_rec), 1) + BCE(D(x_prior), 1)`` (the paper's minimax signs
flipped, as everyone trains GANs).

Equilibrium gating (from the authors' code, also in the common PyTorch ports): with the
discriminator's mean BCE on real and reconstructed pictures (and prior ones with
``gate_prior=True``), the discriminator is not updated when any is below
``equilibrium - margin`` (it is winning too easily), the decoder skips its update when any
is above ``equilibrium + margin`` (the discriminator is too weak to learn from), and both
train when both would be skipped. Gating on the prior pictures helps the samples: without
it the discriminator spots every prior sample from the first epoch on and the decoder
answers with one repeated texture (on ``digits``, 8 epochs: Inception Score under a digits
classifier 4.29 without, 4.95 with). On the 64-pixel shapes folder it freezes the
discriminator almost from the start, and reconstructions learn much more slowly (test
pixel MSE 0.058 after 10 epochs instead of 0.021), hence off by default.

Stabilisers beyond the paper, both documented GAN practice: ``real_label < 1`` is one-sided
label smoothing (Salimans et al. 2016) of the discriminator's target for real pictures;
the gates still read the BCE against the hard label, whose floor is 0 (the smoothed one
cannot fall below the label's entropy, 0.325 at 0.9, so "the discriminator wins" would
never fire). ``losses`` also returns the discriminator's accuracy on each kind of picture
(``acc_real``: logit > 0; ``acc_rec``, ``acc_prior``: logit < 0) for the history.
What trains it on a small image folder is mostly the number of updates: a small batch and
Adam at 1e-3 (see ``benchmarks/quality_vaegan.py``).

Stable is not yet a good generator: prior samples (z ~ N(0, I)) are blurry digit-like
strokes after 24 epochs on ``digits``, and texture with the odd blob on the 64-pixel shapes
folder after 10 (``benchmarks/quality_vaegan.py`` scores them). ``upsample="nearest"``
(resize-convolution decoder) removes stride-2 textures but did not raise the score;
neither did ``pixel=1`` or ``gamma=10``.

The module's ``forward`` is the VAE's, ``(reconstruction, mu, logvar)`` with the mean in
eval mode, so explanations and latent studies treat it like any VAE. The discriminator
is registered first, so ``layer=-1`` still resolves to the encoder's last conv.
"""
from __future__ import annotations

import torch
import torch.nn as nn
import torch.nn.functional as F

from netgaze.errors import ArgumentError
from netgaze.lab.models.registry import register_model
from netgaze.lab.models.vae import VAE, conv_decoder, conv_encoder, conv_stages
from netgaze.lab.models.vae_loss import kl_divergence

UPSAMPLING = ("transposed", "nearest")


def resize_conv_decoder(in_features: int, out_channels: int, image_size: int, width: int) -> nn.Sequential:
    """``conv_decoder`` with each 4x4 stride-2 transposed conv replaced by nearest 2x upsampling + 3x3 conv.

    Resize-convolution (Odena et al. 2016, "Deconvolution and checkerboard artifacts"): every
    output pixel sees the same number of kernel taps, so the decoder has no built-in
    stride-2 checkerboard for an adversarial loss to amplify. Same channels and sizes as
    ``conv_decoder``.
    """
    stages = conv_stages(image_size)
    size = image_size // 2 ** stages
    channels = width * 2 ** (stages - 1)
    layers: list[nn.Module] = [nn.Linear(in_features, channels * size * size),
                               nn.Unflatten(1, (channels, size, size)), nn.BatchNorm2d(channels), nn.LeakyReLU(0.2)]
    for i in reversed(range(stages - 1)):
        out = width * 2 ** i
        layers += [nn.Upsample(scale_factor=2, mode="nearest"), nn.Conv2d(channels, out, 3, 1, 1, bias=False),
                   nn.BatchNorm2d(out), nn.LeakyReLU(0.2)]
        channels = out
    layers += [nn.Upsample(scale_factor=2, mode="nearest"), nn.Conv2d(channels, out_channels, 3, 1, 1), nn.Sigmoid()]
    return nn.Sequential(*layers)


class Discriminator(nn.Module):
    """Strided convs + LeakyReLU (batch norm after the first), a feature layer, a logit.

    Args:
        in_channels, image_size, width: as ``ConvVAE``.
        feature_stage: which conv stage (0-based) gives the features of the reconstruction
            loss. None: the last (28 -> stage 1 at 7x7, 64 -> stage 3 at 4x4).
    """

    def __init__(self, in_channels: int, image_size: int, width: int, feature_stage: int | None = None):
        super().__init__()
        layers: list[nn.Module] = []
        channels, size = in_channels, image_size
        stage_ends, sizes = [], []
        for i in range(conv_stages(image_size)):
            out = width * 2 ** i
            layers.append(nn.Conv2d(channels, out, 4, 2, 1, bias=i == 0))
            if i > 0:
                layers.append(nn.BatchNorm2d(out))
            layers.append(nn.LeakyReLU(0.2))
            channels, size = out, size // 2
            stage_ends.append(len(layers) - 1)
            sizes.append(size)
        if feature_stage is None:
            feature_stage = len(sizes) - 1
        if not 0 <= feature_stage < len(sizes):
            raise ArgumentError(f"feature_stage must lie in 0..{len(sizes) - 1} for {image_size}-pixel pictures, "
                                f"got {feature_stage}")
        self.feature_stage = feature_stage
        self._feature_index = stage_ends[feature_stage]
        self.features = nn.Sequential(*layers)
        self.head = nn.Sequential(nn.Flatten(), nn.Linear(channels * size * size, 1))

    def forward(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """``(features of stage feature_stage [B, C, h, w], logit [B])``."""
        features = x
        for i, layer in enumerate(self.features):
            x = layer(x)
            if i == self._feature_index:
                features = x
        return features, self.head(x)[:, 0]


class VAEGAN(VAE):
    """Conv VAE + discriminator, trained with ``train_step`` and the optimisers of ``optimizers``.

    Args:
        in_channels, image_size, latent, width: as ``ConvVAE``.
        gamma: weight of the feature-space reconstruction in the decoder's loss.
        equilibrium, margin: the equilibrium gating thresholds on the discriminator's BCE.
        pixel: weight of a summed squared pixel error added to the encoder's and the
            decoder's loss (0 = the paper). A small weight gets reconstructions going
            while the discriminator's features are still uninformative.
        feature_stage: the discriminator stage of the feature loss (``Discriminator``).
        real_label: the discriminator's target for real pictures; below 1 is one-sided
            label smoothing (Salimans et al. 2016), which keeps it from becoming certain.
        upsample: ``"transposed"`` (4x4 stride-2 transposed convs, ``conv_decoder``) or
            ``"nearest"`` (upsampling + 3x3 convs, ``resize_conv_decoder``).
        gate_prior: the gates also read the discriminator's BCE on prior samples (see the
            module docstring: better prior samples on ``digits``; on the 64-pixel folder
            it freezes the discriminator early and reconstructions learn more slowly).
    """

    def __init__(self, in_channels: int = 1, image_size: int = 28, latent: int = 20, width: int = 32,
                 gamma: float = 1.0, equilibrium: float = 0.68, margin: float = 0.35, pixel: float = 0.0,
                 feature_stage: int | None = None, real_label: float = 1.0, upsample: str = "transposed",
                 gate_prior: bool = False):
        super().__init__(in_channels, image_size, latent)
        self.gate_prior = gate_prior
        if not 0.5 < real_label <= 1.0:
            raise ArgumentError(f"real_label must lie in (0.5, 1], got {real_label}")
        if upsample not in UPSAMPLING:
            raise ArgumentError(f"upsample must be one of {', '.join(UPSAMPLING)}, got {upsample!r}")
        self.discriminator = Discriminator(in_channels, image_size, width, feature_stage)
        self.real_label = real_label
        self.encoder, features = conv_encoder(in_channels, image_size, width)
        self.fc_mu = nn.Linear(features, latent)
        self.fc_logvar = nn.Linear(features, latent)
        self.decoder = (conv_decoder(latent, in_channels, image_size, width) if upsample == "transposed"
                        else resize_conv_decoder(latent, in_channels, image_size, width))
        self.gamma, self.equilibrium, self.margin, self.pixel = gamma, equilibrium, margin, pixel

    def _encode_features(self, x: torch.Tensor, onehot: torch.Tensor | None) -> torch.Tensor:
        return self.encoder(x)

    def _decode(self, z: torch.Tensor) -> torch.Tensor:
        return self.decoder(z)

    def parameter_groups(self) -> dict[str, list[nn.Parameter]]:
        """Parameters per part: ``encoder`` (with fc_mu, fc_logvar), ``decoder``, ``discriminator``."""
        encoder = [*self.encoder.parameters(), *self.fc_mu.parameters(), *self.fc_logvar.parameters()]
        return {"encoder": encoder, "decoder": list(self.decoder.parameters()),
                "discriminator": list(self.discriminator.parameters())}

    def optimizers(self, lr: float = 3e-4) -> dict[str, torch.optim.Optimizer]:
        """One Adam (betas 0.5, 0.999) per part, as GAN training usually needs."""
        return {name: torch.optim.Adam(params, lr=lr, betas=(0.5, 0.999))
                for name, params in self.parameter_groups().items()}

    def losses(self, x: torch.Tensor) -> dict[str, torch.Tensor]:
        """All loss terms of one batch, per image (means over the batch), in the graph.

        In eval mode the reconstruction decodes the mean of q(z|x), as ``forward`` does.
        """
        mu, logvar = self.encode(x)
        z = mu + torch.randn_like(mu) * (0.5 * logvar).exp() if self.training else mu
        recon = self.decode(z)
        prior = self.decode(torch.randn_like(mu))
        # One discriminator pass over real, reconstructed and prior pictures: batch norm
        # then normalises them together, so feature matching sees brightness and contrast.
        features, logits = self.discriminator(torch.cat([x, recon, prior]))
        b = len(x)
        feat_real, feat_rec = features[:b], features[b:2 * b]
        logit_real, logit_rec, logit_prior = logits[:b], logits[b:2 * b], logits[2 * b:]
        ones, zeros = torch.ones_like(logit_real), torch.zeros_like(logit_real)
        bce = F.binary_cross_entropy_with_logits
        # dis_real (reported, gated) is against the hard label; the discriminator's own loss
        # uses the smoothed one, whose BCE cannot fall below the label's entropy.
        dis_real, dis_rec, dis_prior = bce(logit_real, ones), bce(logit_rec, zeros), bce(logit_prior, zeros)
        dis_real_smooth = dis_real if self.real_label == 1.0 else bce(logit_real, ones * self.real_label)
        feature = 0.5 * (feat_rec - feat_real.detach()).pow(2).flatten(1).sum(1).mean()
        kl = kl_divergence(mu, logvar).mean()
        gan_dec = bce(logit_rec, ones) + bce(logit_prior, ones)
        pixel = (recon - x).pow(2).flatten(1).sum(1).mean()
        return {"encoder": kl + feature + self.pixel * pixel,
                "decoder": self.gamma * feature + gan_dec + self.pixel * pixel,
                "discriminator": dis_real_smooth + dis_rec + dis_prior, "kl": kl, "feature": feature,
                "gan_dec": gan_dec, "dis_real": dis_real, "dis_rec": dis_rec, "dis_prior": dis_prior,
                "pixel_mse": pixel, "acc_real": (logit_real > 0).float().mean().detach(),
                "acc_rec": (logit_rec < 0).float().mean().detach(),
                "acc_prior": (logit_prior < 0).float().mean().detach()}

    def gates(self, dis_real: float, dis_rec: float, dis_prior: float | None = None) -> tuple[bool, bool]:
        """``(train_discriminator, train_decoder)`` from the discriminator's BCE on real,
        reconstructed and (when given) prior pictures."""
        low, high = self.equilibrium - self.margin, self.equilibrium + self.margin
        losses = [dis_real, dis_rec] + ([] if dis_prior is None else [dis_prior])
        train_dis = not any(loss < low for loss in losses)
        train_dec = not any(loss > high for loss in losses)
        if not (train_dis or train_dec):
            return True, True
        return train_dis, train_dec

    def train_step(self, x: torch.Tensor, optimizers: dict[str, torch.optim.Optimizer]) -> dict[str, float]:
        """One gated update of the three parts; returns the batch's loss terms as floats.

        Each part's gradient is taken from its own loss only (``torch.autograd.grad`` per
        parameter group), so the decoder's GAN loss never moves the discriminator and
        the reconstruction loss never moves the discriminator's features.
        """
        self.train()
        terms = self.losses(x)
        gated = ("dis_real", "dis_rec", "dis_prior") if self.gate_prior else ("dis_real", "dis_rec")
        train_dis, train_dec = self.gates(*(float(terms[k].detach()) for k in gated))
        groups = self.parameter_groups()
        parts = ["encoder"] + (["decoder"] if train_dec else []) + (["discriminator"] if train_dis else [])
        for i, part in enumerate(parts):
            grads = torch.autograd.grad(terms[part], groups[part], retain_graph=i < len(parts) - 1)
            for param, grad in zip(groups[part], grads):
                param.grad = grad
        for part in parts:
            optimizers[part].step()
            optimizers[part].zero_grad(set_to_none=True)
        out = {k: float(v.detach()) for k, v in terms.items()}
        out.update(train_dis=float(train_dis), train_dec=float(train_dec))
        return out


@register_model("vaegan")
def vaegan(in_channels: int = 1, image_size: int = 28, latent: int = 20, width: int = 32,
           gamma: float = 1.0, equilibrium: float = 0.68, margin: float = 0.35, pixel: float = 0.0,
           feature_stage: int | None = None, real_label: float = 1.0, upsample: str = "transposed",
           gate_prior: bool = False) -> VAEGAN:
    """VAE-GAN (Larsen et al. 2016) for 1x28x28 or 3x64x64 pictures."""
    return VAEGAN(in_channels, image_size, latent, width, gamma, equilibrium, margin, pixel, feature_stage,
                  real_label, upsample, gate_prior)


__all__ = ["VAEGAN", "Discriminator", "vaegan", "resize_conv_decoder", "UPSAMPLING"]

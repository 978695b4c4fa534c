"""Variational autoencoders: linear, convolutional, conditional and denoising.

Every model here maps pictures in [0, 1] to ``(reconstruction, mu, logvar)``:

* ``reconstruction`` [B, C, H, W] in [0, 1] (the decoder ends in a sigmoid), so BCE
  and MSE both apply. Explain it with ``output=0``:
  ``ng.guided_backprop(vae, x, target=ng.Area(box=(8, 8, 16, 16)), output=0)``.
* ``mu``, ``logvar`` [B, latent]: the diagonal Gaussian q(z|x).

In training mode the decoder sees ``z = mu + sigma * eps``; in eval mode it sees ``mu``,
so reconstructions and explanations are deterministic. To explain a latent unit, use
the encoder mean as a model: ``ng.saliency(vae.mean_encoder(), x, target=ng.Latent(3))``.

Unlike the lab's classifiers there is no ``Normalize`` first layer: the pictures are
both input and target, in [0, 1]; the conv models' first batch norm rescales.

A denoising VAE is any of these with ``noise > 0`` or ``erase > 0``: in training mode
its forward pass corrupts the input (``vae_loss.corrupt``) and the trainer compares the
reconstruction with the CLEAN picture. A conditional VAE (``num_classes > 0``) takes the
label as a second argument, ``vae(x, y)``; ``vae.conditioned(y)`` wraps it as a
one-argument model for the explanation methods.
"""
from __future__ import annotations

import torch
import torch.nn as nn
import torch.nn.functional as F

from netgaze.errors import ArgumentError
from netgaze.lab.models.registry import register_model
from netgaze.lab.models.vae_loss import corrupt


class VAE(nn.Module):
    """Base class: ``encode``, ``decode``, reparameterisation, conditioning, corruption.

    Subclasses build ``encoder``, ``fc_mu``, ``fc_logvar`` and ``decoder`` and implement
    ``_encode_features(x, onehot)`` and ``_decode(z_and_onehot)``.
    """

    def __init__(self, in_channels: int, image_size: int, latent: int, num_classes: int = 0,
                 noise: float = 0.0, erase: float = 0.0):
        super().__init__()
        if latent < 1:
            raise ArgumentError(f"latent must be >= 1, got {latent}")
        self.in_channels, self.image_size, self.latent = in_channels, image_size, latent
        self.num_classes, self.noise, self.erase = num_classes, noise, erase

    @property
    def conditional(self) -> bool:
        return self.num_classes > 0

    @property
    def denoising(self) -> bool:
        return self.noise > 0 or self.erase > 0

    def _onehot(self, y: torch.Tensor | None, batch: int, device: torch.device) -> torch.Tensor | None:
        if not self.conditional:
            if y is not None:
                raise ArgumentError("this VAE is not conditional: call it without labels")
            return None
        if y is None:
            raise ArgumentError("a conditional VAE needs labels: vae(x, y), or vae.conditioned(y) for explanations")
        y = torch.as_tensor(y, device=device).long().reshape(-1)
        if y.numel() == 1 and batch > 1:
            y = y.expand(batch)
        if y.numel() != batch:
            raise ArgumentError(f"{y.numel()} labels for a batch of {batch}")
        if int(y.min()) < 0 or int(y.max()) >= self.num_classes:
            raise ArgumentError(f"labels must lie in 0..{self.num_classes - 1}")
        return F.one_hot(y, self.num_classes).float()

    def encode(self, x: torch.Tensor, y: torch.Tensor | None = None) -> tuple[torch.Tensor, torch.Tensor]:
        """``(mu, logvar)`` of q(z|x[, y]), each [B, latent]; no corruption here."""
        self._check_input(x)
        h = self._encode_features(x, self._onehot(y, x.shape[0], x.device))
        return self.fc_mu(h), self.fc_logvar(h)

    def decode(self, z: torch.Tensor, y: torch.Tensor | None = None) -> torch.Tensor:
        """Pictures [B, C, H, W] in [0, 1] from latent codes [B, latent] (and labels)."""
        onehot = self._onehot(y, z.shape[0], z.device)
        return self._decode(z if onehot is None else torch.cat([z, onehot], 1))

    def forward(self, x: torch.Tensor, y: torch.Tensor | None = None
                ) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """``(reconstruction, mu, logvar)``; sampled z in training mode, the mean in eval mode."""
        if self.training and self.denoising:
            x = corrupt(x, self.noise, self.erase)
        mu, logvar = self.encode(x, y)
        z = mu + torch.randn_like(mu) * (0.5 * logvar).exp() if self.training else mu
        return self.decode(z, y), mu, logvar

    def sample(self, n: int, y: torch.Tensor | None = None, generator: torch.Generator | None = None) -> torch.Tensor:
        """Decode ``n`` draws from the prior N(0, I)."""
        device = next(self.parameters()).device
        z = torch.randn(n, self.latent, generator=generator).to(device)
        return self.decode(z, y)

    @property
    def takes_labels(self) -> bool:
        """Whether ``forward`` needs each picture's label beside it (``netgaze.embed`` feeds them)."""
        return self.conditional

    def mean_encoder(self) -> "EncoderMean":
        """A module ``x -> mu`` sharing this VAE's weights, for ``ng.Latent(i)`` targets."""
        return EncoderMean(self)

    def conditioned(self, y: torch.Tensor | int) -> "Conditioned":
        """A one-argument module ``x -> vae(x, y)`` with fixed labels (conditional VAE)."""
        return Conditioned(self, y)

    def _check_input(self, x: torch.Tensor) -> None:
        want = (self.in_channels, self.image_size, self.image_size)
        if x.dim() != 4 or tuple(x.shape[1:]) != want:
            raise ArgumentError(f"this VAE takes pictures [B, {want[0]}, {want[1]}, {want[2]}], "
                                f"got {tuple(x.shape)}")


class EncoderMean(nn.Module):
    """``x -> mu`` of a VAE (layer names gain the prefix ``vae.``)."""

    def __init__(self, vae: VAE, y: torch.Tensor | None = None):
        super().__init__()
        self.vae = vae
        self.y = y

    @property
    def takes_labels(self) -> bool:
        return self.vae.conditional and self.y is None

    def forward(self, x: torch.Tensor, y: torch.Tensor | None = None) -> torch.Tensor:
        return self.vae.encode(x, self.y if y is None else y)[0]


class Conditioned(nn.Module):
    """A conditional VAE with fixed labels, callable with pictures alone."""

    def __init__(self, vae: VAE, y: torch.Tensor | int):
        super().__init__()
        self.vae = vae
        self.y = torch.as_tensor(y)

    def forward(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        return self.vae(x, self.y)

    def mean_encoder(self) -> EncoderMean:
        return EncoderMean(self.vae, self.y)


class LinearVAE(VAE):
    """The classic PyTorch example: D-hidden-latent with ReLU, mirrored decoder, sigmoid.

    ``nn.ReLU`` modules (not ``F.relu``) so guided backprop gates them. Layer names:
    ``encoder.0`` (Linear D+K -> hidden), ``fc_mu``, ``fc_logvar``, ``decoder.0``,
    ``decoder.2`` (Linear hidden -> D).
    """

    def __init__(self, in_channels: int = 1, image_size: int = 28, latent: int = 20, hidden: int = 400,
                 num_classes: int = 0, noise: float = 0.0, erase: float = 0.0):
        super().__init__(in_channels, image_size, latent, num_classes, noise, erase)
        pixels = in_channels * image_size * image_size
        self.encoder = nn.Sequential(nn.Linear(pixels + num_classes, hidden), nn.ReLU())
        self.fc_mu = nn.Linear(hidden, latent)
        self.fc_logvar = nn.Linear(hidden, latent)
        self.decoder = nn.Sequential(nn.Linear(latent + num_classes, hidden), nn.ReLU(),
                                     nn.Linear(hidden, pixels), nn.Sigmoid())

    def _encode_features(self, x: torch.Tensor, onehot: torch.Tensor | None) -> torch.Tensor:
        flat = x.flatten(1)
        return self.encoder(flat if onehot is None else torch.cat([flat, onehot], 1))

    def _decode(self, z: torch.Tensor) -> torch.Tensor:
        return self.decoder(z).view(-1, self.in_channels, self.image_size, self.image_size)


def conv_stages(image_size: int) -> int:
    """How many stride-2 stages bring ``image_size`` down to 4..7 pixels (28 -> 2, 64 -> 4)."""
    stages, size = 0, image_size
    while size % 2 == 0 and size // 2 >= 4:
        size //= 2
        stages += 1
    if stages == 0:
        raise ArgumentError(f"a conv VAE needs an even image size of at least 8, got {image_size}")
    return stages


def _activation(name: str) -> nn.Module:
    if name == "leaky":
        return nn.LeakyReLU(0.2)
    if name == "relu":
        return nn.ReLU()
    raise ArgumentError(f"unknown activation {name!r}; choose 'leaky' or 'relu'")


def conv_encoder(in_channels: int, image_size: int, width: int, activation: str = "leaky"
                 ) -> tuple[nn.Sequential, int]:
    """Strided 4x4 convs (stride 2) + batch norm + activation, then flatten; returns (net, features)."""
    layers: list[nn.Module] = []
    channels, size = in_channels, image_size
    for i in range(conv_stages(image_size)):
        out = width * 2 ** i
        layers += [nn.Conv2d(channels, out, 4, 2, 1, bias=False), nn.BatchNorm2d(out), _activation(activation)]
        channels, size = out, size // 2
    layers.append(nn.Flatten())
    return nn.Sequential(*layers), channels * size * size


def conv_decoder(in_features: int, out_channels: int, image_size: int, width: int,
                 activation: str = "leaky") -> nn.Sequential:
    """The mirror of ``conv_encoder``: linear, transposed convs + batch norm, sigmoid output."""
    stages = conv_stages(image_size)
    size = image_size // 2 ** stages
    channels = width * 2 ** (stages - 1)
    layers: list[nn.Module] = [nn.Linear(in_features, channels * size * size),
                               nn.Unflatten(1, (channels, size, size)), nn.BatchNorm2d(channels),
                               _activation(activation)]
    for i in reversed(range(stages - 1)):
        out = width * 2 ** i
        layers += [nn.ConvTranspose2d(channels, out, 4, 2, 1, bias=False), nn.BatchNorm2d(out),
                   _activation(activation)]
        channels = out
    layers += [nn.ConvTranspose2d(channels, out_channels, 4, 2, 1), nn.Sigmoid()]
    return nn.Sequential(*layers)


class ConvVAE(VAE):
    """Conv encoder (``conv_encoder``) -> mu, logvar -> mirrored transposed-conv decoder.

    For 1x28x28: 2 stages (32, 64 channels, 7x7); for 3x64x64: 4 stages (32..256, 4x4).
    Encoder conv layers are ``encoder.0``, ``encoder.3``, ... (``-1`` = the last one).
    A conditional conv VAE gets the one-hot label as extra constant input channels.
    ``activation="relu"`` makes guided backprop gate the encoder (it gates ``nn.ReLU`` only).
    """

    def __init__(self, in_channels: int = 1, image_size: int = 28, latent: int = 20, width: int = 32,
                 activation: str = "leaky", num_classes: int = 0, noise: float = 0.0, erase: float = 0.0):
        super().__init__(in_channels, image_size, latent, num_classes, noise, erase)
        self.encoder, features = conv_encoder(in_channels + num_classes, image_size, width, activation)
        self.fc_mu = nn.Linear(features, latent)
        self.fc_logvar = nn.Linear(features, latent)
        self.decoder = conv_decoder(latent + num_classes, in_channels, image_size, width, activation)

    def _encode_features(self, x: torch.Tensor, onehot: torch.Tensor | None) -> torch.Tensor:
        if onehot is not None:
            planes = onehot[:, :, None, None].expand(-1, -1, x.shape[2], x.shape[3])
            x = torch.cat([x, planes], 1)
        return self.encoder(x)

    def _decode(self, z: torch.Tensor) -> torch.Tensor:
        return self.decoder(z)


def _vae(arch: str, **args) -> VAE:
    if arch == "linear":
        args.pop("width"), args.pop("activation")
        return LinearVAE(**args)
    if arch == "conv":
        args.pop("hidden")
        return ConvVAE(**args)
    raise ArgumentError(f"unknown VAE architecture {arch!r}; choose 'linear' or 'conv'")


@register_model("vae-linear")
def vae_linear(in_channels: int = 1, image_size: int = 28, latent: int = 20, hidden: int = 400) -> VAE:
    """Linear VAE (784-400-20 for 28x28 digits, as the classic PyTorch example)."""
    return LinearVAE(in_channels, image_size, latent, hidden)


@register_model("vae-conv")
def vae_conv(in_channels: int = 1, image_size: int = 28, latent: int = 20, width: int = 32,
             activation: str = "leaky") -> VAE:
    """Convolutional VAE (strided conv + batch norm + LeakyReLU, mirrored transposed convs)."""
    return ConvVAE(in_channels, image_size, latent, width, activation)


@register_model("cvae")
def cvae(num_classes: int = 10, in_channels: int = 1, image_size: int = 28, latent: int = 20,
         arch: str = "linear", hidden: int = 400, width: int = 32, activation: str = "leaky") -> VAE:
    """Conditional VAE: the label's one-hot enters the encoder and the decoder."""
    if num_classes < 1:
        raise ArgumentError(f"a conditional VAE needs num_classes >= 1, got {num_classes}")
    return _vae(arch, in_channels=in_channels, image_size=image_size, latent=latent, hidden=hidden,
                width=width, activation=activation, num_classes=num_classes)


@register_model("dvae")
def dvae(in_channels: int = 1, image_size: int = 28, latent: int = 20, arch: str = "linear",
         noise: float = 0.3, erase: float = 0.5, hidden: int = 400, width: int = 32,
         activation: str = "leaky") -> VAE:
    """Denoising VAE: trained on noisy, partly erased input against the clean picture."""
    if noise <= 0 and erase <= 0:
        raise ArgumentError("a denoising VAE needs noise > 0 or erase > 0")
    return _vae(arch, in_channels=in_channels, image_size=image_size, latent=latent, hidden=hidden,
                width=width, activation=activation, noise=noise, erase=erase)


__all__ = ["VAE", "LinearVAE", "ConvVAE", "EncoderMean", "Conditioned", "conv_encoder", "conv_decoder",
           "conv_stages", "vae_linear", "vae_conv", "cvae", "dvae"]

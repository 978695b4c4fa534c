"""The VAE objective and the denoising corruption, shared by every reconstruction model.

All losses are SUMS over pixels and latent units per image, as in the classic PyTorch
VAE example (``BCE(reduction="sum") + KL``); divide by the number of images to get the
"loss per image" that the example prints (about 105.6 on MNIST after 10 epochs with
784-400-20, Adam 1e-3, batch 128).
"""
from __future__ import annotations

import math

import torch
import torch.nn.functional as F

from netgaze.errors import ArgumentError

RECON_LOSSES = ("bce", "mse")


def kl_divergence(mu: torch.Tensor, logvar: torch.Tensor) -> torch.Tensor:
    """KL(q(z|x) || N(0, I)) per sample, [B], in closed form for a diagonal Gaussian.

    ``-0.5 * sum(1 + logvar - mu^2 - exp(logvar))`` (Kingma & Welling 2014, appendix B).
    """
    return -0.5 * (1 + logvar - mu.pow(2) - logvar.exp()).flatten(1).sum(1)


def reconstruction_error(recon: torch.Tensor, target: torch.Tensor, loss: str = "bce") -> torch.Tensor:
    """Reconstruction error per sample, [B], summed over pixels.

    Args:
        recon: reconstructions in [0, 1] (the decoder ends in a sigmoid).
        target: the clean pictures in [0, 1].
        loss: ``"bce"`` (Bernoulli likelihood; PyTorch clamps the log at -100, so a
            saturated sigmoid costs at most 100 per pixel) or ``"mse"`` (summed squared error).
    """
    if loss == "bce":
        error = F.binary_cross_entropy(recon, target, reduction="none")
    elif loss == "mse":
        error = (recon - target).pow(2)
    else:
        raise ArgumentError(f"unknown reconstruction loss {loss!r}; choose one of {', '.join(RECON_LOSSES)}")
    return error.flatten(1).sum(1)


def vae_loss(recon: torch.Tensor, target: torch.Tensor, mu: torch.Tensor, logvar: torch.Tensor,
             loss: str = "bce", beta: float = 1.0) -> dict[str, torch.Tensor]:
    """Negative ELBO summed over the batch: ``{"loss", "recon", "kl"}`` (scalars).

    ``loss = recon + beta * kl``; ``beta = 1`` is the plain VAE.
    """
    recon_sum = reconstruction_error(recon, target, loss).sum()
    kl_sum = kl_divergence(mu, logvar).sum()
    return {"loss": recon_sum + beta * kl_sum, "recon": recon_sum, "kl": kl_sum}


def corrupt(x: torch.Tensor, noise: float = 0.3, erase: float = 0.5,
            erase_scale: tuple[float, float] = (0.02, 0.2),
            generator: torch.Generator | None = None) -> torch.Tensor:
    """Corrupt pictures in [0, 1] for a denoising VAE: Gaussian noise, then random erasing.

    Args:
        x: pictures [B, C, H, W] in [0, 1]; not modified.
        noise: standard deviation of the additive Gaussian noise (0 = none). The result
            is clamped back to [0, 1].
        erase: probability that a sample gets one rectangle set to 0 (as torchvision's
            ``RandomErasing`` with ``value=0``, drawn per sample without its retries).
        erase_scale: range of the erased area as a fraction of the picture; the aspect
            ratio is drawn log-uniformly in [0.3, 3.3].
        generator: for reproducible corruption; the global RNG when None.
    """
    b, _, h, w = x.shape
    out = x
    if noise > 0:
        out = (out + noise * torch.randn(x.shape, generator=generator, device=x.device)).clamp(0, 1)
    if erase > 0:
        keep = torch.ones(b, 1, h, w, device=x.device, dtype=x.dtype)
        draws = torch.rand(b, 5, generator=generator).tolist()
        low, high = math.log(0.3), math.log(3.3)
        for i, (p, area_u, ratio_u, y_u, x_u) in enumerate(draws):
            if p >= erase:
                continue
            area = h * w * (erase_scale[0] + area_u * (erase_scale[1] - erase_scale[0]))
            ratio = math.exp(low + ratio_u * (high - low))
            eh = max(1, min(h, int(round(math.sqrt(area * ratio)))))
            ew = max(1, min(w, int(round(math.sqrt(area / ratio)))))
            y0 = min(int(y_u * (h - eh + 1)), h - eh)
            x0 = min(int(x_u * (w - ew + 1)), w - ew)
            keep[i, :, y0:y0 + eh, x0:x0 + ew] = 0
        out = out * keep
    return out if out is not x else x.clone()


__all__ = ["RECON_LOSSES", "kl_divergence", "reconstruction_error", "vae_loss", "corrupt"]

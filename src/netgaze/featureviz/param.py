"""Image parameterizations: the tensors an activation maximization optimises.

Two kinds, both giving images in [0, 1] through a sigmoid:

- ``PixelImage``: one free value per pixel (logits of the picture).
- ``FourierImage``: the lucid/lucent parameterization. The free values are the real and
  imaginary parts of the image's 2-D real FFT, multiplied by 1/frequency (``decay_power``)
  so that low frequencies move first; for RGB the three channels live in a decorrelated
  colour basis (the square root of ImageNet's colour covariance, as in lucid) and are
  mapped back before the sigmoid. Gradient steps in this space avoid the high-frequency
  noise pixel-space optimisation produces.

Every sample is drawn from its own generator, seeded from ``(random_state, key)``, so a
unit renders the same whether it shares a batch with others or not.
"""
from __future__ import annotations

from typing import Sequence

import torch

from netgaze.errors import ArgumentError

# Square root of ImageNet's colour correlation (lucid's color_correlation_svd_sqrt).
_COLOR_SVD_SQRT = torch.tensor([[0.26, 0.09, 0.02],
                                [0.27, 0.00, -0.05],
                                [0.27, -0.09, 0.03]])
_COLOR_NORMALIZED = _COLOR_SVD_SQRT / _COLOR_SVD_SQRT.norm(dim=0).max()

# lucid divides the inverse FFT by 4: a smaller starting contrast than ortho-normalised noise.
_FFT_MAGIC = 4.0


def sample_generator(random_state: int, key: int) -> torch.Generator:
    """A CPU generator for one sample: the same ``(random_state, key)`` gives the same draws."""
    return torch.Generator().manual_seed((int(random_state) * 1_000_003 + int(key) * 7_919) % (2 ** 63))


def _noise(shape: Sequence[int], keys: Sequence[int], random_state: int, sd: float,
           device: torch.device) -> torch.Tensor:
    """[len(keys), *shape] normal noise, one generator per sample."""
    rows = [torch.randn(tuple(shape), generator=sample_generator(random_state, k)) * sd for k in keys]
    return torch.stack(rows).to(device)


class PixelImage:
    """Images parameterised by per-pixel logits: ``image = sigmoid(logits)``.

    Args:
        keys: one integer per sample (the rendered unit); seeds each sample's noise.
        channels: 1 (grey) or 3 (RGB).
        size: (height, width).
        sd: standard deviation of the starting logits around 0 (grey 0.5 images).
        random_state: seed shared by all samples.
        device: where the parameters live.
    """

    def __init__(self, keys: Sequence[int], channels: int, size: tuple[int, int], *, sd: float = 0.01,
                 random_state: int = 0, device: torch.device | str = "cpu"):
        self.shape = (len(keys), channels, *size)
        self.logits = _noise((channels, *size), keys, random_state, sd, torch.device(device)).requires_grad_(True)

    @property
    def params(self) -> list[torch.Tensor]:
        return [self.logits]

    def __call__(self) -> torch.Tensor:
        return torch.sigmoid(self.logits)

    def set_images(self, images: torch.Tensor) -> None:
        """Make the parameterization produce ``images`` (values strictly inside (0, 1))."""
        with torch.no_grad():
            self.logits.copy_(torch.logit(images.clamp(1e-6, 1 - 1e-6)))


class FourierImage:
    """Images parameterised in a scaled Fourier space with decorrelated colour (lucid's ``fft_image``).

    Args:
        keys: one integer per sample (the rendered unit); seeds each sample's noise.
        channels: 1 (grey) or 3 (RGB; the colour basis is decorrelated when ``decorrelate``).
        size: (height, width).
        sd: standard deviation of the starting spectrum (lucid's 0.01).
        decay_power: spectrum scale is 1 / frequency ** decay_power (1 as in lucid).
        decorrelate: use the decorrelated colour basis for RGB images.
        random_state: seed shared by all samples.
        device: where the parameters live.
    """

    def __init__(self, keys: Sequence[int], channels: int, size: tuple[int, int], *, sd: float = 0.01,
                 decay_power: float = 1.0, decorrelate: bool = True, random_state: int = 0,
                 device: torch.device | str = "cpu"):
        device = torch.device(device)
        h, w = size
        self.shape = (len(keys), channels, h, w)
        self.decorrelate = decorrelate and channels == 3
        fy = torch.fft.fftfreq(h)[:, None]
        fx = torch.fft.rfftfreq(w)[None, :]
        freqs = torch.sqrt(fx * fx + fy * fy)
        scale = 1.0 / torch.clamp(freqs, min=1.0 / max(h, w)) ** decay_power
        self.scale = scale[None, None, :, :, None].to(device)
        self.spectrum = _noise((channels, h, w // 2 + 1, 2), keys, random_state, sd, device).requires_grad_(True)
        self.color = _COLOR_NORMALIZED.to(device)

    @property
    def params(self) -> list[torch.Tensor]:
        return [self.spectrum]

    def _logits(self) -> torch.Tensor:
        h, w = self.shape[2:]
        spectrum = torch.view_as_complex(self.scale * self.spectrum)
        image = torch.fft.irfft2(spectrum, s=(h, w), norm="ortho") / _FFT_MAGIC
        if self.decorrelate:
            image = torch.einsum("bchw,dc->bdhw", image, self.color)
        return image

    def __call__(self) -> torch.Tensor:
        return torch.sigmoid(self._logits())

    def set_images(self, images: torch.Tensor) -> None:
        """Make the parameterization produce ``images`` (the inverse: logit, colour basis, FFT).

        Exact for every image: the real FFT of a real image is invertible given the size.
        """
        h, w = self.shape[2:]
        with torch.no_grad():
            logits = torch.logit(images.to(self.spectrum).clamp(1e-6, 1 - 1e-6))
            if self.decorrelate:
                logits = torch.einsum("bdhw,cd->bchw", logits, torch.linalg.inv(self.color))
            spectrum = torch.fft.rfft2(logits * _FFT_MAGIC, norm="ortho")
            self.spectrum.copy_(torch.view_as_real(spectrum) / self.scale)


PARAMETERIZATIONS = {"fourier": FourierImage, "pixel": PixelImage}


def make_image(kind: str, keys: Sequence[int], channels: int, size: tuple[int, int], *,
               random_state: int = 0, device: torch.device | str = "cpu") -> PixelImage | FourierImage:
    """Build a parameterization by name (``"fourier"`` or ``"pixel"``)."""
    if kind not in PARAMETERIZATIONS:
        raise ArgumentError(f"unknown parameterization {kind!r}; valid: {sorted(PARAMETERIZATIONS)}")
    if channels not in (1, 3):
        raise ArgumentError(f"images have 1 or 3 channels, not {channels}")
    return PARAMETERIZATIONS[kind](keys, channels, size, random_state=random_state, device=device)


__all__ = ["PixelImage", "FourierImage", "make_image", "sample_generator", "PARAMETERIZATIONS"]

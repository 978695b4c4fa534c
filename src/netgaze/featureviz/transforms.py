"""Transformation robustness: small random changes applied to the image at every step.

Lucid's standard transforms (pad 12, jitter 8, scale 0.9-1.1, rotate -10..10 degrees,
jitter 4) are sized for 224-pixel ImageNet inputs. ``standard_transforms(size)`` scales the
pixel amounts with the image (relative to 128 pixels, the size lucent optimises before
upsampling) so a 28x28 digit gets 3 pixels of padding and 2 of jitter instead of an image
upsampled to 224. The last step crops back to the input size, so models with a fixed
input size (a linear head after flatten) work.

Each transform is ``transform(images, generator) -> images``; one random draw per step is
shared by the whole batch, which keeps a batch equal to its samples rendered one by one.
"""
from __future__ import annotations

import math
from typing import Callable, Sequence

import torch
import torch.nn.functional as F

Transform = Callable[[torch.Tensor, torch.Generator], torch.Tensor]


def _choice(options: Sequence[float], generator: torch.Generator) -> float:
    return options[int(torch.randint(len(options), (1,), generator=generator))]


def pad(width: int, value: float = 0.5) -> Transform:
    """Pad every side by ``width`` pixels of a constant grey (grows the image by 2 * width)."""
    def transform(images: torch.Tensor, generator: torch.Generator) -> torch.Tensor:
        return F.pad(images, [width] * 4, mode="constant", value=value) if width > 0 else images
    return transform


def jitter(distance: int) -> Transform:
    """Shift by up to ``distance - 1`` pixels in x and y (lucid's jitter); shape kept, edges replicated."""
    def transform(images: torch.Tensor, generator: torch.Generator) -> torch.Tensor:
        if distance <= 1:
            return images
        dy, dx = (int(v) for v in torch.randint(-(distance - 1), distance, (2,), generator=generator))
        h, w = images.shape[-2:]
        p = distance - 1
        padded = F.pad(images, [p, p, p, p], mode="replicate")
        return padded[..., p + dy:p + dy + h, p + dx:p + dx + w]
    return transform


def random_scale(scales: Sequence[float]) -> Transform:
    """Zoom by a factor drawn from ``scales`` about the centre; shape kept (border replicated)."""
    return _affine(scales=scales, angles=(0.0,))


def random_rotate(angles: Sequence[float]) -> Transform:
    """Rotate by an angle in degrees drawn from ``angles`` about the centre; shape kept."""
    return _affine(scales=(1.0,), angles=angles)


def _affine(scales: Sequence[float], angles: Sequence[float]) -> Transform:
    def transform(images: torch.Tensor, generator: torch.Generator) -> torch.Tensor:
        scale = _choice(scales, generator)
        angle = math.radians(_choice(angles, generator))
        if scale == 1.0 and angle == 0.0:
            return images
        cos, sin = math.cos(angle) / scale, math.sin(angle) / scale
        theta = torch.tensor([[cos, -sin, 0.0], [sin, cos, 0.0]], dtype=images.dtype, device=images.device)
        grid = F.affine_grid(theta.expand(images.shape[0], 2, 3), list(images.shape), align_corners=False)
        return F.grid_sample(images, grid, mode="bilinear", padding_mode="border", align_corners=False)
    return transform


def center_crop(height: int, width: int) -> Transform:
    """Cut the central ``height`` x ``width`` window (undoes ``pad`` for fixed-size models)."""
    def transform(images: torch.Tensor, generator: torch.Generator) -> torch.Tensor:
        h, w = images.shape[-2:]
        y, x = (h - height) // 2, (w - width) // 2
        return images[..., y:y + height, x:x + width]
    return transform


def compose(transforms: Sequence[Transform]) -> Transform:
    """Apply transforms in order with one generator."""
    def transform(images: torch.Tensor, generator: torch.Generator) -> torch.Tensor:
        for t in transforms:
            images = t(images, generator)
        return images
    return transform


def standard_transforms(size: int | tuple[int, int], crop: bool = True) -> list[Transform]:
    """Lucid's standard transforms with pixel amounts scaled to the image size.

    Args:
        size: the rendered image's size (an int or (height, width)).
        crop: end with a centre crop back to ``size``.
    """
    h, w = (size, size) if isinstance(size, int) else size
    factor = min(1.0, min(h, w) / 128)
    pad_width = max(1, round(12 * factor))
    steps: list[Transform] = [
        pad(pad_width),
        jitter(max(2, round(8 * factor))),
        random_scale([1 + (i - 5) / 50 for i in range(11)]),
        random_rotate(list(range(-10, 11)) + 5 * [0]),
        jitter(max(2, round(4 * factor))),
    ]
    if crop:
        steps.append(center_crop(h, w))
    return steps


__all__ = ["Transform", "pad", "jitter", "random_scale", "random_rotate", "center_crop", "compose",
           "standard_transforms"]

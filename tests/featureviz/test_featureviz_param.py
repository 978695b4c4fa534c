"""Parameterizations (round trip, seeding) and robustness transforms (shapes, amounts)."""
from __future__ import annotations

import pytest
import torch

from netgaze.featureviz import (FourierImage, PixelImage, center_crop, compose, jitter, pad, random_rotate,
                                random_scale, standard_transforms)


@pytest.mark.parametrize("cls", [PixelImage, FourierImage])
@pytest.mark.parametrize("channels, size", [(3, (16, 16)), (3, (15, 22)), (1, (28, 28)), (1, (9, 13))])
def test_round_trip(cls, channels, size):
    gen = torch.Generator().manual_seed(1)
    images = torch.rand(2, channels, *size, generator=gen) * 0.98 + 0.01
    param = cls([0, 1], channels, size)
    param.set_images(images)
    assert torch.allclose(param(), images, atol=1e-5)


def test_fourier_starts_near_grey_and_is_seeded_per_key():
    a = FourierImage([4, 7], 3, (32, 32), random_state=2)()
    b = FourierImage([7], 3, (32, 32), random_state=2)()
    c = FourierImage([7], 3, (32, 32), random_state=3)()
    assert torch.equal(a[1], b[0]) and not torch.equal(b, c)
    assert 0.45 < float(a.detach().min()) and float(a.detach().max()) < 0.55
    assert a.shape == (2, 3, 32, 32)


def test_fourier_spectrum_is_scaled_by_inverse_frequency():
    p = FourierImage([0], 1, (8, 8))
    scale = p.scale[0, 0, :, :, 0]
    assert scale[0, 0] == 8.0           # DC clamped at 1 / max(h, w)
    assert torch.isclose(scale[0, 1], torch.tensor(8.0))  # frequency 1/8
    assert torch.isclose(scale[0, 4], torch.tensor(2.0))  # Nyquist 1/2
    assert torch.isclose(scale[4, 4], torch.tensor(2 ** -0.5 * 2))


@pytest.mark.parametrize("transform", [jitter(4), random_scale([0.9, 1.1]), random_rotate([-10, 10]),
                                       compose(standard_transforms(28))])
def test_transforms_keep_shape(transform):
    x = torch.rand(3, 3, 28, 28)
    gen = torch.Generator().manual_seed(0)
    for _ in range(5):
        y = transform(x, gen)
        assert y.shape == x.shape and torch.isfinite(y).all()
    wide = torch.rand(2, 1, 40, 64)
    assert compose(standard_transforms((40, 64)))(wide, gen).shape == wide.shape


def test_pad_crop_and_jitter_amounts():
    x = torch.arange(16.0).view(1, 1, 4, 4)
    gen = torch.Generator().manual_seed(0)
    padded = pad(2)(x, gen)
    assert padded.shape[-2:] == (8, 8) and padded[0, 0, 0, 0] == 0.5
    assert torch.equal(center_crop(4, 4)(padded, gen), x)
    shifts = set()
    for _ in range(50):
        y = jitter(2)(x, gen)
        shifts.add(int((y - x).abs().sum() > 0))
        # jitter(2) moves by at most one pixel: every value comes from a neighbour
        assert (y[0, 0, 1:3, 1:3] - x[0, 0, 1:3, 1:3]).abs().max() <= 5
    assert shifts == {0, 1}
    # scale 1 and angle 0 are the identity
    assert torch.equal(random_scale([1.0])(x, gen), x) and torch.equal(random_rotate([0])(x, gen), x)
    # a 90 degree rotation of a symmetric grid sampler is a transpose-and-flip
    rotated = random_rotate([90])(x, gen)[0, 0]
    assert any(torch.allclose(rotated, torch.rot90(x[0, 0], k), atol=1e-4) for k in (1, -1))


def test_standard_transforms_scale_with_size():
    small, large = standard_transforms(28), standard_transforms(128)
    x = torch.rand(1, 3, 28, 28)
    assert pad_width(small) == 3 and pad_width(large) == 12
    assert compose(small)(x, torch.Generator().manual_seed(0)).shape == x.shape


def pad_width(transforms):
    x = torch.zeros(1, 1, 10, 10)
    return (transforms[0](x, torch.Generator()).shape[-1] - 10) // 2


def test_transforms_move_pixels_as_stated():
    """Numbers, not shapes: a 90-degree rotation is rot90, a jitter is a shifted crop, scale 1 is the identity."""
    import torch.nn.functional as F

    gen = torch.Generator().manual_seed(0)
    x = torch.rand(2, 3, 12, 12, generator=gen)
    turned = random_rotate([90.0])(x, gen)
    assert min(float((turned - torch.rot90(x, k, dims=(-2, -1))).abs().max()) for k in (1, -1)) < 1e-5
    assert torch.equal(random_scale([1.0])(x, gen), x) and torch.equal(jitter(1)(x, gen), x)
    padded = F.pad(x, [3, 3, 3, 3], mode="replicate")
    for _ in range(5):
        moved = jitter(4)(x, gen)
        shifts = [(dy, dx) for dy in range(-3, 4) for dx in range(-3, 4)
                  if torch.equal(moved, padded[..., 3 + dy:15 + dy, 3 + dx:15 + dx])]
        assert len(shifts) == 1

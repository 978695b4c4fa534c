"""S8: imputation of a hidden region by a VAE, measured against filling with the mean picture.

The hidden pixels start at the mean training picture (the baseline); each iteration
reconstructs the whole picture (mean of q(z|x)) and copies the reconstruction into the
hidden pixels only. Known pixels are never changed: they equal the input bit for bit.
"""
from __future__ import annotations

from typing import Any

import torch

from netgaze import viz
from netgaze.errors import ArgumentError
from netgaze.lab.models.vae import VAE
from netgaze.studies.latent_common import VAERun, tile_scale, tiles
from netgaze.studies.across_layers import StudyResult

Box = tuple[int, int, int, int]


def hidden_mask(shape: tuple[int, ...], box: Box | None = None, mask: torch.Tensor | None = None) -> torch.Tensor:
    """Bool [N, 1, H, W]: True where pixels are hidden. Default box: ``centre_box``."""
    n, _, h, w = shape
    if mask is not None:
        mask = torch.as_tensor(mask).bool()
        if mask.dim() == 2:
            mask = mask[None]
        if mask.shape[-2:] != (h, w):
            raise ArgumentError(f"mask size {tuple(mask.shape[-2:])} differs from the pictures' {(h, w)}")
        return mask.expand(n, h, w)[:, None].clone()
    y0, x0, y1, x1 = box if box is not None else centre_box((h, w))
    if not (0 <= y0 < y1 <= h and 0 <= x0 < x1 <= w):
        raise ArgumentError(f"box {box} is empty or outside the {h}x{w} picture")
    hidden = torch.zeros(n, 1, h, w, dtype=torch.bool)
    hidden[:, :, y0:y1, x0:x1] = True
    return hidden


def centre_box(size: tuple[int, int]) -> Box:
    """A centred square of 3/7 of the side (12x12 at (8, 8) in a 28x28 picture, 18% of it).

    Hiding the whole lower half is the harder test: there the VAE's completion often
    commits to another digit than the truth, which costs more squared error than the
    blurry mean picture (see ``benchmarks/quality_vae.py``).
    """
    h, w = size
    bh, bw = max(1, 3 * h // 7), max(1, 3 * w // 7)
    return (h - bh) // 2, (w - bw) // 2, (h - bh) // 2 + bh, (w - bw) // 2 + bw


@torch.no_grad()
def impute(model: VAE, images: torch.Tensor, hidden: torch.Tensor, fill: torch.Tensor,
           iterations: int = 20, labels: torch.Tensor | None = None) -> torch.Tensor:
    """Fill ``hidden`` pixels by iterating encode -> decode; known pixels stay exactly as given.

    Args:
        model: a VAE (run in eval mode: the mean of q(z|x), deterministic).
        images: pictures [N, C, H, W] in [0, 1].
        hidden: bool [N, 1 or C, H, W], True where the picture is unknown.
        fill: the starting value of hidden pixels, broadcastable to ``images`` (the mean picture).
        iterations: encode -> decode rounds (0 returns the mean-filled pictures).
        labels: for a conditional VAE.
    """
    was_training = model.training
    model.eval()
    try:
        current = torch.where(hidden, fill.expand_as(images), images)
        for _ in range(iterations):
            recon = model(current, labels)[0] if model.conditional else model(current)[0]
            current = torch.where(hidden, recon, images)
    finally:
        model.train(was_training)
    return current


def hidden_error(filled: torch.Tensor, truth: torch.Tensor, hidden: torch.Tensor) -> torch.Tensor:
    """Mean squared error over each picture's hidden pixels, [N]."""
    weight = hidden.expand_as(truth).float()
    return ((filled - truth).pow(2) * weight).flatten(1).sum(1) / weight.flatten(1).sum(1).clamp(min=1)


def imputation(run: Any, *, dataset: Any = None, box: Box | None = None, mask: torch.Tensor | None = None,
               iterations: int = 20, n_show: int = 8, mean_image: torch.Tensor | None = None) -> StudyResult:
    """Hide a box (default: ``centre_box``) or mask in every test picture and fill it in.

    Numbers: MSE per hidden pixel of the VAE's imputation and of mean-picture filling,
    averaged over the test set, and the share of pictures where the VAE wins.
    The figure shows, per picture, the input, the masked input, mean filling, the VAE
    after 1 iteration and after ``iterations``.

    Args:
        mean_image: the baseline fill [C, H, W]; default the mean of the run's training split
            (the test pictures' mean when no training split can be loaded).

    Returns:
        ``maps``: ``imputed``, ``mean_filled``, ``hidden`` (bool), ``vae_error``, ``mean_error`` [N].
    """
    vr = VAERun(run, dataset)
    images, labels = vr.images, vr.labels
    if mean_image is None:
        mean_image = _training_mean(vr)
    hidden = hidden_mask(tuple(images.shape), box, mask)
    y = labels if vr.model.conditional else None
    mean_filled = torch.where(hidden, mean_image.expand_as(images), images)
    imputed = impute(vr.model, images, hidden, mean_image, iterations, y)
    once = impute(vr.model, images[:n_show], hidden[:n_show], mean_image, 1, None if y is None else y[:n_show])
    vae_error, mean_error = hidden_error(imputed, images, hidden), hidden_error(mean_filled, images, hidden)
    shown = images[:n_show]
    masked = torch.where(hidden[:n_show], torch.full_like(shown, 0.5), shown)
    columns = [shown, masked, mean_filled[:n_show], once, imputed[:n_show]]
    rows = torch.stack(columns, 1).flatten(0, 1)
    picture = viz.grid(tiles(rows), ncols=len(columns), scale=tile_scale(images),
                       col_labels=["input", "hidden", "mean fill", "VAE x1", f"VAE x{iterations}"])
    numbers = {"iterations": iterations, "n": len(images), "box": list(box or centre_box(tuple(images.shape[-2:]))),
               "hidden_share": float(hidden.float().mean()), "vae_mse_hidden": float(vae_error.mean()),
               "mean_fill_mse_hidden": float(mean_error.mean()),
               "vae_wins_share": float((vae_error < mean_error).float().mean())}
    caption = (f"hidden pixels filled by {iterations} encode-decode rounds: MSE {numbers['vae_mse_hidden']:.4f} "
               f"vs {numbers['mean_fill_mse_hidden']:.4f} for the mean picture")
    maps = {"imputed": imputed, "mean_filled": mean_filled, "hidden": hidden,
            "vae_error": vae_error, "mean_error": mean_error}
    return vr.save("imputation", "Imputation of a hidden region", [("imputation", picture, caption)],
                   numbers, maps, "iterate x <- known pixels of x, reconstruction elsewhere")


def _training_mean(vr: VAERun) -> torch.Tensor:
    try:
        train = vr.run.dataset("train")
    except Exception:  # noqa: BLE001 - no loadable training split: fall back to the test pictures
        return vr.images.mean(0)
    images = train.tensors()[0] if hasattr(train, "tensors") else torch.stack([train[i][0] for i in range(len(train))])
    return images.mean(0)


__all__ = ["imputation", "impute", "hidden_mask", "hidden_error", "centre_box"]

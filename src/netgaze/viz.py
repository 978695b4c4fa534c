"""Pictures from tensors: normalise, colour maps, overlays, labelled grids.

Pure functions: tensors (or arrays) in, uint8 arrays [H, W, 3] or [N, H, W, 3] out; the
only I/O is ``save_png``, which writes atomically.
"""
from __future__ import annotations

import io
import os
from pathlib import Path
from typing import Sequence

import numpy as np
import torch
from PIL import Image, ImageDraw, ImageFont

from netgaze.errors import ArgumentError
from netgaze._util.atomic import atomic_write_bytes


def normalize(maps: torch.Tensor, eps: float = 1e-12) -> torch.Tensor:
    """Min-max scale each map of [B, ...] to [0, 1]; a constant map becomes all zeros."""
    flat = maps.detach().float().flatten(1)
    low = flat.amin(1, keepdim=True)
    span = flat.amax(1, keepdim=True) - low
    scaled = torch.where(span > eps, (flat - low) / span.clamp(min=eps), torch.zeros_like(flat))
    return scaled.view_as(maps)


def normalize_signed(attributions: torch.Tensor, percentile: float = 99.5) -> torch.Tensor:
    """Map signed attributions [B, C, H, W] to [0, 1] with 0 at 0.5, clipped at a percentile of |a|."""
    flat = attributions.detach().float().flatten(1)
    scale = torch.quantile(flat.abs(), percentile / 100, dim=1, keepdim=True).clamp(min=1e-12)
    return ((flat / scale).clamp(-1, 1) * 0.5 + 0.5).view_as(attributions)


def colormap(maps: torch.Tensor, name: str = "jet") -> np.ndarray:
    """Colour [B, H, W] maps with values in [0, 1] (use ``normalize`` first) -> uint8 [B, H, W, 3]."""
    index = (maps.detach().float().clamp(0, 1) * 255).round().long().cpu().numpy()
    return colormap_table(name)[index]


def colormap_table(name: str = "jet") -> np.ndarray:
    """The 256 colours ``colormap`` uses: uint8 [256, 3] (the explorer's pages draw with it too)."""
    from matplotlib import colormaps

    return (colormaps[name](np.linspace(0, 1, 256))[:, :3] * 255).astype(np.uint8)


def to_uint8(images: torch.Tensor) -> np.ndarray:
    """Images [B, C, H, W] in [0, 1] (C = 1 or 3) -> uint8 [B, H, W, 3]."""
    if images.dim() != 4 or images.shape[1] not in (1, 3):
        raise ArgumentError(f"images must be [B, 1|3, H, W] in [0, 1], got {tuple(images.shape)}")
    rgb = images.detach().float().clamp(0, 1).expand(-1, 3, -1, -1)
    return (rgb * 255).round().byte().permute(0, 2, 3, 1).cpu().numpy()


def overlay(images: torch.Tensor, maps: torch.Tensor, alpha: float = 0.5, cmap: str = "jet",
            normalise: bool = True) -> np.ndarray:
    """Heat maps [B, H, W] blended over images [B, C, H, W] in [0, 1] -> uint8 [B, H, W, 3]."""
    if maps.shape[-2:] != images.shape[-2:]:
        raise ArgumentError(f"map size {tuple(maps.shape[-2:])} differs from image size {tuple(images.shape[-2:])}")
    heat = colormap(normalize(maps) if normalise else maps, cmap).astype(np.float32)
    base = to_uint8(images).astype(np.float32)
    return np.clip((1 - alpha) * base + alpha * heat, 0, 255).round().astype(np.uint8)


def attribution_image(attributions: torch.Tensor) -> np.ndarray:
    """Signed input attributions [B, C, H, W] (guided backprop, gradients) -> uint8 [B, H, W, 3]."""
    return to_uint8(normalize_signed(attributions))


def grid(tiles: Sequence[np.ndarray] | np.ndarray, ncols: int, row_labels: Sequence[str] | None = None,
         col_labels: Sequence[str] | None = None, pad: int = 2, scale: int = 1,
         background: int = 255) -> np.ndarray:
    """Arrange uint8 tiles [H, W, 3] (all one size) in a grid with optional labels -> uint8 image."""
    tiles = [np.asarray(t) for t in tiles]
    if not tiles:
        raise ArgumentError("grid needs at least one tile")
    tiles = [np.repeat(t[..., None], 3, -1) if t.ndim == 2 else t for t in tiles]
    if scale > 1:
        tiles = [t.repeat(scale, 0).repeat(scale, 1) for t in tiles]
    h, w = tiles[0].shape[:2]
    nrows = -(-len(tiles) // ncols)
    font = ImageFont.load_default()
    left = (max(_text_width(font, s) for s in row_labels) + 6) if row_labels else 0
    top = 14 if col_labels else 0
    canvas = np.full((top + nrows * (h + pad) + pad, left + ncols * (w + pad) + pad, 3), background, np.uint8)
    for i, tile in enumerate(tiles):
        r, c = divmod(i, ncols)
        y, x = top + pad + r * (h + pad), left + pad + c * (w + pad)
        canvas[y:y + h, x:x + w] = tile[:h, :w]
    if row_labels or col_labels:
        image = Image.fromarray(canvas)
        draw = ImageDraw.Draw(image)
        for c, text in enumerate(col_labels or []):
            draw.text((left + pad + c * (w + pad), 1), _fit(font, str(text), w), fill=(0, 0, 0), font=font)
        for r, text in enumerate(row_labels or []):
            draw.text((2, top + pad + r * (h + pad) + h // 2 - 5), str(text), fill=(0, 0, 0), font=font)
        canvas = np.asarray(image)
    return canvas


def _text_width(font, text: str) -> int:
    return int(font.getlength(str(text)))


def _fit(font, text: str, width: int) -> str:
    while len(text) > 1 and _text_width(font, text) > width:
        text = text[:-2] + "…"
    return text


def save_png(image: np.ndarray, path: str | os.PathLike) -> Path:
    """Write a uint8 image as PNG, atomically; returns the path."""
    buffer = io.BytesIO()
    Image.fromarray(np.asarray(image, dtype=np.uint8)).save(buffer, format="PNG")
    return atomic_write_bytes(path, buffer.getvalue())

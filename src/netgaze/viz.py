"""Pictures from tensors: normalise, colour maps, overlays, labelled grids.

Pure functions: tensors (or arrays) in, uint8 arrays [H, W, 3] or [N, H, W, 3] out; the
only I/O is ``save_png``, which writes atomically. In a notebook, ``show(...)`` returns a
``Picture`` that displays itself (``_repr_png_``).
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


class Picture:
    """A uint8 picture [H, W, 3] that a notebook displays inline (Jupyter calls ``_repr_png_``).

    ``array`` is the picture; ``png()`` its PNG bytes; ``save(path)`` writes them atomically.
    """

    def __init__(self, array: np.ndarray):
        self.array = np.ascontiguousarray(array, dtype=np.uint8)

    def png(self) -> bytes:
        buffer = io.BytesIO()
        Image.fromarray(self.array).save(buffer, format="PNG")
        return buffer.getvalue()

    def _repr_png_(self) -> bytes:
        return self.png()

    def save(self, path: str | os.PathLike) -> Path:
        return save_png(self.array, path)

    def __array__(self, dtype=None, copy=None) -> np.ndarray:
        return self.array if dtype is None else self.array.astype(dtype)

    def __repr__(self) -> str:
        return f"Picture({self.array.shape[1]}x{self.array.shape[0]})"


def show(images: torch.Tensor | np.ndarray, maps: torch.Tensor | None = None, *, ncols: int | None = None,
         scale: int = 1, cmap: str = "jet", alpha: float = 0.5) -> Picture:
    """Anything netgaze computes, as one picture a notebook displays inline.

    Args:
        images: uint8 arrays ([H, W], [H, W, 3] or [N, H, W, 3], e.g. from ``overlay`` or
            ``grid``) shown as they are; float pictures [C, H, W] or [B, C, H, W] in [0, 1]
            (C = 1 or 3); or maps [H, W] / [B, H, W] (a CAM's output), min-max scaled and coloured.
        maps: heat maps [B, H, W] to blend over float ``images`` (``overlay``).
        ncols: pictures per row when there are several (default: all in one row, up to 8).
        scale: integer enlargement of each picture (small digits are 8 pixels wide).
        cmap: colour map of maps.
        alpha: the maps' weight over the pictures.

    Returns:
        A ``Picture``: ``_repr_png_`` for Jupyter, ``.array`` (uint8 [H, W, 3]), ``.save(path)``.
        ``ng.viz.show(ng.gradcam(model, x), ...)`` in a cell's last line draws the maps.
    """
    if maps is not None:
        images = torch.as_tensor(images)
        tiles = overlay(images if images.dim() == 4 else images[None], maps if maps.dim() == 3 else maps[None],
                        alpha=alpha, cmap=cmap)
    else:
        tiles = _tiles_of(images, cmap)
    if len(tiles) == 1 and scale == 1:
        return Picture(tiles[0])
    return Picture(grid(list(tiles), ncols=ncols or min(len(tiles), 8), scale=scale))


def _tiles_of(images: torch.Tensor | np.ndarray, cmap: str) -> np.ndarray:
    """uint8 tiles [N, H, W, 3] from any of ``show``'s inputs."""
    if isinstance(images, np.ndarray) and images.dtype == np.uint8:
        array = images
        if array.ndim == 2:
            array = array[None]
        if array.ndim == 3 and array.shape[-1] not in (1, 3):
            return np.repeat(array[..., None], 3, -1)           # [N, H, W] grey
        if array.ndim == 3:
            array = array[None]
        if array.ndim != 4 or array.shape[-1] not in (1, 3):
            raise ArgumentError(f"a uint8 picture is [H, W], [H, W, 3] or [N, H, W, 3], got {array.shape}")
        return np.repeat(array, 3, -1) if array.shape[-1] == 1 else array
    tensor = torch.as_tensor(images).detach().cpu()
    if tensor.dtype == torch.uint8:
        return _tiles_of(tensor.numpy(), cmap)
    if not tensor.is_floating_point():
        tensor = tensor.float()
    if tensor.dim() == 4 or (tensor.dim() == 3 and tensor.shape[0] in (1, 3) and tensor.shape[0] != tensor.shape[1]):
        return to_uint8(tensor if tensor.dim() == 4 else tensor[None])
    if tensor.dim() in (2, 3):
        return colormap(normalize(tensor if tensor.dim() == 3 else tensor[None]), cmap)
    raise ArgumentError(f"cannot show a tensor of shape {tuple(tensor.shape)}: give pictures [B, C, H, W] in [0, 1], "
                        "maps [B, H, W] or uint8 arrays")

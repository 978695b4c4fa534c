"""Pictures of segmentations: label masks coloured over images, and a predictions grid."""
from __future__ import annotations

import os
from pathlib import Path
from typing import Sequence

import numpy as np
import torch
import torch.nn as nn

from netgaze import viz
from netgaze.lab.segdata import voc_palette
from netgaze.metrics.segmentation import IGNORE_INDEX


def colour_masks(images: torch.Tensor, masks: torch.Tensor, alpha: float = 0.75) -> np.ndarray:
    """Label masks [B, H, W] in VOC's colours over images [B, C, H, W] -> uint8 [B, H, W, 3].

    Background (0) leaves the picture as it is; ignored pixels (255) are drawn cream, as in VOC.
    """
    base = viz.to_uint8(images).astype(np.float32)
    labels = masks.detach().long().cpu().numpy()
    colours = voc_palette()[np.clip(labels, 0, 255)].astype(np.float32)
    weight = np.where(labels == 0, 0.0, np.where(labels == IGNORE_INDEX, 1.0, alpha))[..., None]
    return np.clip((1 - weight) * base + weight * colours, 0, 255).round().astype(np.uint8)


def predict_masks(model: nn.Module, images: torch.Tensor, batch_size: int = 32) -> torch.Tensor:
    """Argmax labels [B, H, W] of a segmentation model in eval mode (its mode is restored)."""
    was_training = model.training
    device = next(model.parameters()).device
    model.eval()
    try:
        with torch.no_grad():
            return torch.cat([model(images[i:i + batch_size].to(device)).argmax(1).cpu()
                              for i in range(0, len(images), batch_size)])
    finally:
        model.train(was_training)


def legend(classes: Sequence[str], width: int, swatch: int = 14) -> np.ndarray:
    """Colour swatches of the classes (background excluded) with their names, ``width`` pixels wide."""
    names = list(classes)[1:]
    per_row = max(1, width // 64)
    tiles = [np.tile(voc_palette()[c + 1], (swatch, 60, 1)) for c in range(len(names))]
    rows = [viz.grid(tiles[i:i + per_row], ncols=per_row, col_labels=names[i:i + per_row])
            for i in range(0, len(tiles), per_row)]
    strip = np.full((sum(r.shape[0] for r in rows), width, 3), 255, np.uint8)
    y = 0
    for r in rows:
        strip[y:y + r.shape[0], :min(width, r.shape[1])] = r[:, :width]
        y += r.shape[0]
    return strip


def predictions_grid(model: nn.Module, images: torch.Tensor, masks: torch.Tensor,
                     path: str | os.PathLike, classes: Sequence[str] | None = None,
                     columns: Sequence[str] = ("image", "truth", "predicted"), scale: int = 2) -> Path:
    """A PNG with one row per image: the picture, the true mask and the predicted mask over it.

    With ``classes`` (background first), a legend of the class colours goes under the grid.
    """
    predicted = predict_masks(model, images)
    tiles = []
    for i in range(len(images)):
        tiles += [viz.to_uint8(images[i:i + 1])[0], colour_masks(images[i:i + 1], masks[i:i + 1])[0],
                  colour_masks(images[i:i + 1], predicted[i:i + 1])[0]]
    picture = viz.grid(tiles, ncols=3, col_labels=list(columns), scale=scale)
    if classes is not None and len(classes) > 1:
        picture = np.concatenate([picture, legend(classes, picture.shape[1])])
    return viz.save_png(picture, path)

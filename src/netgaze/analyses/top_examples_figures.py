"""Figures of ``TopExamples``: per channel a row of (activation maximization,) crops and pictures."""
from __future__ import annotations

# The result is taken as it is (a ``TopExamples``): the analysis calls these writers, never the reverse.

from pathlib import Path
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F

from netgaze import viz


TILE = 48
ROWS_PER_FIGURE = 16


def _tiles(images: torch.Tensor) -> list[np.ndarray]:
    resized = F.interpolate(images.float(), size=(TILE, TILE), mode="bilinear", align_corners=False)
    return list(viz.to_uint8(resized.clamp(0, 1)))


def _outlined(images: torch.Tensor, boxes: np.ndarray) -> torch.Tensor:
    """The pictures with their crop box drawn in yellow (1 px)."""
    out = images.clone().expand(-1, 3, -1, -1).clone()
    colour = torch.tensor([1.0, 0.9, 0.0])[:, None]
    for picture, (y0, x0, y1, x1) in zip(out, boxes):
        y1, x1 = max(y0, y1 - 1), max(x0, x1 - 1)
        picture[:, y0, x0:x1 + 1] = colour
        picture[:, y1, x0:x1 + 1] = colour
        picture[:, y0:y1 + 1, x0] = colour
        picture[:, y0:y1 + 1, x1] = colour
    return out


def channel_grid(result: Any, channels: list[int], maximized: torch.Tensor | None,
                 n_show: int = 5) -> np.ndarray:
    """uint8 grid: per channel, [activation maximization,] the top crops, then the top pictures."""
    k = min(n_show, result.indices.shape[1])
    tiles, labels = [], []
    for c in channels:
        r = result.row(c)
        if maximized is not None:
            tiles.extend(_tiles(maximized[r:r + 1].clamp(0, 1)))
        tiles.extend(_tiles(result.crops(c)[:k]))
        tiles.extend(_tiles(_outlined(result.pictures(c)[:k], result.boxes[r, :k])))
        labels.append(f"ch {c}")
    head = (["act. max."] if maximized is not None else []) + [f"crop {i + 1}" for i in range(k)] + \
        [f"top {i + 1}" for i in range(k)]
    return viz.grid(tiles, ncols=len(head), row_labels=labels, col_labels=head)


def save_top_examples(result: Any, folder: Path, maximized: torch.Tensor | None, facts: dict) -> Path:
    from netgaze.studies.common import write_manifest

    folder.mkdir(parents=True, exist_ok=True)
    safe = result.layer.replace(".", "_")
    figures = []
    for start in range(0, len(result.channels), ROWS_PER_FIGURE):
        block = result.channels[start:start + ROWS_PER_FIGURE]
        file = f"top_examples_{safe}_{block[0]}-{block[-1]}.png"
        block_max = maximized[start:start + len(block)] if maximized is not None else None
        viz.save_png(channel_grid(result, block, None if block_max is None else block_max, n_show=5), folder / file)
        first = "the channel's activation-maximization picture, then " if maximized is not None else ""
        figures.append({"file": file, "caption": (
            f"Channels {block[0]}-{block[-1]} of {result.layer}: {first}crops around the peak activation of the "
            f"{min(5, result.indices.shape[1])} dataset pictures that activate the channel most, then those pictures "
            f"with the crop outlined.")})
    spread = [len(set(row.tolist())) for row in result.indices]
    return write_manifest(folder, "top_examples", {
        "study": "top_examples", "title": "Top pictures per unit", **facts, "layer": result.layer,
        "method": "peak activation", "figures": figures,
        "numbers": {"channels": len(result.channels), "k": int(result.indices.shape[1]),
                    "mean top activation": float(np.mean(result.values[:, 0])),
                    "distinct pictures among all tops": int(len(set(result.indices.ravel().tolist())))},
        **result.to_dict(), "distinct_per_channel": spread})

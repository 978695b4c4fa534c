"""Activation maps of one picture in every layer, with per-layer sparsity (SPEC S4).

The report this reproduces ("learning a cat") shows every channel of every conv layer for
one picture and notes that more and more channels are blank with depth. Its Keras layers
had the ReLU built in; PyTorch conv layers do not, so the maps and statistics here are
taken after a ReLU (``max(a, 0)``) unless ``rectify=False``: a channel is *blank* when it
is zero everywhere after the ReLU (its pattern is not in the picture).
"""
from __future__ import annotations

import os
from dataclasses import dataclass
from typing import Sequence

import numpy as np
import torch
import torch.nn as nn

from netgaze import viz
from netgaze.errors import ArgumentError
from netgaze.core.layers import LayerRef, conv_layer_names
from netgaze._util.plots import plain_text
from netgaze.core.recorder import Recorder


@dataclass
class LayerStats:
    """Statistics of one layer's maps for one picture."""
    name: str
    channels: int
    height: int
    width: int
    blank_share: float       # share of channels that are zero everywhere (after the ReLU)
    mean_activation: float   # mean over channels and positions (after the ReLU)


@dataclass
class ActivationMaps:
    """Per-layer maps [C, h, w] of one picture and their statistics, in forward order."""
    maps: dict[str, torch.Tensor]
    stats: list[LayerStats]

    def table(self) -> str:
        """The statistics as a plain-text table (one row per layer)."""
        rows = [("layer", "channels", "size", "blank share", "mean activation")]
        rows += [(s.name, str(s.channels), f"{s.height}x{s.width}", f"{s.blank_share:.1%}",
                  f"{s.mean_activation:.4g}") for s in self.stats]
        widths = [max(len(r[i]) for r in rows) for i in range(5)]
        lines = ["  ".join(c.ljust(w) for c, w in zip(r, widths)).rstrip() for r in rows]
        lines.insert(1, "  ".join("-" * w for w in widths))
        return "\n".join(lines)

    def grid(self, layer: str, ncols: int | None = None, cmap: str = "viridis",
             scale: int | None = None) -> np.ndarray:
        """Every channel of one layer as a uint8 grid, each map min-max normalised on its own
        (a blank channel is a uniform dark tile)."""
        maps = self.maps[layer]
        c, h, _ = maps.shape
        ncols = ncols or max(1, int(np.ceil(np.sqrt(c))))
        tiles = viz.colormap(viz.normalize(maps), cmap)
        return viz.grid(list(tiles), ncols=ncols, scale=scale or max(1, 48 // h))

    @plain_text
    def plot(self, path: str | os.PathLike) -> None:
        """Blank-channel share and mean activation against depth, written as a PNG."""
        import matplotlib
        matplotlib.use("Agg", force=False)
        import matplotlib.pyplot as plt

        names = [s.name for s in self.stats]
        fig, ax = plt.subplots(figsize=(max(5.0, 0.6 * len(names) + 2), 3.6), dpi=100)
        ax.plot(range(len(names)), [100 * s.blank_share for s in self.stats], "o-", color="tab:red")
        ax.set_ylabel("blank channels (%)", color="tab:red")
        ax.set_ylim(0, 100)
        ax.set_xticks(range(len(names)), names, rotation=45, ha="right", fontsize=8)
        twin = ax.twinx()
        twin.plot(range(len(names)), [s.mean_activation for s in self.stats], "s--", color="tab:blue")
        twin.set_ylabel("mean activation", color="tab:blue")
        ax.set_title("Sparsity with depth")
        fig.tight_layout()
        canvas = fig.canvas
        canvas.draw()
        image = np.asarray(canvas.buffer_rgba())[..., :3].copy()
        plt.close(fig)
        viz.save_png(image, path)


def activation_maps(model: nn.Module, image: torch.Tensor, layers: LayerRef | Sequence[LayerRef] | None = None,
                    *, rectify: bool = True, device: torch.device | str | None = None) -> ActivationMaps:
    """Record every channel of the given layers for one picture.

    Args:
        model: any module; left as found.
        image: one picture [C, H, W] or [1, C, H, W], prepared as the model expects.
        layers: layer references (default: every conv layer, in definition order).
        rectify: apply ``max(a, 0)`` before maps and statistics (conv layers carry no ReLU).
        device: where to run (default: the model's device).

    Returns:
        ``ActivationMaps`` with ``maps[name]`` [C, h, w] (CPU, float) and one ``LayerStats``
        per layer in the order given.
    """
    if image.dim() == 3:
        image = image.unsqueeze(0)
    if image.dim() != 4 or image.shape[0] != 1:
        raise ArgumentError(f"activation_maps takes one picture [C, H, W], got {tuple(image.shape)}")
    if layers is None:
        layers = conv_layer_names(model)
        if not layers:
            raise ArgumentError("the model has no convolution layer; pass layers=")
    if device is None:
        device = next(iter(list(model.parameters()) + list(model.buffers())), image).device
    with Recorder(model, layers, grads=False) as rec:
        rec.forward(image.to(device))
        recorded = {name: rec.activations[name][0].float().cpu() for name in rec.names}
    maps, stats = {}, []
    for name, acts in recorded.items():
        if acts.dim() == 1:
            acts = acts[:, None, None]
        if acts.dim() != 3:
            raise ArgumentError(f"layer {name!r} gives {tuple(acts.shape)} per picture, not channel maps [C, h, w]")
        if rectify:
            acts = acts.clamp(min=0)
        maps[name] = acts
        blank = (acts.flatten(1).amax(1) <= 0) if rectify else (acts.flatten(1).abs().amax(1) == 0)
        stats.append(LayerStats(name=name, channels=acts.shape[0], height=acts.shape[1], width=acts.shape[2],
                                blank_share=float(blank.float().mean()), mean_activation=float(acts.mean())))
    return ActivationMaps(maps=maps, stats=stats)


__all__ = ["activation_maps", "ActivationMaps", "LayerStats"]

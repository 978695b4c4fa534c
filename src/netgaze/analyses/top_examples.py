"""The dataset pictures that activate each unit most (OpenAI Microscope's "dataset examples").

``top_examples(model, dataset, layer)`` walks the data once: one forward pass per batch that
stops at ``layer``, each channel's peak activation and its position per picture, and a running
top-k per channel. Nothing else is kept, so memory does not grow with the dataset and the pass
costs about as much as extracting the layer's features (``benchmarks/bench_top_examples.py``).
Each example keeps the box of a crop around its peak: ``crop`` input pixels centred on it.

Pictures are read a batch at a time (one slice of a memory-mapped run's data, its pages let go
after it). Under ``torchrun`` each process takes every N-th batch and the processes' top-k
lists are merged (highest first, ties to the lower index), so every rank returns what one
process would.
"""
from __future__ import annotations

import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Sequence

import numpy as np
import torch
import torch.distributed
import torch.nn as nn
import torch.nn.functional as F
from torch.utils.data import Dataset

from netgaze.analyses.indexed import picture_of
from netgaze.errors import UserError
from netgaze.core.layer_entries import split_entry
from netgaze.core.layers import LayerRef, resolve_layer
from netgaze.core.recorder import OutputSelector, Recorder

Best = tuple[torch.Tensor, torch.Tensor, torch.Tensor]  # values, positions, dataset indices: each [rows, k]


def as_map(act: torch.Tensor, size, name: str, model: nn.Module) -> torch.Tensor:
    """A recorded output as [B, C, h, w]: tokens and channels-last maps are read by their layout."""
    from netgaze.core import layouts

    kinds = {c.kind for c in layouts.candidates(tuple(act.shape), tuple(size))} if act.dim() in (3, 4) else set()
    if act.dim() == 4 and "nhwc" not in kinds:
        return act
    try:
        module = model.get_submodule(split_entry(name)[0])        # "stage[0]": the stage's module
        return layouts.detect(act.shape, tuple(size), name=name, module=module, model=model).to_nchw(act)
    except layouts.LayoutError as err:
        if act.dim() == 4:
            return act
        raise TopExamplesError(f"layer {name!r} outputs shape {tuple(act.shape)}; top examples need a spatial "
                               f"layer (a map, tokens or a channels-last map): {err}") from None


class TopExamplesError(UserError):
    """Top examples cannot be found as asked (bad channel, k, layer without space)."""


@dataclass
class TopExamples:
    """Per channel, the k pictures with the highest peak activation, best first.

    Attributes:
        layer: the layer.
        channels: the channels, in the order of the rows below.
        values: float [channels, k], the peak activations.
        indices: int64 [channels, k], dataset indices of the pictures.
        peaks: int64 [channels, k, 2], the (row, column) of each peak in the layer's feature map.
        boxes: int64 [channels, k, 4], (y0, x0, y1, x1) end-exclusive crops in input pixels around
            each peak, clipped to the picture.
        feature_size: (h, w) of the layer's output; input_size: (H, W) of the pictures.
    """

    layer: str
    channels: list[int]
    values: np.ndarray
    indices: np.ndarray
    peaks: np.ndarray
    boxes: np.ndarray
    feature_size: tuple[int, int]
    input_size: tuple[int, int]
    dataset: Dataset | None = field(default=None, repr=False)

    def row(self, channel: int) -> int:
        if channel not in self.channels:
            raise TopExamplesError(f"channel {channel} was not searched; channels: {self.channels}")
        return self.channels.index(channel)

    def pictures(self, channel: int) -> torch.Tensor:
        """The channel's top pictures [k, C, H, W] from the dataset."""
        return torch.stack([picture_of(self.dataset[int(i)]) for i in self.indices[self.row(channel)]])

    def crops(self, channel: int, size: int | None = None) -> torch.Tensor:
        """The crops around the peaks [k, C, s, s], resized to ``size`` (default the crop size)."""
        r = self.row(channel)
        out = []
        for i, (y0, x0, y1, x1) in zip(self.indices[r], self.boxes[r]):
            crop = picture_of(self.dataset[int(i)])[:, y0:y1, x0:x1]
            side = size or max(int(y1 - y0), int(x1 - x0))
            out.append(F.interpolate(crop[None], size=(side, side), mode="bilinear", align_corners=False)[0])
        return torch.stack(out)

    def to_dict(self) -> dict:
        return {"layer": self.layer, "channels": self.channels, "values": np.round(self.values, 6).tolist(),
                "indices": self.indices.tolist(), "peaks": self.peaks.tolist(), "boxes": self.boxes.tolist(),
                "feature_size": list(self.feature_size), "input_size": list(self.input_size)}

    def save(self, folder: str | os.PathLike, maximized: torch.Tensor | None = None, facts: dict | None = None) -> Path:
        """Write ``top_examples.json`` (artifact + report manifest) and a PNG grid per block of channels.

        Args:
            maximized: optional activation-maximization pictures [channels, C, h, w], shown in
                the first column beside each channel's top pictures.
            facts: run facts for the manifest (run, model, dataset, epoch).
        """
        from netgaze.analyses.top_examples_figures import save_top_examples

        return save_top_examples(self, Path(folder), maximized, facts or {})


def top_examples(model: nn.Module, dataset: Dataset, layer: LayerRef, channels: Sequence[int] | None = None,
                 k: int = 9, *, crop: int | None = None, batch_size: int = 64,
                 device: str | torch.device | None = None, progress: bool = True,
                 output: OutputSelector = None) -> TopExamples:
    """The k pictures of ``dataset`` that activate each channel of ``layer`` most, in one pass.

    A picture's score for a channel is the channel's largest activation over positions (its
    peak); ties go to the lower dataset index.

    Args:
        model: any module; never modified.
        dataset: items ``image`` or ``(image, label, ...)``.
        layer: a spatial layer: a map [B, C, h, w], or a transformer's tokens [B, N, C] (ViT,
            Hugging Face models) or channels-last map [B, h, w, C] (Swin), read as a map by
            ``netgaze.core.layouts`` (prefix tokens dropped).
        channels: the channels to rank; None = all.
        k: pictures per channel.
        crop: side of the crop around each peak, in input pixels; None = three feature cells
            (``3 * H / h``), at least 8 pixels and at most the picture.
        batch_size: pictures per forward pass.
        device: default the model's device.
        progress: a progress bar.
        output: which part of a tuple/dict model output is the output (``Recorder``); accepted like
            every analysis that runs a model, though this pass stops at the deepest layer and never
            computes the output.
    """
    if k < 1:
        raise TopExamplesError(f"k must be >= 1, got {k}")
    if k > len(dataset):
        raise TopExamplesError(f"k={k} is larger than the dataset ({len(dataset)} pictures)")
    name = resolve_layer(model, layer)[0]
    if device is None:
        first = next(model.parameters(), None)
        device = first.device if first is not None else torch.device("cpu")
    device = torch.device(device)
    from tqdm.auto import tqdm

    best: Best | None = None
    picked: torch.Tensor | None = None
    feature_size = input_size = None
    from netgaze.analyses.indexed import join_process_group, leave_process_group, picture_batches

    rank, world, created = join_process_group(device)
    try:
        with Recorder(model, [name], grads=False, stop=True, output=output) as rec:
            for x, idx in tqdm(picture_batches(dataset, batch_size, rank=rank, world=world),
                               disable=not progress or rank != 0, desc=f"top examples {name}", unit="batch"):
                rec.forward(x.to(device))
                act = as_map(rec.activations[name], x.shape[-2:], name, model)
                if picked is None:
                    all_channels = act.shape[1]
                    chosen = list(range(all_channels)) if channels is None else [int(c) for c in channels]
                    bad = [c for c in chosen if not 0 <= c < all_channels]
                    if bad or not chosen:
                        raise TopExamplesError(f"channels {bad or chosen} are outside 0..{all_channels - 1} of "
                                               f"{name!r}")
                    picked = torch.as_tensor(chosen, device=act.device)
                    feature_size, input_size = tuple(act.shape[-2:]), tuple(x.shape[-2:])
                flat = act.index_select(1, picked).flatten(2)          # [B, channels, h*w]
                values, where = flat.max(2)                             # first position of the peak
                values, where = values.T, where.T                       # [channels, B]
                best = keep_top(best, values, where, idx.to(act.device)[None].expand_as(values), k)
        if world > 1:
            best, picked, feature_size, input_size = _merge_processes(best, picked, feature_size, input_size, k, world)
    finally:
        leave_process_group(created)
    best_values, best_positions, best_indices = best
    peaks, boxes = peak_boxes(best_positions, feature_size, input_size, crop)
    return TopExamples(name, picked.cpu().tolist(), best_values.cpu().numpy(), best_indices.cpu().numpy(),
                       peaks, boxes, feature_size, input_size, dataset)



def _merge_processes(best: Best | None, picked, feature_size, input_size, k: int, world: int):
    """Every torchrun process's top-k merged (value first, ties to the lower index), on every rank."""
    mine = None if best is None else (tuple(t.cpu() for t in best), picked.cpu(), feature_size, input_size)
    found: list = [None] * world
    torch.distributed.all_gather_object(found, mine)
    found = [f for f in found if f is not None]
    values, positions, indices = (torch.cat([f[0][i] for f in found], 1) for i in range(3))
    order = torch.sort(indices, dim=1, stable=True).indices  # by index first, so equal values keep index order
    values, positions, indices = (t.gather(1, order) for t in (values, positions, indices))
    return keep_top(None, values, positions, indices, k), found[0][1], found[0][2], found[0][3]


def keep_top(best: Best | None, values: torch.Tensor, positions: torch.Tensor, indices: torch.Tensor,
             k: int) -> Best:
    """A running top-k per row: the k highest of ``best`` and a new batch (``[rows, B]`` each).

    Ties go to the earlier column, so to the lower dataset index when batches come in index order.
    """
    if best is not None:
        values, positions, indices = (torch.cat([old, new], 1) for old, new in zip(best, (values, positions, indices)))
    order = torch.sort(values, dim=1, descending=True, stable=True).indices[:, :k]
    return values.gather(1, order), positions.gather(1, order), indices.gather(1, order)


def peak_boxes(positions: torch.Tensor, feature_size: tuple[int, int], input_size: tuple[int, int],
               crop: int | None = None) -> tuple[np.ndarray, np.ndarray]:
    """Flat peak positions ``[...]`` in an ``h x w`` map -> (row, column) ``[..., 2]`` and input-pixel crops.

    Each crop ``(y0, x0, y1, x1)`` (end-exclusive) is a ``crop``-pixel square centred on the
    peak cell's centre scaled to the input (``(row + 0.5) * H / h``), shifted inside the picture;
    None = three feature cells (``3 * H / h``), at least 8 pixels and at most the picture. It
    stands in for the receptive field, which the layer's maths does not give.
    """
    h, w = feature_size
    H, W = input_size
    side = crop or int(min(max(H, W), max(8, round(3 * max(H / h, W / w)))))
    positions = positions.cpu()
    rows, cols = positions // w, positions % w
    cy, cx = (rows.double() + 0.5) * H / h, (cols.double() + 0.5) * W / w
    y0 = (cy - side / 2).round().long().clamp(0, max(0, H - side))
    x0 = (cx - side / 2).round().long().clamp(0, max(0, W - side))
    boxes = torch.stack([y0, x0, (y0 + side).clamp(max=H), (x0 + side).clamp(max=W)], -1)
    return torch.stack([rows, cols], -1).numpy(), boxes.numpy()

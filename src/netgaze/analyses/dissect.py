"""Network Dissection (Bau et al., CVPR 2017): which units of which layers detect which concepts.

For every unit (channel) of the chosen layers, its activation is upsampled (bilinear) to the
concept masks' size and thresholded at its top quantile over the whole dataset (0.5% by
default, as in the paper); the unit's IoU with a concept is |above threshold AND concept| /
|above threshold OR concept| summed over the dataset. A unit detects its best concept when that
IoU passes ``iou_threshold`` (0.04 in the paper).

One pass over the data serves every layer and unit at once: per-unit histograms over a running
range (``netgaze.analyses.histograms``) count the values inside each concept per bin, so the
quantile and the intersections come out of the same counts after the pass. Memory does not grow
with the dataset. The per-unit top pictures (highest peak activation) are kept on the way.

Pictures are read a batch at a time (one slice of a memory-mapped run's data, its pages let go
after it: ``netgaze.analyses.indexed.picture_batches``). Under ``torchrun`` each process takes
every N-th batch; the processes fit their histograms to the same ranges step by step (the
span over all of them), add the counts up and merge the top pictures, so every rank returns
the same result.
"""
from __future__ import annotations

import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable, Mapping, Sequence

import numpy as np
import torch
import torch.distributed
import torch.nn as nn
import torch.nn.functional as F
from torch.utils.data import Dataset

from netgaze.analyses.histograms import UnitHistograms, region_cells
from netgaze.analyses.indexed import picture_of
from netgaze.errors import UserError
from netgaze.core.layers import LayerRef, conv_layer_names, resolve_layers
from netgaze.core.recorder import OutputSelector, Recorder

ConceptSource = Callable[[torch.Tensor], torch.Tensor]  # dataset indices [B] -> bool masks [B, H, W]


class DissectionError(UserError):
    """Dissection cannot run as asked (no concept masks, a mask of the wrong size...)."""


@dataclass
class LayerDissection:
    """One layer's units against the concepts.

    Attributes:
        name: the layer.
        iou: float [units, concepts].
        thresholds: float [units], each unit's top-quantile activation threshold.
        best: int [units], each unit's best concept.
        detector: bool [units], best IoU above the detector threshold.
        top_pictures: int [units, k], dataset indices of each unit's highest peak activations.
        top_values: float [units, k], those peak activations.
    """

    name: str
    iou: np.ndarray
    thresholds: np.ndarray
    best: np.ndarray
    detector: np.ndarray
    top_pictures: np.ndarray
    top_values: np.ndarray

    def detectors_per_concept(self, concepts: Sequence[str]) -> dict[str, int]:
        return {c: int(((self.best == k) & self.detector).sum()) for k, c in enumerate(concepts)}

    @property
    def detector_share(self) -> float:
        return float(self.detector.mean()) if len(self.detector) else 0.0


@dataclass
class Dissection:
    """Every dissected layer, in forward order, and the settings."""

    layers: list[LayerDissection]
    concepts: list[str]
    settings: dict[str, Any]
    dataset: Dataset | None = field(default=None, repr=False)
    model: nn.Module | None = field(default=None, repr=False)

    def layer(self, name: str) -> LayerDissection:
        for found in self.layers:
            if found.name == name:
                return found
        raise KeyError(f"layer {name!r} was not dissected; layers: {[l.name for l in self.layers]}")

    def top_units(self, concept: str, k: int = 3) -> list[tuple[str, int, float]]:
        """(layer, unit, IoU) of the k units with the highest IoU for ``concept``, over every layer."""
        j = self.concepts.index(concept)
        rows = [(l.name, u, float(l.iou[u, j])) for l in self.layers for u in range(len(l.iou))]
        return sorted(rows, key=lambda r: -r[2])[:k]

    def table(self) -> dict[str, Any]:
        """Per layer: units, detectors, share, and detectors per concept."""
        columns = ["layer", "units", "detectors", "share of units", *self.concepts]
        rows = [[l.name, len(l.iou), int(l.detector.sum()), l.detector_share,
                 *l.detectors_per_concept(self.concepts).values()] for l in self.layers]
        return {"title": (f"Detectors per layer (IoU > {self.settings['iou_threshold']} with the unit's best concept, "
                          f"activation above its top {self.settings['quantile']:.1%})"), "columns": columns,
                "rows": rows}

    def to_dict(self) -> dict[str, Any]:
        return {"settings": self.settings, "concepts": self.concepts, "layers": [
            {"name": l.name, "units": len(l.iou), "detectors": int(l.detector.sum()), "share": l.detector_share,
             "per_concept": l.detectors_per_concept(self.concepts), "iou": np.round(l.iou, 5).tolist(),
             "thresholds": np.round(l.thresholds, 6).tolist(), "best": l.best.tolist(),
             "top_pictures": l.top_pictures.tolist()} for l in self.layers]}

    def save(self, folder: str | os.PathLike) -> Path:
        """Write ``dissection.json`` (artifact and report manifest) and its figures."""
        from netgaze.analyses.dissect_figures import save_dissection

        return save_dissection(self, Path(folder))


def concepts_of(dataset: Dataset) -> dict[str, ConceptSource]:
    """The concept masks a dataset knows: each class's object, any object, background, the marker.

    Needs ``dataset.masks`` (bool [N, H, W], the object's pixels) and ``dataset.labels``; a
    ``shapes`` set with a marker adds "marker" (and its pixels leave the background).
    """
    masks = getattr(dataset, "masks", None)
    labels = getattr(dataset, "labels", None)
    if not isinstance(masks, torch.Tensor) or labels is None:
        raise DissectionError(f"{type(dataset).__name__} has no object masks (.masks); pass concepts= "
                              "(a dict name -> bool masks [N, H, W])")
    labels = torch.as_tensor(labels)
    names = list(getattr(dataset, "classes", [str(c) for c in range(int(labels.max()) + 1)]))
    marker = getattr(dataset, "marker_masks", None) if getattr(dataset, "marker_classes", None) else None
    out: dict[str, ConceptSource] = {}
    for c, name in enumerate(names):
        out[name] = lambda idx, c=c: masks[idx] & (labels[idx] == c)[:, None, None]
    out["any object"] = lambda idx: masks[idx]
    if marker is not None:
        markers = marker  # built once: [N, H, W]
        out["background"] = lambda idx: ~masks[idx] & ~markers[idx]
        out["marker"] = lambda idx: markers[idx]
    else:
        out["background"] = lambda idx: ~masks[idx]
    return out


def _as_sources(concepts, dataset) -> dict[str, ConceptSource]:
    if concepts is None:
        return concepts_of(dataset)
    if isinstance(concepts, Mapping):
        sources = {}
        for name, value in concepts.items():
            if callable(value):
                sources[str(name)] = value
            else:
                tensor = torch.as_tensor(value).bool()
                if tensor.dim() != 3 or len(tensor) != len(dataset):
                    raise DissectionError(f"concept {name!r}: masks must be bool [N={len(dataset)}, H, W], got "
                                          f"{tuple(tensor.shape)}")
                sources[str(name)] = lambda idx, t=tensor: t[idx]
        if not sources:
            raise DissectionError("concepts is empty")
        return sources
    wanted = [concepts] if isinstance(concepts, str) else list(concepts)
    known = concepts_of(dataset)
    unknown = [c for c in wanted if c not in known]
    if unknown:
        raise DissectionError(f"unknown concept(s) {unknown}; this dataset has: {', '.join(known)}")
    return {c: known[c] for c in wanted}


def dissect(model: nn.Module, dataset: Dataset, layers: LayerRef | Sequence[LayerRef] | None = None,
            concepts: Sequence[str] | Mapping[str, Any] | None = None, *, quantile: float = 0.005,
            iou_threshold: float = 0.04, batch_size: int = 32, bins: int = 2048, top_k: int = 4,
            limit: int | None = None, device: str | torch.device | None = None, progress: bool = True,
            output: OutputSelector = None) -> Dissection:
    """Dissect the units of ``layers`` against concept masks in one streaming pass.

    Args:
        model: any module; never modified.
        dataset: items ``(image, label)``; with ``.masks`` (e.g. ``shapes``) the concepts come from it.
        layers: layer references; None = every conv layer.
        concepts: None = every concept the dataset knows (``concepts_of``); a list of those names;
            or a dict name -> bool masks [N, H, W] (or a callable indices -> masks [B, H, W]).
        quantile: the share of a unit's activations kept as "on" (its top quantile).
        iou_threshold: a unit with a best IoU above it is a detector.
        batch_size: pictures per forward pass.
        bins: histogram bins per unit (see ``netgaze.analyses.histograms`` for the accuracy).
        top_k: pictures with the highest peak activation kept per unit.
        limit: dissect only the first ``limit`` pictures (None = all).
        device: where to compute; default the model's device.
        progress: a progress bar.
        output: which part of a tuple/dict model output is the output (``Recorder``); accepted like
            every analysis that runs a model, though this pass stops at the deepest layer and never
            computes the output.
    """
    if not 0 < quantile < 1:
        raise DissectionError(f"quantile must be in (0, 1), got {quantile}")
    sources = _as_sources(concepts, dataset)
    names = list(sources)
    resolved = resolve_layers(model, conv_layer_names(model) if layers is None else layers)
    layer_names = [n for n, _ in resolved]
    if device is None:
        first = next(model.parameters(), None)
        device = first.device if first is not None else torch.device("cpu")
    device = torch.device(device)
    histograms: dict[str, UnitHistograms] = {}
    tops: dict[str, tuple[torch.Tensor, torch.Tensor]] = {}
    count = len(dataset) if limit is None else max(1, min(int(limit), len(dataset)))
    from tqdm.auto import tqdm

    from netgaze.analyses.indexed import join_process_group, leave_process_group, picture_batches

    rank, world, created = join_process_group(device)
    try:
        n_batches = -(-count // batch_size)
        steps = -(-n_batches // world)  # batches per process (the last step may have none for some)
        batches = picture_batches(dataset, batch_size, count, rank, world)
        with Recorder(model, layer_names, grads=False, stop=True, output=output) as rec:
            if world > 1:  # every process knows every layer's units before its first batch
                rec.forward(picture_of(dataset[0])[None].to(device))
                for name in layer_names:
                    _check_spatial(name, rec.activations[name])
                    histograms[name] = UnitHistograms(rec.activations[name].shape[1], len(names), bins, device)
            for _ in tqdm(range(steps), disable=not progress or rank != 0, desc="dissect", unit="batch"):
                batch = next(batches, None)
                cells = size = idx = None
                if batch is not None:
                    x, idx = batch
                    rec.forward(x.to(device))
                    regions = torch.stack([sources[n](idx) for n in names], 1).to(device)  # [B, R, H, W]
                    size = tuple(regions.shape[-2:])
                    cells = region_cells(regions.flatten(2))
                for name in layer_names:  # the same order on every process (collective calls)
                    up = None
                    if batch is not None:
                        act = rec.activations[name]
                        _check_spatial(name, act)
                        if name not in histograms:
                            histograms[name] = UnitHistograms(act.shape[1], len(names), bins, device)
                        up = F.interpolate(act.float(), size=size, mode="bilinear", align_corners=False)
                        _keep_top(tops, name, act.flatten(2).amax(2), idx.to(device), top_k)
                    span = _global_span(up, histograms[name].units, device) if world > 1 else None
                    if up is not None:
                        histograms[name].add(up.flatten(2), cells=cells, span=span)
                    else:
                        histograms[name].fit(*span)
                    del up
            next(batches, None)  # lets the reader release the last batch's pages
        if world > 1:
            for name in layer_names:
                torch.distributed.all_reduce(histograms[name].counts)
            tops = _merge_tops(tops, layer_names, top_k, world)
    finally:
        leave_process_group(created)
    results = []
    for name in layer_names:
        hist = histograms[name]
        thresholds, first = hist.top_threshold(quantile)
        above = hist.counts_from(first)                       # [units, R + 1]
        area = hist.counts[:, 1:].sum(2)                      # [units, R]: every unit sees the same masks
        inter = above[:, 1:]
        union = above[:, :1] + area - inter
        iou = torch.where(union > 0, inter / union.clamp(min=1), torch.zeros_like(union)).cpu().numpy()
        best = iou.argmax(1)
        values, pictures = tops[name]
        results.append(LayerDissection(name, iou, thresholds.cpu().numpy(), best,
                                       iou[np.arange(len(iou)), best] > iou_threshold,
                                       pictures.cpu().numpy(), values.cpu().numpy()))
    settings = {"quantile": quantile, "iou_threshold": iou_threshold, "bins": bins, "pictures": count,
                "layers": layer_names}
    return Dissection(results, names, settings, dataset, model)


def _check_spatial(name: str, act: torch.Tensor) -> None:
    if act.dim() != 4:
        raise DissectionError(f"layer {name!r} outputs shape {tuple(act.shape)}; dissection needs "
                              "spatial layers [B, C, h, w]")


def _global_span(up: torch.Tensor | None, units: int, device: torch.device) -> tuple[torch.Tensor, torch.Tensor]:
    """Per-unit (lowest, highest) value of this step's batches over every process."""
    lo = up.amin(dim=(0, 2, 3)) if up is not None else torch.full((units,), float("inf"), device=device)
    hi = up.amax(dim=(0, 2, 3)) if up is not None else torch.full((units,), float("-inf"), device=device)
    torch.distributed.all_reduce(lo, op=torch.distributed.ReduceOp.MIN)
    torch.distributed.all_reduce(hi, op=torch.distributed.ReduceOp.MAX)
    return lo, hi


def _merge_tops(tops: dict, layer_names: list[str], k: int, world: int) -> dict:
    """Every process's top pictures per unit merged (highest peak first, ties: lower index), on every rank."""
    mine = {name: (v.cpu(), p.cpu()) for name, (v, p) in tops.items()}
    found: list = [None] * world
    torch.distributed.all_gather_object(found, mine)
    merged = {}
    for name in layer_names:
        parts = [f[name] for f in found if name in f]
        values = torch.cat([v for v, _ in parts], 1)
        pictures = torch.cat([p for _, p in parts], 1)
        order = torch.sort(pictures, dim=1, stable=True).indices              # by index, then
        values, pictures = values.gather(1, order), pictures.gather(1, order)
        order = torch.sort(values, dim=1, descending=True, stable=True).indices[:, :k]  # by value
        merged[name] = (values.gather(1, order), pictures.gather(1, order))
    return merged


def _keep_top(tops: dict, name: str, peaks: torch.Tensor, idx: torch.Tensor, k: int) -> None:
    """Merge a batch's per-unit peaks [B, units] into the running top-k per unit (ties: lower index)."""
    values, pictures = peaks.T, idx[None].expand(peaks.shape[1], -1)
    if name in tops:
        values = torch.cat([tops[name][0], values], 1)
        pictures = torch.cat([tops[name][1], pictures], 1)
    order = torch.sort(values, dim=1, descending=True, stable=True).indices[:, :k]
    tops[name] = (values.gather(1, order), pictures.gather(1, order))

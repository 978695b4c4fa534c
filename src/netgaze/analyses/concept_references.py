"""Reference pictures per concept (CRP, Achtibat et al. 2023) and the class atlas, in one pass.

``concept_references(model, dataset, layer)`` walks the data once. Per batch: one forward pass
(no graph up to ``layer``), the gradient of every asked class's logit at the layer in one batched
backward pass through the rest of the model (``is_grads_batched``; classes in chunks that fit a
memory budget), and per channel and class the relevance ``sum over space of activation x
gradient`` (``netgaze.methods.concepts.relevance_formula``, the same numbers as
``channel_relevance(model, x, layer, target=class)``). Kept per channel, with running top-k lists
(``top_examples.keep_top``), so memory does not grow with the dataset:

- ``by_activation``: the pictures with the highest peak activation (``top_examples``' ranking);
- ``by_relevance[c]``: the pictures where the channel carries most of class ``c``'s logit
  ("relevance maximization"), over all pictures, whatever their label;
- ``atlas`` (``concept_atlas``): per class, over its own pictures explained for it, each
  channel's mean share, how often it is among a picture's ``per_picture`` most relevant
  channels, and the pictures with its highest share.

Every reference keeps a crop: a square around the channel's peak activation in that picture,
scaled to input pixels (``top_examples.peak_boxes``; the receptive field itself is not
computed). Cost: the forward pass plus a backward pass from the output to ``layer``; at the last
stage of a classifier that is close to a plain feature pass (``benchmarks/bench_concept_references.py``).
"""
from __future__ import annotations

import os
import warnings
from dataclasses import dataclass, field
from pathlib import Path
from typing import Sequence

import numpy as np
import torch
import torch.nn as nn
from torch.utils.data import DataLoader, Dataset

from netgaze.analyses.concept_atlas import AtlasCounts, ConceptAtlas
from netgaze.analyses.indexed import picture_of
from netgaze.analyses.top_examples import Best, TopExamples, keep_top, peak_boxes
from netgaze.core.layers import LayerRef
from netgaze.core.layouts import LayoutArg, ReshapeArg
from netgaze.core.recorder import OutputSelector, Recorder
from netgaze.errors import UserError
from netgaze.methods.concepts import relevance_formula
from netgaze.methods.templates import layer_readers

GRADIENT_BUDGET = 256 * 2 ** 20  # bytes of layer gradients per batched backward pass


class ConceptReferencesError(UserError):
    """Reference pictures cannot be found as asked (bad k, classes, labels, a model without logits)."""


@dataclass
class ConceptReferences:
    """What ``concept_references`` returns.

    Attributes:
        layer: the layer's resolved name.
        classes: the classes whose relevance was followed; ``class_names`` their names.
        by_activation: ``TopExamples`` of every channel by peak activation.
        by_relevance: per class, ``TopExamples`` of every channel by relevance to that class's
            logit (``values`` are relevances, ``peaks``/``boxes`` the channel's peak activation).
        atlas: the per-class numbers (``ConceptAtlas``).
    """

    layer: str
    classes: list[int]
    class_names: list[str]
    by_activation: TopExamples
    by_relevance: dict[int, TopExamples]
    atlas: ConceptAtlas
    dataset: Dataset | None = field(default=None, repr=False)

    @property
    def channels(self) -> list[int]:
        return self.by_activation.channels

    def to_dict(self, n: int = 8) -> dict:
        """Everything as JSON-ready lists; the atlas lists each class's ``n`` top channels."""
        tops = lambda t: {"values": np.round(t.values, 6).tolist(), "indices": t.indices.tolist(),  # noqa: E731
                          "peaks": t.peaks.tolist(), "boxes": t.boxes.tolist()}
        return {"layer": self.layer, "classes": self.classes, "class_names": self.class_names,
                "feature_size": list(self.by_activation.feature_size),
                "input_size": list(self.by_activation.input_size), "channels": self.channels,
                "by_activation": tops(self.by_activation),
                "by_relevance": {str(c): tops(t) for c, t in self.by_relevance.items()},
                "atlas": self.atlas.to_dict(n)}

    def save(self, folder: str | os.PathLike, maximized: dict[int, torch.Tensor] | None = None,
             labels: dict[int, str] | None = None, marker: dict | None = None, facts: dict | None = None,
             n_channels: int = 6) -> Path:
        """Write ``concepts.json`` (artifact + report manifest), the atlas figure and the reference figures.

        Args:
            maximized: channel -> its activation-maximization picture ``[C, h, w]`` (shown first).
            labels: channel -> its dissection label.
            marker: the marker numbers of ``marker_numbers`` (kept in the manifest).
            facts: run facts (run, model, dataset, epoch).
            n_channels: channels shown per class in the figures (the atlas keeps them all).
        """
        from netgaze.analyses.concept_figures import save_concepts

        return save_concepts(self, Path(folder), maximized or {}, labels or {}, marker, facts or {}, n_channels)


def concept_references(model: nn.Module, dataset: Dataset, layer: LayerRef = -1,
                       classes: Sequence[int] | None = None, k: int = 9, *, per_picture: int | None = None,
                       crop: int | None = None, batch_size: int = 64, device: str | torch.device | None = None,
                       progress: bool = True, output: OutputSelector = None, layout: LayoutArg = None,
                       reshape: ReshapeArg = None) -> ConceptReferences:
    """Every channel's reference pictures (by activation, by relevance per class) and the class atlas.

    Args:
        model: a classifier (its output, or ``output=``, is ``[B, classes]`` logits); never modified.
        dataset: items ``(image, label, ...)``: the label picks the class a picture counts for in
            the atlas (pictures of classes not followed are left out of it).
        layer: a spatial layer (maps, tokens, channels-last; see ``netgaze.core.layouts``); default the last stage.
        classes: the classes whose relevance is followed; None = every output class. Each costs a
            backward pass from the output to ``layer`` (batched together).
        k: reference pictures per channel (and per class); the atlas keeps as many relying pictures.
        per_picture: how many of a picture's most relevant channels count as its concepts (``ng.concepts``'
            k); None = 8, or all the layer's channels when it has fewer.
        crop: side of the crop around each peak in input pixels; None = three feature cells.
        batch_size, device, progress, output, layout, reshape: as for ``top_examples`` / ``concepts``.
    """
    if k < 1 or k > len(dataset):
        raise ConceptReferencesError(f"k must be from 1 to the dataset's {len(dataset)} pictures, got {k}")
    if per_picture is not None and per_picture < 1:
        raise ConceptReferencesError(f"per_picture must be >= 1, got {per_picture}")
    if device is None:
        first = next(model.parameters(), None)
        device = first.device if first is not None else torch.device("cpu")
    device = torch.device(device)
    from tqdm.auto import tqdm

    shape = tuple(picture_of(dataset[0]).shape)
    best_act: Best | None = None
    best_rel: Best | None = None
    counts: AtlasCounts | None = None
    chosen = wanted = None
    with Recorder(model, [layer], output=output, input_shape=(1, *shape)) as rec:
        name = rec.names[0]
        loader = DataLoader(_Labelled(dataset), batch_size=batch_size)
        for x, labels, idx in tqdm(loader, disable=not progress, desc=f"concept references {name}", unit="batch"):
            x = x.to(device)
            out = rec.forward(x)
            if not isinstance(out, torch.Tensor) or out.dim() != 2:
                raise ConceptReferencesError(f"the model's output is {_shape(out)}; concept references need "
                                             "[B, classes] logits (pick them with output=)")
            raw = rec.activations[name]
            read = layer_readers(rec, {name: tuple(x.shape[-2:])}, layout, reshape)[name]
            act = read(raw.detach())
            if act.dim() != 4:
                raise ConceptReferencesError(f"layer {name!r} reads as shape {tuple(act.shape)}; concept "
                                             "references need a spatial layer [B, C, h, w]")
            if chosen is None:
                chosen = _classes(classes, out.shape[1])
                wanted = min(8, act.shape[1]) if per_picture is None else per_picture
                if wanted > act.shape[1]:
                    raise ConceptReferencesError(f"per_picture={wanted} is more than the {act.shape[1]} channels "
                                                 f"of {name!r}")
                counts = AtlasCounts(len(chosen), act.shape[1], k, wanted)
                lookup = torch.full((out.shape[1],), -1, dtype=torch.long, device=act.device)
                lookup[torch.as_tensor(chosen, device=act.device)] = torch.arange(len(chosen), device=act.device)
                feature_size, input_size = tuple(act.shape[-2:]), tuple(x.shape[-2:])
            grads = _class_gradients(out, raw, chosen)                           # [K, B, ...]
            with torch.no_grad():
                relevance = torch.stack([relevance_formula(act, read(g)) for g in grads], 1)   # [B, K, C]
                peaks, where = act.flatten(2).max(2)                             # [B, C]
                idx = idx.to(act.device)
                best_act = keep_top(best_act, peaks.T, where.T, idx[None].expand(act.shape[1], -1), k)
                K, C = len(chosen), act.shape[1]
                flat_rel = relevance.permute(1, 2, 0).reshape(K * C, -1)
                flat_where = where.T[None].expand(K, -1, -1).reshape(K * C, -1)
                best_rel = keep_top(best_rel, flat_rel, flat_where, idx[None].expand(K * C, -1), k)
                counts.update(relevance, _rows(labels.to(act.device), lookup, name), where, idx)
    if chosen is None:
        raise ConceptReferencesError("the dataset is empty")
    names = list(getattr(dataset, "classes", None) or [])
    class_names = [str(names[c]) if c < len(names) else str(c) for c in chosen]
    channels = list(range(C))

    def tops(best: Best, rows: slice) -> TopExamples:
        values, positions, indices = (t[rows] for t in best)
        found, boxes = peak_boxes(positions, feature_size, input_size, crop)
        return TopExamples(name, channels, values.cpu().numpy(), indices.cpu().numpy(), found, boxes,
                           feature_size, input_size, dataset)

    by_relevance = {c: tops(best_rel, slice(j * C, (j + 1) * C)) for j, c in enumerate(chosen)}
    atlas = counts.finish(name, chosen, class_names, lambda best: tops(best, slice(None)))
    return ConceptReferences(name, chosen, class_names, tops(best_act, slice(None)), by_relevance, atlas, dataset)


class _Labelled(Dataset):
    """``dataset[i]`` as ``(picture, label, i)``; the label is -1 when the item has none."""

    def __init__(self, dataset: Dataset):
        self.dataset = dataset

    def __len__(self) -> int:
        return len(self.dataset)

    def __getitem__(self, i: int):
        item = self.dataset[i]
        label = item[1] if isinstance(item, (tuple, list)) and len(item) > 1 else -1
        if isinstance(label, torch.Tensor) and label.numel() == 1:
            label = label.item()
        if isinstance(label, bool) or not isinstance(label, (int, np.integer)):
            label = -1
        return picture_of(item), int(label), i


def _classes(classes: Sequence[int] | None, n: int) -> list[int]:
    chosen = list(range(n)) if classes is None else [int(c) for c in classes]
    bad = [c for c in chosen if not 0 <= c < n]
    if bad or not chosen or len(set(chosen)) != len(chosen):
        raise ConceptReferencesError(f"classes {list(classes or [])} must be distinct indices in 0..{n - 1} "
                                     "(the model's outputs)")
    return chosen


def _rows(labels: torch.Tensor, lookup: torch.Tensor, name: str) -> torch.Tensor:
    """Each picture's row among the followed classes (-1: a class not followed)."""
    if bool((labels < 0).all()):
        raise ConceptReferencesError("the dataset's items carry no class labels ((image, label) pairs); "
                                     "the atlas counts each picture for its own class")
    inside = (labels >= 0) & (labels < len(lookup))
    return torch.where(inside, lookup[labels.clamp(0, len(lookup) - 1)], torch.full_like(labels, -1))


def _class_gradients(out: torch.Tensor, activations: torch.Tensor, classes: list[int]) -> torch.Tensor:
    """``d out[:, c] / d activations`` for each class ``c``: ``[K, *activations.shape]``.

    Batched backward passes (``is_grads_batched``) over chunks of classes that fit
    ``GRADIENT_BUDGET``; a model without batching rules falls back to one pass per class.
    """
    if not out.requires_grad:
        raise ConceptReferencesError("the model's output does not depend on the layer")
    per_class = activations.numel() * activations.element_size()
    chunk = max(1, GRADIENT_BUDGET // max(1, per_class))
    seeds = torch.zeros(len(classes), *out.shape, dtype=out.dtype, device=out.device)
    seeds[torch.arange(len(classes)), :, torch.as_tensor(classes)] = 1
    found = []
    for start in range(0, len(classes), chunk):
        part = seeds[start:start + chunk]
        try:
            with warnings.catch_warnings():
                warnings.filterwarnings("ignore", message=".*performance drop.*")
                found.append(torch.autograd.grad(out, activations, grad_outputs=part, is_grads_batched=True,
                                                 retain_graph=True)[0])
        except RuntimeError:   # an operation without a batching rule (vmap): one pass per class
            found.append(torch.stack([torch.autograd.grad(out, activations, grad_outputs=seed, retain_graph=True)[0]
                                      for seed in part]))
    return torch.cat(found)


def marker_numbers(result: ConceptReferences, dataset: Dataset, n: int = 8) -> dict | None:
    """How much of each class's top concepts' reference pictures carry a planted marker; None without one.

    Needs a dataset with ``markers`` (bool [N]) and ``marker_masks`` (bool [N, H, W]) and a marker
    class (``shapes(marker_classes=...)``). Per followed class and each of its ``n`` top channels:
    ``carry``, the relevance references (to that class) that carry the marker, and ``covered``,
    those whose crop overlaps the marker's pixels; ``concept`` is the channel with the most
    covered references (ties: the higher mean share), the shortcut's concept on a marker run.
    """
    markers = getattr(dataset, "markers", None)
    if not getattr(dataset, "marker_classes", None) or not isinstance(markers, torch.Tensor):
        return None
    masks = dataset.marker_masks
    out = {"marker_classes": [int(c) for c in dataset.marker_classes], "classes": {},
           "base_rate": float(markers.float().mean()) if len(markers) else 0.0}
    for cls in result.classes:
        refs, rows = result.by_relevance[cls], {}
        for c in result.atlas.ranking(cls, n):
            carry = [bool(markers[int(i)]) for i in refs.indices[c]]
            covered = [bool(masks[int(i), y0:y1, x0:x1].any())
                       for i, (y0, x0, y1, x1) in zip(refs.indices[c], refs.boxes[c])]
            rows[str(c)] = {"carry": sum(carry), "covered": sum(covered), "of": len(carry)}
        ranked = result.atlas.ranking(cls, n)
        concept = max(ranked, key=lambda c: (rows[str(c)]["covered"], -ranked.index(c)))
        out["classes"][str(cls)] = {"channels": rows, "concept": int(concept),
                                    "rank": ranked.index(concept) + 1}
    return out


def _shape(out) -> str:
    return f"shape {tuple(out.shape)}" if isinstance(out, torch.Tensor) else type(out).__name__


__all__ = ["ConceptReferences", "ConceptReferencesError", "concept_references", "marker_numbers"]

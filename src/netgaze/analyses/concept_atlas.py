"""The concept atlas of a classifier: per class, which channels of a layer its pictures rely on.

Each picture counts for its own class (its label) and is explained for that class's logit. Per
class and channel, over the class's pictures:

- ``mean_share``: the channel's relevance summed over the pictures divided by their total relevance
  (summed over all the layer's channels): the mean of the pictures' shares
  (``netgaze.methods.concepts.shares_of``) weighted by each picture's total, so the shares of all
  channels add up to 1 and a picture whose total is near 0 cannot dominate;
- ``top_rate``: the fraction of the pictures that have the channel among their ``per_picture``
  most relevant channels (what ``ng.concepts(..., k=per_picture)`` would list);
- ``relying``: the class's pictures with the channel's highest share (and the crop around the
  channel's peak in each), among those whose total relevance is positive (a negative total
  turns shares upside down).

Accumulated batch by batch (``AtlasCounts``).
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Callable

import numpy as np
import torch
import torch.nn.functional as F

from netgaze.analyses.top_examples import Best, TopExamples, keep_top
from netgaze.methods.concepts import shares_of


@dataclass
class ConceptAtlas:
    """Per class (rows, in ``classes`` order) and channel (columns) of one layer.

    Attributes:
        pictures: int [K], the class's pictures.
        mean_share: float [K, C]; top_rate: float [K, C] in [0, 1] (see the module's text).
        relying: per class, ``TopExamples`` whose ``values`` are shares (a row holds fewer
            pictures than ``k`` when the class has fewer: those entries have index -1).
        per_picture: how many channels count as a picture's concepts.
    """

    layer: str
    classes: list[int]
    class_names: list[str]
    pictures: np.ndarray
    mean_share: np.ndarray
    top_rate: np.ndarray
    relying: dict[int, TopExamples]
    per_picture: int

    def ranking(self, cls: int, n: int | None = None) -> list[int]:
        """The channels of class ``cls`` by mean share, highest first (ties: lower channel first)."""
        row = self.mean_share[self.classes.index(cls)]
        order = sorted(range(len(row)), key=lambda c: (-float(row[c]), c))
        return order[:n] if n is not None else order

    def to_dict(self, n: int = 8) -> dict:
        """Per class: its pictures and its ``n`` top channels with their numbers and relying pictures."""
        out = {}
        for j, cls in enumerate(self.classes):
            relying = self.relying[cls]
            rows = []
            for c in self.ranking(cls, n):
                keep = relying.indices[c] >= 0
                rows.append({"channel": c, "mean_share": float(self.mean_share[j, c]),
                             "top_rate": float(self.top_rate[j, c]),
                             "relying": relying.indices[c][keep].tolist(),
                             "relying_shares": np.round(relying.values[c][keep], 6).tolist(),
                             "relying_boxes": relying.boxes[c][keep].tolist()})
            out[str(cls)] = {"name": self.class_names[j], "pictures": int(self.pictures[j]), "channels": rows}
        return {"layer": self.layer, "per_picture": self.per_picture, "classes": out,
                "mean_share": np.round(self.mean_share, 6).tolist(), "top_rate": np.round(self.top_rate, 6).tolist()}


class AtlasCounts:
    """The atlas' running sums and top lists over batches; memory ``K x C x k``."""

    def __init__(self, n_classes: int, n_channels: int, k: int, per_picture: int):
        self.K, self.C, self.k, self.per_picture = n_classes, n_channels, k, per_picture
        self.pictures = torch.zeros(n_classes, dtype=torch.long)
        self.relevance_sum = torch.zeros(n_classes, n_channels, dtype=torch.float64)
        self.total_sum = torch.zeros(n_classes, dtype=torch.float64)
        self.in_top = torch.zeros(n_classes, n_channels, dtype=torch.long)
        self.best: Best | None = None

    def update(self, relevance: torch.Tensor, rows: torch.Tensor, where: torch.Tensor, idx: torch.Tensor) -> None:
        """One batch: ``relevance`` [B, K, C] for every followed class, ``rows`` [B] each picture's
        class row (-1: not followed), ``where`` [B, C] the channels' peak positions, ``idx`` [B]."""
        own = rows >= 0
        safe = rows.clamp(min=0)
        mine = relevance[torch.arange(len(rows), device=rows.device), safe]          # [B, C]
        total = mine.sum(1)
        shares = shares_of(mine, total)
        top = F.one_hot(mine.topk(self.per_picture, dim=1).indices, self.C).sum(1)    # [B, C]
        keep = own.cpu()
        r = safe.cpu()[keep]
        self.pictures.index_add_(0, r, torch.ones_like(r))
        self.relevance_sum.index_add_(0, r, mine.cpu()[keep].double())
        self.total_sum.index_add_(0, r, total.cpu()[keep].double())
        self.in_top.index_add_(0, r, top.cpu()[keep].long())
        # [K, C, B]: a picture competes only in its own class's rows
        belongs = (rows[None, :] == torch.arange(self.K, device=rows.device)[:, None]) & (total > 0)  # [K, B]
        values = torch.where(belongs[:, None, :], shares.T[None], torch.full_like(shares.T[None], -float("inf")))
        B = len(rows)
        self.best = keep_top(self.best, values.reshape(self.K * self.C, B),
                             where.T[None].expand(self.K, -1, -1).reshape(self.K * self.C, B),
                             idx[None].expand(self.K * self.C, -1), self.k)

    def finish(self, layer: str, classes: list[int], class_names: list[str],
               tops: Callable[[Best], TopExamples]) -> ConceptAtlas:
        n = self.pictures.clamp(min=1).double()[:, None]
        values, positions, indices = self.best
        indices = torch.where(torch.isfinite(values), indices, torch.full_like(indices, -1))
        relying = {}
        for j, cls in enumerate(classes):
            rows = slice(j * self.C, (j + 1) * self.C)
            relying[cls] = tops((values[rows], positions[rows], indices[rows]))
        totals = self.total_sum[:, None]
        share = torch.where(totals == 0, torch.zeros_like(self.relevance_sum),
                            self.relevance_sum / torch.where(totals == 0, torch.ones_like(totals), totals))
        return ConceptAtlas(layer, classes, class_names, self.pictures.numpy(), share.numpy(),
                            (self.in_top.double() / n).numpy(), relying, self.per_picture)


__all__ = ["ConceptAtlas", "AtlasCounts"]

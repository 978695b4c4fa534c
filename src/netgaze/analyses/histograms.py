"""Streaming per-unit histograms over a running range: quantiles and thresholded counts in one pass.

``UnitHistograms(units, bins)`` keeps, for every unit, a histogram of its values with ``bins``
equal bins over a range ``[low, low + bins * width)`` that grows as values arrive: when a batch
leaves the range, the bin width doubles (pairs of bins merge) until it fits, on the side where
it left. Beside the total histogram it keeps one histogram per *region* (e.g. a concept mask),
counting only the values inside that region, so after the pass the number of values above any
threshold, inside and outside each region, is a sum over bins.

Accuracy: a threshold is a bin edge. The top-``q`` threshold is the lowest edge with at most
``q`` of the values above it, so the share of values kept is exact up to the mass of one bin,
whose width is at most ``range / bins`` of the unit's final range (with the default 2,048 bins
and a range twice the largest value, 1/1,024 of the largest value). Memory: ``units x (regions
+ 1) x bins`` counts, whatever the number of pictures.
"""
from __future__ import annotations

import torch


class UnitHistograms:
    """Histograms per unit (and per region) of values streamed in batches.

    Args:
        units: number of units (channels).
        regions: number of regions counted separately besides the total.
        bins: bins per histogram.
        device: where the counts live (the values' device).
    """

    def __init__(self, units: int, regions: int = 0, bins: int = 2048, device: torch.device | str = "cpu"):
        self.units, self.regions, self.bins = units, regions, bins
        self.counts = torch.zeros(units, regions + 1, bins, dtype=torch.float64, device=device)
        self.low: torch.Tensor | None = None
        self.width: torch.Tensor | None = None

    def _fit_range(self, lo: torch.Tensor, hi: torch.Tensor) -> None:
        """Grow each unit's range (doubling its bin width) until [lo, hi] fits in it."""
        if self.low is None:
            span = (hi - lo).clamp(min=1e-12)
            self.low = torch.where(lo >= 0, torch.zeros_like(lo), lo - 0.01 * span)
            self.width = ((hi - self.low) * 1.01).clamp(min=1e-6) / self.bins
            return
        while True:
            top = self.low + self.width * self.bins
            below, above = lo < self.low, hi >= top
            grow = below | above
            if not bool(grow.any()):
                return
            # Merge pairs of bins: growing upwards keeps ``low``; growing downwards keeps the top.
            offset = torch.where(below, self.bins, 0)
            merged = torch.zeros_like(self.counts)
            index = ((torch.arange(self.bins, device=self.counts.device)[None] + offset[:, None]) // 2)
            index = index.clamp(max=self.bins - 1)  # (offset + i) // 2 < bins always; clamp is a guard
            merged.scatter_add_(2, index[:, None, :].expand_as(self.counts), self.counts)
            self.counts = torch.where(grow[:, None, None], merged, self.counts)
            self.low = torch.where(below, self.low - self.width * self.bins, self.low)
            self.width = torch.where(grow, self.width * 2, self.width)

    def fit(self, lo: torch.Tensor, hi: torch.Tensor) -> None:
        """Grow every unit's range to hold ``[lo, hi]`` (per unit) without counting anything: processes
        that count different pictures fit the same spans in the same order, so their counts add up
        bin for bin (``dissect`` under torchrun)."""
        self._fit_range(lo.double(), hi.double())

    def add(self, values: torch.Tensor, regions: torch.Tensor | None = None,
            cells: tuple[torch.Tensor, torch.Tensor] | None = None, span: tuple[torch.Tensor, torch.Tensor] | None = None
            ) -> None:
        """Count values [N, units, P] (P values per unit per sample); ``regions`` bool [N, R, P] marks
        which values fall in each region (shared by all units).

        Regions may overlap: each value is counted once, in the *cell* of its region pattern
        (the set of regions it lies in; few patterns occur), and cells are added into the regions
        they belong to afterwards. ``cells`` (from ``region_cells(regions)``) saves recomputing
        them when several layers see the same regions. ``span``: per-unit (lo, hi) to fit instead of
        this batch's own (the span of every process's batch under torchrun).
        """
        values = values.detach().float()
        n = values.shape[0]
        if span is None:
            span = (values.amin(dim=(0, 2)), values.amax(dim=(0, 2)))
        self._fit_range(span[0].double(), span[1].double())
        if (regions is None and cells is None) or self.regions == 0:
            cells, cell_of = torch.zeros(1, dtype=torch.long, device=values.device), None
        else:
            cells, cell_of = cells if cells is not None else region_cells(regions)
        # key = bin + (unit * cells + cell) * bins, built in place in float32 (exact below 2^24)
        size = self.units * len(cells) * self.bins
        key = values - self.low.float()[None, :, None]
        key.div_(self.width.float()[None, :, None]).floor_().clamp_(0, self.bins - 1)
        key += (torch.arange(self.units, device=values.device) * (len(cells) * self.bins)).float()[None, :, None]
        if cell_of is not None:
            key += (cell_of.view(n, 1, -1) * self.bins).float()
        key = key.long() if size >= 2 ** 24 else key.int()
        if size >= 2 ** 24:  # recompute exactly in int64 (float32 cannot hold every key)
            bins = ((values - self.low.float()[None, :, None]) / self.width.float()[None, :, None]).floor_()
            key = bins.clamp_(0, self.bins - 1).long() + torch.arange(self.units, device=values.device)[
                None, :, None] * (len(cells) * self.bins)
            if cell_of is not None:
                key += cell_of.view(n, 1, -1) * self.bins
        counts = torch.bincount(key.ravel(), minlength=size)
        counts = counts.view(self.units, len(cells), self.bins).to(self.counts.dtype)
        self.counts[:, 0] += counts.sum(1)
        if cell_of is not None:
            member = ((cells[:, None] >> torch.arange(self.regions, device=values.device)[None]) & 1).to(counts.dtype)
            self.counts[:, 1:] += torch.einsum("ucb,cr->urb", counts, member)

    def edges(self) -> torch.Tensor:
        """Bin edges [units, bins + 1]."""
        steps = torch.arange(self.bins + 1, dtype=torch.float64, device=self.counts.device)
        return self.low[:, None] + self.width[:, None] * steps[None]

    def top_threshold(self, share: float) -> tuple[torch.Tensor, torch.Tensor]:
        """Per unit: the lowest bin edge with at most ``share`` of the values above it, and that bin.

        Returns (thresholds [units], first kept bin [units]).
        """
        total = self.counts[:, 0]
        above = total.flip(1).cumsum(1).flip(1)  # values in bins >= b
        allowed = share * total.sum(1, keepdim=True)
        ok = above <= allowed + 1e-9
        first = torch.where(ok.any(1), ok.float().argmax(1), torch.full_like(ok[:, 0], self.bins, dtype=torch.long))
        edges = self.edges()
        return edges.gather(1, first[:, None].clamp(max=self.bins))[:, 0], first

    def counts_from(self, first: torch.Tensor) -> torch.Tensor:
        """Counts in bins >= ``first`` per unit: [units, regions + 1] (column 0 = all values)."""
        keep = torch.arange(self.bins, device=self.counts.device)[None] >= first[:, None]
        return (self.counts * keep[:, None, :]).sum(2)


def region_cells(regions: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """The region patterns that occur and each value's pattern: (cells [C] as bit sets, cell index [N * P]).

    ``regions`` is bool [N, R, P]. Linear time for up to 20 regions (a lookup table), else a sort.
    """
    n, r = regions.shape[:2]
    powers = 2 ** torch.arange(r, device=regions.device)
    pattern = (regions.reshape(n, r, -1).long() * powers[None, :, None]).sum(1).ravel()
    if r > 20:
        return torch.unique(pattern, return_inverse=True)
    present = torch.bincount(pattern, minlength=2 ** r) > 0
    cells = torch.nonzero(present)[:, 0]
    lookup = torch.cumsum(present, 0) - 1
    return cells, lookup[pattern]

"""What the strategies keep of each explained picture, read from ``explain_dataset``'s shards in
chunks: a small L1-normalised map, the prediction, and the map's energy on the object and the marker."""
from __future__ import annotations

from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F


def marker_flags(dataset, index: np.ndarray) -> np.ndarray | None:
    """Whether each picture of ``index`` carries the planted marker; None when the data plants none."""
    markers = getattr(dataset, "markers", None)
    if markers is None or not getattr(dataset, "marker_classes", None):
        return None
    return np.asarray(markers)[index]


def read_shards(folder: Path, positions: np.ndarray, dataset, resolution: int, keep: np.ndarray,
                 chunk: int = 256):
    """For the rows ``keep`` (positions into ``positions``, in that order): downsampled L1-normalised maps
    [n, r, r], predictions [n], energy share in the object [n], pointing hit on the object [n], energy
    share in the marker [n] (NaN where unknown).

    The shards are memory-mapped and read ``chunk`` maps at a time, each shard's pages let go after
    it: memory holds the small maps and one chunk, however many pictures there are.
    """
    from netgaze._util.tensor_files import drop_pages
    from netgaze.analyses.dataset_explanations import open_explanations
    from netgaze.metrics.pointing import pointing_hits

    n = len(keep)
    slot = np.full(len(positions), -1, dtype=np.int64)
    slot[keep] = np.arange(n)
    small = np.zeros((n, resolution, resolution), dtype=np.float32)
    predictions = np.zeros(n, dtype=np.int64)
    energy_object = np.full(n, np.nan, dtype=np.float32)
    energy_marker = np.full(n, np.nan, dtype=np.float32)
    pointing = np.full(n, np.nan, dtype=np.float32)
    masks = getattr(dataset, "masks", None)
    marker = marker_flags(dataset, np.arange(len(dataset))) is not None
    if n == 0:
        return small, predictions, energy_object, pointing, energy_marker
    for shard in open_explanations(folder).shards(("maps", "indices", "predictions")):
        shard_rows = shard["indices"].numpy()
        for lo in range(0, len(shard_rows), chunk):
            rows = shard_rows[lo:lo + chunk]
            picked = np.flatnonzero(slot[rows] >= 0)
            if not len(picked):
                continue
            at = slot[rows[picked]]
            choose = torch.as_tensor(lo + picked)
            maps = shard["maps"].index_select(0, choose).float().clamp(min=0)
            pooled = F.adaptive_avg_pool2d(maps[:, None], resolution)[:, 0]
            total = pooled.flatten(1).sum(1).clamp(min=1e-12)
            small[at] = (pooled / total[:, None, None]).numpy()
            predictions[at] = shard["predictions"].index_select(0, choose).numpy()
            ids = torch.as_tensor(positions[rows[picked]])
            energy = maps.flatten(1).sum(1)
            if isinstance(masks, torch.Tensor) and tuple(masks.shape[-2:]) == tuple(maps.shape[-2:]):
                inside = (maps * masks[ids]).flatten(1).sum(1)
                energy_object[at] = torch.where(energy > 0, inside / energy.clamp(min=1e-12), torch.nan).numpy()
                pointing[at] = torch.where(energy > 0, pointing_hits(maps, masks[ids]), torch.nan).numpy()
                drop_pages(masks, int(ids.min()), int(ids.max()) + 1)
            if marker:
                region = dataset.marker_masks[ids]
                if tuple(region.shape[-2:]) == tuple(maps.shape[-2:]):
                    inside = (maps * region).flatten(1).sum(1)
                    energy_marker[at] = torch.where(energy > 0, inside / energy.clamp(min=1e-12), torch.nan).numpy()
                drop_pages(dataset.marker_masks, int(ids.min()), int(ids.max()) + 1)
    return small, predictions, energy_object, pointing, energy_marker

"""Strategies of a model, found without labels: spectral relevance analysis (SpRAy).

Lapuschkin et al., "Unmasking Clever Hans predictors and assessing what machines really learn"
(Nature Communications 2019): explain every picture of a class, cluster the explanations, and
each cluster is one way the model decides that class. A cluster whose maps lie outside the
object (a watermark, a border, a background patch) is a likely shortcut.

``strategies(model, dataset)`` explains the pictures with ``explain_dataset`` (shards: it scales,
runs under torchrun and resumes when ``out`` is given), reads the shards one at a time keeping
only downsampled maps, then per class: L1-normalised maps -> sparse kNN affinity -> spectral
embedding -> eigengap -> k-means (``netgaze.analyses.spectral``), per-cluster summaries, and a
t-SNE of the spectral embedding.

At scale: the shards are memory-mapped and read a chunk at a time, the neighbour search is
approximate above ``spectral.EXACT_LIMIT`` maps (near-linear: a million 16x16 maps of one class
on two cores in ``benchmarks/bench_scale.py``). Under ``torchrun`` the explanations are sharded
by rank (``explain_dataset``), then the classes are spread over the processes (the largest
first, each to the least loaded), and rank 0 gathers every class's result.
"""
from __future__ import annotations

import contextlib
import os
import tempfile
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Sequence

import numpy as np
import torch
import torch.distributed
import torch.nn as nn
from torch.utils.data import Dataset, Subset

from netgaze.analyses.spectral import SpectralResult, spectral_result
from netgaze.analyses.strategy_shards import marker_flags, read_shards
from netgaze.errors import UserError
from netgaze.core.layers import LayerRef
from netgaze.core.recorder import OutputSelector

SHORTCUT_RATIO = 0.5   # a likely shortcut: its maps peak on the object less than half as often as the rest's
MIN_SHORTCUT_SHARE = 0.05  # ... and it holds at least this share of its class's pictures


class StrategiesError(UserError):
    """Strategies cannot be computed as asked (unknown class, too few pictures)."""


@dataclass
class ClusterSummary:
    """One strategy (cluster) of one class.

    Attributes:
        cluster: the cluster id (0 = the largest).
        size: pictures in it; ``share``: its share of the class's pictures.
        accuracy: share of its pictures the model classifies correctly.
        energy_in_object: mean share of the map's energy inside the object's mask (None without masks).
        peak_on_object: share of its maps whose maximum lies on the object (the pointing game;
            None without masks).
        energy_in_marker: the same inside the marker's mask (datasets with a marker only).
        marker_share: share of its pictures that carry the marker (datasets with a marker only).
        typical: dataset indices of its most typical pictures (nearest to the cluster's centre).
        mean_map: float [r, r], the mean of its normalised, downsampled maps.
        peak: where the mean map peaks, in words ("top-left", "centre", ...).
        shortcut: True when its maps lie mostly outside the object, compared with the class's other
            clusters (see ``shortcut_reason``).
    """

    cluster: int
    size: int
    share: float
    accuracy: float
    energy_in_object: float | None
    peak_on_object: float | None
    energy_in_marker: float | None
    marker_share: float | None
    typical: list[int]
    mean_map: np.ndarray
    peak: str
    shortcut: bool = False
    shortcut_reason: str = ""

    def to_dict(self) -> dict[str, Any]:
        return {"cluster": self.cluster, "size": self.size, "share": self.share, "accuracy": self.accuracy,
                "energy_in_object": self.energy_in_object, "peak_on_object": self.peak_on_object,
                "energy_in_marker": self.energy_in_marker,
                "marker_share": self.marker_share, "typical": self.typical, "peak": self.peak,
                "shortcut": self.shortcut, "shortcut_reason": self.shortcut_reason,
                "mean_map": np.round(self.mean_map, 6).tolist()}


@dataclass
class Strategies:
    """What ``strategies`` found. Per analysed class ``c`` (an int):

    Attributes:
        indices: ``indices[c]``, int64 [n_c]: dataset indices of class ``c``'s pictures, in dataset order.
        clusters: ``clusters[c]``, int64 [n_c]: each such picture's cluster.
        summaries: ``summaries[c]``: one ``ClusterSummary`` per cluster.
        spectral: ``spectral[c]``: eigenvalues, embedding, chosen number of clusters.
        tsne: ``tsne[c]``: float32 [n_c, 2] t-SNE of the spectral embedding (None for tiny classes),
            with ``tsne_rows[c]`` the rows it covers (a random subset above ``tsne_limit``).
        predictions: ``predictions[c]``, int64 [n_c]: the model's class for each such picture.
        maps: ``maps[c]``, float32 [n_c, r, r]: the downsampled, L1-normalised maps that were clustered.
        settings: method, layer, target, resolution, neighbours, ...
        class_names: names of all classes of the dataset.
    """

    indices: dict[int, np.ndarray]
    clusters: dict[int, np.ndarray]
    summaries: dict[int, list[ClusterSummary]]
    spectral: dict[int, SpectralResult]
    tsne: dict[int, np.ndarray | None]
    tsne_rows: dict[int, np.ndarray]
    predictions: dict[int, np.ndarray]
    settings: dict[str, Any]
    class_names: list[str]
    dataset: Dataset | None = field(default=None, repr=False)
    maps: dict[int, np.ndarray] = field(default_factory=dict, repr=False)

    @property
    def classes(self) -> list[int]:
        return list(self.indices)

    def shortcuts(self) -> list[tuple[int, ClusterSummary]]:
        """(class, cluster summary) of every cluster flagged as a likely shortcut."""
        return [(c, s) for c, sums in self.summaries.items() for s in sums if s.shortcut]

    def marker_f1(self, c: int) -> tuple[int, float] | None:
        """(cluster, F1) of the cluster of class ``c`` that best matches "has the marker" (marker datasets only)."""
        has = marker_flags(self.dataset, self.indices[c])
        if has is None or not has.any():
            return None
        best = (0, 0.0)
        for k in range(self.spectral[c].n_clusters):
            member = self.clusters[c] == k
            tp = float((member & has).sum())
            f1 = 2 * tp / (member.sum() + has.sum()) if tp else 0.0
            best = max(best, (k, f1), key=lambda t: t[1])
        return best

    def to_dict(self) -> dict[str, Any]:
        out = {"settings": self.settings, "class_names": self.class_names, "classes": {}}
        for c in self.classes:
            spec = self.spectral[c]
            entry = {"name": self.class_names[c] if c < len(self.class_names) else str(c),
                     "indices": self.indices[c].tolist(), "clusters": self.clusters[c].tolist(),
                     "n_clusters": spec.n_clusters, "eigenvalues": np.round(spec.eigenvalues, 6).tolist(),
                     "n_neighbors": spec.n_neighbors, "summaries": [s.to_dict() for s in self.summaries[c]]}
            best = self.marker_f1(c)
            if best is not None:
                entry["marker_cluster"], entry["marker_f1"] = best
            out["classes"][str(c)] = entry
        return out

    def save(self, folder: str | os.PathLike) -> Path:
        """Write ``strategies.json`` (the artifact, also a report manifest) and its PNG figures."""
        from netgaze.analyses.strategies_figures import save_strategies

        return save_strategies(self, Path(folder))


def strategies(model: nn.Module, dataset: Dataset, classes: Sequence[int | str] | None = None,
               method: str = "gradcam", layer: LayerRef | None = None, n_clusters: int | None = None, *,
               target: str | int | None = "label", resolution: int = 16, n_neighbors: int = 10,
               max_clusters: int = 8, n_typical: int = 8, out: str | os.PathLike | None = None,
               batch_size: int = 64, shard_size: int = 1024, tsne_limit: int = 5000,
               device: str | torch.device | None = None, random_state: int = 0,
               progress: bool = True, output: OutputSelector = None) -> Strategies:
    """Find each class's strategies by clustering its explanations (SpRAy).

    Args:
        model: the classifier; never modified.
        dataset: items ``(image, label)``; ``.masks`` (object masks) and ``.markers`` /
            ``.marker_masks`` (``shapes`` with a marker) add the energy and marker columns.
        classes: class indices or names; None = every class.
        method: any method of ``netgaze.methods.METHODS`` (per-channel attributions become one map).
        layer: the explained layer of layer methods; None = the last spatial stage.
        n_clusters: fixed clusters per class; None = chosen per class by the eigengap.
        target: what is explained: "label" (each picture's class, as SpRAy does), None (the
            predicted class) or a class index.
        resolution: maps are average-pooled to ``resolution`` x ``resolution`` and L1-normalised.
        n_neighbors: neighbours per picture in the sparse affinity graph.
        max_clusters: the most clusters the eigengap may choose.
        n_typical: typical pictures kept per cluster.
        out: folder for the explanation shards (kept, and a rerun resumes from them); None = a
            temporary folder removed afterwards.
        batch_size: of ``explain_dataset``.
        shard_size: of ``explain_dataset``.
        tsne_limit: at most this many points per class go into the t-SNE (a seeded subset).
        device: where to compute; default the model's device.
        random_state: seeds the eigensolver, k-means and t-SNE.
        progress: progress bars.
        output: which part of a tuple/dict model output is explained (``Recorder``); None: the
            output, a dict's ``"out"`` or ``"logits"`` (Hugging Face models), a tuple's first element.

    Under ``torchrun`` every process calls it alike: rank 0 returns every class, the other ranks
    the classes they clustered. Without ``out`` the shards go to a temporary folder that rank 0
    makes and shares (one machine); across machines pass ``out`` on a shared file system.
    """
    from netgaze.analyses.dataset_explanations import explain_dataset
    from netgaze.analyses.indexed import join_process_group, leave_process_group
    from netgaze.core.layers import resolve_layer

    labels = _labels(dataset)
    names = list(getattr(dataset, "classes", []) or [str(c) for c in range(int(labels.max()) + 1)])
    wanted = _class_ids(classes, names, labels)
    positions = np.flatnonzero(np.isin(labels, wanted))
    subset = dataset if len(positions) == len(dataset) else Subset(dataset, positions.tolist())
    from netgaze.metrics.maps import resolve_method

    takes_layer = resolve_method(method)[2]
    layer_name = resolve_layer(model, -1 if layer is None else layer)[0] if takes_layer else None
    settings = {"method": method, "layer": layer_name, "target": target, "resolution": resolution,
                "n_neighbors": n_neighbors, "max_clusters": max_clusters, "n_clusters": n_clusters,
                "random_state": random_state, "pictures": int(len(positions))}
    for c in wanted:
        count = int((labels[positions] == c).sum())
        if count < 3:
            raise StrategiesError(f"class {names[c]!r} has {count} pictures; strategies need at least 3")
    if device is None:
        first = next(model.parameters(), None)
        device = first.device if first is not None else torch.device("cpu")
    rank, world, created = join_process_group(device)
    try:
        with _shared_folder(out, world) as folder:
            explain_dataset(model, subset, method, layer_name, target=target, out=folder, shard_size=shard_size,
                            batch_size=batch_size, device=device, progress=progress, output=output)
            if world > 1:
                torch.distributed.barrier()  # rank 0 has written the index
            mine = _spread_classes(wanted, labels[positions], world)[rank]
            rows = [np.flatnonzero(labels[positions] == c) for c in mine]
            read = read_shards(folder, positions, dataset, resolution, np.concatenate(rows) if rows else
                                np.zeros(0, dtype=np.int64))
            if world > 1:
                torch.distributed.barrier()  # every process has read the shards (a scratch folder may go)
        flags = marker_flags(dataset, np.arange(len(labels)))
        parts, offset = [], 0
        for c, class_rows in zip(mine, rows):
            here = slice(offset, offset + len(class_rows))
            offset += len(class_rows)
            small, predictions, energy_object, pointing, energy_marker = (a[here] for a in read)
            spec = spectral_result(small.reshape(len(small), -1), n_clusters=n_clusters, n_neighbors=n_neighbors,
                                   max_clusters=max_clusters, random_state=random_state)
            index = positions[class_rows]
            summaries = _summaries(spec, index, small, predictions == c, energy_object, pointing, energy_marker,
                                   None if flags is None else flags[index], n_typical)
            tsne_rows, tsne_points = _tsne(spec, tsne_limit, random_state)
            parts.append((c, index, spec, predictions, small, summaries, tsne_rows, tsne_points))
        if world > 1:
            from netgaze.analyses.indexed import gather_to_main

            gathered = gather_to_main(parts, world)
            if rank == 0:
                parts = [part for found in gathered for part in found]
    finally:
        leave_process_group(created)
    result = Strategies({}, {}, {}, {}, {}, {}, {}, settings, names, dataset)
    for c, index, spec, predictions, small, summaries, tsne_rows, tsne_points in sorted(parts, key=lambda p: p[0]):
        result.indices[c], result.clusters[c], result.spectral[c] = index, spec.labels, spec
        result.predictions[c], result.maps[c], result.summaries[c] = predictions, small, summaries
        result.tsne_rows[c], result.tsne[c] = tsne_rows, tsne_points
    return result


@contextlib.contextmanager
def _shared_folder(out, world: int):
    """The shards' folder: ``out``, or a temporary one made by rank 0 and shared with every process
    (torchrun on one machine; on several, pass ``out`` on a shared file system)."""
    if out is not None:
        yield Path(out)
        return
    import shutil

    made = tempfile.mkdtemp(prefix="netgaze-strategies-") if not torch.distributed.is_initialized() or \
        torch.distributed.get_rank() == 0 else None
    if world > 1:
        box = [made]
        torch.distributed.broadcast_object_list(box, src=0)
        made = box[0]
    try:
        yield Path(made)
    finally:
        if made is not None and (world == 1 or torch.distributed.get_rank() == 0):
            shutil.rmtree(made, ignore_errors=True)


def _spread_classes(classes: list[int], labels: np.ndarray, world: int) -> list[list[int]]:
    """Classes per process: the largest first, each to the least loaded process (rank 0 on ties),
    so the biggest class is clustered by rank 0 and never sent over."""
    load, out = [0] * world, [[] for _ in range(world)]
    for c in sorted(classes, key=lambda c: (-int((labels == c).sum()), c)):
        r = min(range(world), key=lambda r: (load[r], r))
        out[r].append(c)
        load[r] += int((labels == c).sum())
    return [sorted(part) for part in out]


def _labels(dataset: Dataset) -> np.ndarray:
    labels = getattr(dataset, "labels", None)
    if labels is None:
        labels = [int(dataset[i][1]) for i in range(len(dataset))]
    return np.asarray(torch.as_tensor(labels).long().cpu().numpy())


def _class_ids(classes, names: list[str], labels: np.ndarray) -> list[int]:
    if classes is None:
        return sorted(int(c) for c in np.unique(labels))
    found = []
    for c in ([classes] if isinstance(classes, (int, str)) else classes):
        if isinstance(c, str) and not c.isdigit():
            if c not in names:
                raise StrategiesError(f"unknown class {c!r}; classes: {', '.join(names)}")
            c = names.index(c)
        c = int(c)
        if not (labels == c).any():
            raise StrategiesError(f"class {c} has no pictures in this dataset (classes: {', '.join(names)})")
        found.append(c)
    return sorted(set(found))


def _mean_or_none(values: np.ndarray) -> float | None:
    values = values[np.isfinite(values)]
    return float(values.mean()) if len(values) else None


def peak_name(mean_map: np.ndarray) -> str:
    """Where a map peaks, in words, on a 3x3 grid: "top-left", "top", ..., "centre", ..."""
    y, x = np.unravel_index(int(np.argmax(mean_map)), mean_map.shape)
    row = ("top", "", "bottom")[min(2, 3 * y // mean_map.shape[0])]
    col = ("left", "", "right")[min(2, 3 * x // mean_map.shape[1])]
    return "-".join(p for p in (row, col) if p) or "centre"


def _summaries(spec: SpectralResult, index: np.ndarray, small: np.ndarray, correct: np.ndarray,
               energy_object: np.ndarray, pointing: np.ndarray, energy_marker: np.ndarray,
               has_marker: np.ndarray | None, n_typical: int) -> list[ClusterSummary]:
    n = len(index)
    out = []
    means = _cluster_means(small, spec.labels, spec.n_clusters)
    for k in range(spec.n_clusters):
        member = np.flatnonzero(spec.labels == k)
        order = member[np.argsort(spec.centre_distance[member], kind="stable")]
        mean_map = means[k]
        out.append(ClusterSummary(
            cluster=k, size=int(len(member)), share=float(len(member) / n), accuracy=float(correct[member].mean()),
            energy_in_object=_mean_or_none(energy_object[member]), peak_on_object=_mean_or_none(pointing[member]),
            energy_in_marker=None if has_marker is None else _mean_or_none(energy_marker[member]),
            marker_share=None if has_marker is None else float(has_marker[member].mean()),
            typical=[int(i) for i in index[order[:n_typical]]], mean_map=mean_map, peak=peak_name(mean_map)))
    _flag_shortcuts(out, spec.labels, energy_object, pointing)
    return out


def _cluster_means(small: np.ndarray, labels: np.ndarray, clusters: int, chunk: int = 65536) -> np.ndarray:
    """Each cluster's mean map [clusters, r, r], summed in chunks (no copy of a cluster's maps)."""
    flat = small.reshape(len(small), -1)
    sums = np.zeros((clusters, flat.shape[1]), dtype=np.float64)
    for lo in range(0, len(flat), chunk):
        part = labels[lo:lo + chunk]
        one_hot = (part[None, :] == np.arange(clusters)[:, None]).astype(np.float64)
        sums += one_hot @ flat[lo:lo + chunk].astype(np.float64)
    counts = np.maximum(np.bincount(labels, minlength=clusters), 1)
    return (sums / counts[:, None]).reshape(clusters, *small.shape[1:]).astype(small.dtype)


def _flag_shortcuts(summaries: list[ClusterSummary], labels: np.ndarray, energy_object: np.ndarray,
                    pointing: np.ndarray) -> None:
    """Flag clusters whose maps lie outside the object, compared with the rest of the class.

    A cluster is a likely shortcut when the share of its maps that peak on the object is below
    ``SHORTCUT_RATIO`` times the rest's, its energy on the object is lower than the rest's, and
    it holds at least ``MIN_SHORTCUT_SHARE`` of the class.
    """
    if len(summaries) < 2:
        return
    for s in summaries:
        rest_points = _mean_or_none(pointing[labels != s.cluster])
        rest_energy = _mean_or_none(energy_object[labels != s.cluster])
        if None in (s.peak_on_object, s.energy_in_object, rest_points, rest_energy) or s.share < MIN_SHORTCUT_SHARE:
            continue
        if s.peak_on_object < SHORTCUT_RATIO * rest_points and s.energy_in_object < rest_energy:
            s.shortcut = True
            s.shortcut_reason = (f"its maps lie outside the object: {s.peak_on_object:.0%} of them peak on the object "
                                 f"against {rest_points:.0%} for the class's other pictures, and {s.energy_in_object:.2f}"
                                 f" of their energy lies on it against {rest_energy:.2f}; its mean map peaks at the "
                                 f"{s.peak}")


def _tsne(spec: SpectralResult, limit: int, random_state: int) -> tuple[np.ndarray, np.ndarray | None]:
    from netgaze.embed.project import tsne

    n = len(spec.labels)
    rows = np.arange(n)
    if n > limit:
        rows = np.sort(np.random.default_rng(random_state).choice(n, limit, replace=False))
    if len(rows) < 10:
        return rows, None
    embedding = spec.embedding[rows, 1:] if spec.embedding.shape[1] > 2 else spec.embedding[rows]
    import warnings

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return rows, tsne(embedding, perplexity=min(30.0, (len(rows) - 1) / 3), random_state=random_state)

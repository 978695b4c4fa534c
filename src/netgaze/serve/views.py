"""The slower, cached computations behind the pages: picture lists, epoch curves, embeddings;
and the strategies artifact read for the picture picker.

Each runs in the explorer's analysis thread on that thread's own model copies, and its
result is kept in a memory-bounded cache, so a second visit costs nothing.
"""
from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import numpy as np
import torch

from netgaze.errors import UserError
from netgaze.serve.compute import WorkerState, class_name, dense_output
from netgaze.serve.api_error import ApiError, NotFound
from netgaze.serve.embedding_points import EmbeddingPoints, artifact_points, make_points
from netgaze.serve.source import Source

MAX_LISTED = 2000
BATCH = 128
MAX_EMBEDDED = 2000


def _embed_methods() -> tuple[str, ...]:
    """The projections this installation can compute (UMAP only when umap-learn is installed)."""
    import importlib.util

    return ("pca", "tsne") + (("umap",) if importlib.util.find_spec("umap") is not None else ())


EMBED_METHODS = _embed_methods()


def picture_list(state: WorkerState, source: Source, split: str) -> list[dict[str, Any]]:
    """Every picture of a split (at most ``MAX_LISTED``): label and, for classifiers, the
    last epoch's prediction, confidence and whether it is right."""
    dataset = source.dataset(split)
    n = min(len(dataset), MAX_LISTED)
    labels: list[int | None] = []
    preds: list[torch.Tensor] = []
    model = state.model(source, source.last_epoch) if source.task == "classify" else None
    broken: dict[int, str] = {}
    for start in range(0, n, BATCH):
        items = [_item(source, dataset, i, broken) for i in range(start, min(n, start + BATCH))]
        if source.task != "segment":
            labels += [int(item[1]) if int(item[1]) >= 0 else None for item in items]
        else:
            labels += [None] * len(items)
        if model is not None:
            with torch.no_grad():
                preds.append(dense_output(model(torch.stack([item[0] for item in items]))).float().softmax(1))
    out = []
    probs = torch.cat(preds) if preds else None
    for i in range(n):
        entry: dict[str, Any] = {"index": i, "label": labels[i],
                                 "name": class_name(source, labels[i]) if labels[i] is not None else None}
        if i in broken:      # listed, marked and never predicted: the other pictures keep working
            entry["broken"] = broken[i]
        elif probs is not None:
            p, c = probs[i].max(0)
            entry.update(pred=int(c), pred_name=class_name(source, int(c)), p=round(float(p), 4),
                         correct=None if labels[i] is None else int(c) == labels[i])
        out.append(entry)
    return out


def _item(source: Source, dataset: Any, index: int, broken: dict[int, str]) -> tuple:
    """``dataset[index]``, or a blank stand-in recorded in ``broken`` when the picture cannot be read."""
    try:
        return dataset[index]
    except UserError as err:   # ApiError included
        broken[index] = str(err)
        return torch.zeros(source.channels, *source.size), -1


def epoch_curves(state: WorkerState, source: Source, x: torch.Tensor, label: int | None, mask: torch.Tensor | None,
                 method: str, layer: str, target: tuple) -> dict[str, Any]:
    """Per checkpoint: the test accuracy (history) and the attention of this picture's map —
    the share of the map's mass on the object when its mask is known, else the share of pixels
    above half the map's maximum (how spread it is)."""
    from netgaze.methods import METHODS
    from netgaze.metrics.pointing import energy_inside
    from netgaze.serve.compute import batch_target
    from netgaze.serve.compute import ExplainJob

    if not source.epochs:
        raise ApiError(f"{source.id} is not a run: it has no epochs")
    history = {int(r.get("epoch", i + 1)): r for i, r in enumerate(source.history)}
    metric = source.run.metric if source.run is not None else None   # run.json's, else the rule of pick_metric
    job = ExplainJob(source=source, epoch=None, method=method, layers=(layer,), many=False, x=x, target=target)
    rows = []
    for epoch in source.epochs:
        model = source.bind(state.model(source, epoch), [label])
        maps = METHODS[method](model, x[None], layer, target=batch_target([job]), output=source.output).detach().float()
        if maps.dim() == 4:   # top-k: the best class's map
            maps = maps[:, 0]
        if mask is not None and mask.bool().any():
            attention = float(energy_inside(maps, mask.bool()[None])[0])
        else:
            peak = float(maps.max())
            attention = float((maps > 0.5 * peak).float().mean()) if peak > 0 else 0.0
        record = history.get(epoch, {})
        rows.append({"epoch": epoch, "metric": record.get(metric) if metric else None, "attention": attention})
    return {"metric": metric, "attention": "energy on the object" if mask is not None else "share above half max",
            "epochs": rows}


def embedding(state: WorkerState, source: Source, layer: Any, method: str, epoch: int | None, limit: int,
              split: str = "test") -> EmbeddingPoints:
    """2-D points of a layer's pooled features (or of the run's ``artifacts/embed`` when layer is "artifact")."""
    from netgaze.embed.features import features
    from netgaze.embed.pipeline import model_for_task
    from netgaze.embed.project import project

    if method not in EMBED_METHODS:
        missing = " (UMAP needs umap-learn: pip install 'netgaze[umap]')" if method == "umap" else ""
        raise ApiError(f"method is one of {', '.join(EMBED_METHODS)}{missing}")
    if layer == "artifact":
        path = source.embedding_artifact()
        if path is None:
            raise ApiError(f"{source.id} has no embedding artifact (run `netgaze embed` on it first)")
        return artifact_points(source.id, path, source.classes)
    model = state.model(source, epoch)       # a conditional VAE gets each batch's labels from ``features``
    if source.task == "reconstruct" and layer == "prelogits":
        model, layer = model_for_task(model, "reconstruct")[0], "output"
    elif layer not in ("prelogits", "logits"):
        layer = source.resolve_layer(layer)
        if source.conditional:               # shown as vae.X (the conditioned wrapper's names)
            layer = layer.removeprefix("vae.")
    dataset = source.dataset(split)
    F = features(model, dataset, layer, limit=min(limit, MAX_EMBEDDED, len(dataset)), progress=False,
                 output=source.output,
                 predict=source.task == "classify", batch_size=BATCH)
    if len(F) < 5:
        raise ApiError("an embedding needs at least 5 pictures")
    perplexity = float(min(30.0, (len(F) - 1) / 3))
    Y = project(F.features, method, 2, random_state=0, **({"perplexity": perplexity} if method == "tsne" else {}))
    return make_points(Y, F.indices, F.labels, F.predictions, f"{F.layer}, {method}", source.classes)


def strategies_table(source: Any, path: Path) -> dict[str, Any]:
    """The run's SpRAy strategies (``netgaze study strategies``) read once: per class its
    clusters with size, shortcut flag, typical pictures and the dataset indices of their
    pictures (an int64 array each, grouped in one pass: a million pictures take a second)."""
    try:
        data = json.loads(path.read_text())
        split = str(data.get("split", "test"))
        classes = []
        for key, entry in sorted(data["classes"].items(), key=lambda kv: int(kv[0])):
            indices = np.asarray(entry["indices"], dtype=np.int64).reshape(-1)
            clusters = np.asarray(entry["clusters"], dtype=np.int64).reshape(-1)
            if len(indices) != len(clusters):
                raise ValueError(f"class {key}: {len(indices)} indices but {len(clusters)} cluster ids")
            order = np.argsort(clusters, kind="stable")          # each cluster keeps the artifact's order
            grouped = clusters[order]
            listed = []
            for summary in entry["summaries"]:
                cluster = int(summary["cluster"])
                lo, hi = np.searchsorted(grouped, [cluster, cluster + 1])
                listed.append({"cluster": cluster, "size": int(summary["size"]),
                               "share": summary.get("share"), "accuracy": summary.get("accuracy"),
                               "shortcut": bool(summary.get("shortcut")),
                               "shortcut_reason": summary.get("shortcut_reason"),
                               "typical": [int(i) for i in summary.get("typical") or []],
                               "indices": indices[order[lo:hi]]})
            classes.append({"class": int(key), "name": str(entry.get("name", key)), "clusters": listed})
    except (OSError, ValueError, KeyError, TypeError, AttributeError, OverflowError) as err:
        raise NotFound(f"run {source.id!r} has no readable strategies artifact: "
                       f"{type(err).__name__}: {err}") from None
    return {"split": split, "method": data.get("method"), "layer": data.get("layer"), "classes": classes}


def strategies_page(table: dict[str, Any], label: int | None = None, offset: int = 0, limit: int | None = None,
                    pictures: int | None = None) -> dict[str, Any]:
    """One page of ``strategies_table``: the clusters (class by class) of class ``label`` (all
    classes when None) from ``offset``, at most ``limit`` of them, each with at most ``pictures``
    of its indices (``size`` says how many it has). Without arguments: every cluster, every picture."""
    classes: list[dict[str, Any]] = []
    position, end = 0, None if limit is None else offset + limit
    for entry in table["classes"]:
        if label is not None and entry["class"] != label:
            continue
        n = len(entry["clusters"])
        lo, hi = max(offset - position, 0), n if end is None else max(min(end - position, n), 0)
        position += n
        if lo >= hi and (limit is not None or offset):     # not on this page (every class when unpaged)
            continue
        clusters = [dict(c, indices=(c["indices"] if pictures is None else c["indices"][:pictures]).tolist())
                    for c in entry["clusters"][lo:hi]]
        classes.append({"class": entry["class"], "name": entry["name"], "n_clusters": n, "clusters": clusters})
    return {"split": table["split"], "method": table["method"], "layer": table["layer"], "classes": classes,
            "total_clusters": position, "offset": offset, "limit": limit}

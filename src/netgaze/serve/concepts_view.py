"""The computations behind the explorer's concepts: a picture's concepts (``ng.concepts``) and the
run's concept atlas (``netgaze study concepts RUN``'s ``artifacts/concepts/concepts.json``).

``picture_concepts`` runs in the explorer's analysis thread (bounded, cached per picture, layer,
target and ``k``), so clicking another point of the same map costs no pass: ``concepts_answer``
reads the value of each cached conditional map at the point. ``concepts_table`` reads the
artifact once per version of the file (through the run folder's containment rule, like the
strategies and the embedding), checking every number it keeps: a damaged artifact is a one-line
error, never a traceback, and nothing in it names a file.
"""
from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import numpy as np
import torch

from netgaze.serve.api_error import ApiError, NotFound
from netgaze.serve.compute import ExplainJob, WorkerState, batch_target, dense_output, packed_map, predictions, \
    target_facts
from netgaze.serve.source import SPLITS, Source

MAX_K = 16
NO_ARTIFACT = "no concepts artifact in this run: run `netgaze study concepts RUN` for reference pictures"


def picture_concepts(state: WorkerState, source: Source, x: torch.Tensor, label: int | None, layer: str,
                     target: tuple, k: int, epoch: int | None) -> dict[str, Any]:
    """``ng.concepts`` of one picture on the worker's copy of the model, with the model's prediction."""
    from netgaze.methods.concepts import concepts

    model = source.bind(state.model(source, epoch), [label])
    job = ExplainJob(source=source, epoch=epoch, method="concepts", layers=(layer,), many=False, x=x,
                     target=target, label=label)
    found = concepts(model, x[None], layer, target=batch_target([job]), k=k, output=source.output)
    with torch.no_grad():
        out = dense_output(model(x[None])).float()
    if not bool(torch.isfinite(out).all()):
        raise ApiError(f"the model's output is NaN or infinite with {source.weights_name(epoch)}: nothing "
                       "meaningful can be explained (a diverged training?)", status=422)
    return {"layer": layer, "channels": [int(c) for c in found.channels[0].tolist()],
            "shares": found.shares[0].detach().float().cpu().numpy(),
            "relevance": found.relevance[0].detach().float().cpu().numpy(),
            "maps": np.ascontiguousarray(found.maps[0].detach().float().cpu().numpy()),
            "total": float(found.total[0]), "score": float(found.scores[0]),
            "target": target_facts(job, out[0]), "prediction": predictions(source, out)[0]}


def concepts_answer(found: dict[str, Any], point: tuple[int, int] | None, table: dict[str, Any] | None,
                    note: str | None) -> dict[str, Any]:
    """The JSON answer: each concept (most relevant first) with its packed map, its value at
    ``point`` (``(y, x)``) and its reference pictures from the artifact's ``table`` (None: ``note`` says why)."""
    maps = found["maps"]
    cls = explained_class(found["target"])
    refs_for = None
    if table is not None:
        if table["layer"] != found["layer"]:
            table, note = None, (f"the run's concepts artifact is of layer {table['layer']}, not {found['layer']}: "
                                 f"pick that layer for reference pictures")
        elif cls is not None and cls not in table["by_relevance"]:
            note = f"the concepts artifact does not follow class {cls}: references by activation only"
        if table is not None:
            refs_for = table
    concepts = []
    for j, channel in enumerate(found["channels"]):
        entry = {"channel": channel, "share": float(found["shares"][j]), "relevance": float(found["relevance"][j]),
                 "at_point": None if point is None else float(maps[j, point[0], point[1]]),
                 "map_f32": packed_map(torch.from_numpy(maps[j]))}
        if refs_for is not None:
            entry["label"] = refs_for["labels"].get(channel)
            entry["references"] = channel_references(refs_for, channel, cls)
        concepts.append(entry)
    order = list(range(len(concepts)))
    if point is not None:
        order.sort(key=lambda j: -concepts[j]["at_point"] if np.isfinite(concepts[j]["at_point"]) else np.inf)
    answer = {"layer": found["layer"], "k": len(concepts), "target": found["target"], "prediction": found["prediction"],
              "score": found["score"], "total": found["total"],
              "point": None if point is None else {"x": point[1], "y": point[0]}, "order_at_point": order,
              "concepts": concepts, "references": {"available": refs_for is not None, "note": note}}
    if refs_for is not None:
        answer["references"].update(split=refs_for["split"], epoch=refs_for["epoch"], layer=refs_for["layer"])
    return answer


def explained_class(target: dict[str, Any]) -> int | None:
    """The class a target answer names (``{"class"}`` or top-1's first class); None for an area."""
    if "classes" in target:
        return int(target["classes"][0]["class"])
    return int(target["class"]) if "class" in target and "box" not in target else None


def channel_references(table: dict[str, Any], channel: int, cls: int | None) -> dict[str, Any]:
    """A channel's reference pictures: by activation, and by relevance to ``cls`` when the artifact follows it."""
    by_relevance = table["by_relevance"].get(cls) if cls is not None else None
    return {"by_activation": table["by_activation"].get(channel, []),
            "by_relevance": None if by_relevance is None else by_relevance.get(channel, [])}


# ---------------------------------------------------------------- the artifact
def concepts_table(source: Source, path: Path) -> dict[str, Any]:
    """The artifact read once: references per channel, the atlas per class, dissection labels."""
    try:
        data = json.loads(path.read_text())
        split = str(data.get("split", "test"))
        if split not in SPLITS:
            raise ValueError(f"split {split[:40]!r} is not one of {', '.join(SPLITS)}")
        classes = {}
        for key, entry in data["atlas"]["classes"].items():
            classes[int(key)] = {"class": int(key), "name": str(entry.get("name", key)),
                                 "pictures": int(entry.get("pictures", 0)),
                                 "channels": [_atlas_row(row) for row in entry["channels"]]}
        epoch = data.get("epoch")
        return {"layer": str(data["layer"]), "split": split,
                "epoch": epoch if isinstance(epoch, int) and not isinstance(epoch, bool) else None,
                "per_picture": int(data["atlas"].get("per_picture", 0)),
                "by_activation": _tops(data["by_activation"]),
                "by_relevance": {int(c): _tops(t) for c, t in data["by_relevance"].items()},
                "classes": dict(sorted(classes.items())),
                "labels": {int(c): str(v) for c, v in (data.get("labels") or {}).items()}}
    except (OSError, ValueError, KeyError, TypeError, AttributeError, OverflowError) as err:
        raise NotFound(f"run {source.id!r} has no readable concepts artifact: {type(err).__name__}: {err}") from None


def _index(value: Any) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or value < 0:
        raise ValueError(f"a picture index is a whole number >= 0, got {str(value)[:40]}")
    return value


def _box(value: Any) -> list[int]:
    if not (isinstance(value, list) and len(value) == 4 and all(isinstance(v, int) and not isinstance(v, bool)
                                                                 for v in value)):
        raise ValueError("a crop box is [y0, x0, y1, x1]: four integers")
    return value


def _number(value: Any) -> float | None:
    return float(value) if isinstance(value, (int, float)) and not isinstance(value, bool) else None


def _tops(tops: dict[str, Any]) -> dict[int, list[dict[str, Any]]]:
    """Per channel its references ``[{"index", "box", "value"}]`` (unfilled places, index < 0, left out)."""
    out = {}
    for channel, (values, indices, boxes) in enumerate(zip(tops["values"], tops["indices"], tops["boxes"], strict=True)):
        out[channel] = [{"index": _index(i), "box": _box(b), "value": _number(v)}
                        for v, i, b in zip(values, indices, boxes, strict=True) if not (isinstance(i, int) and i < 0)]
    return out


def _atlas_row(row: dict[str, Any]) -> dict[str, Any]:
    relying = [{"index": _index(i), "box": _box(b), "share": _number(s)}
               for i, b, s in zip(row["relying"], row["relying_boxes"], row["relying_shares"], strict=True)]
    return {"channel": _index(row["channel"]), "mean_share": _number(row["mean_share"]),
            "top_rate": _number(row["top_rate"]), "relying": relying}


def atlas_page(table: dict[str, Any], cls: int | None) -> dict[str, Any]:
    """One class of the atlas (``cls``; None: the first), each of its channels with its references."""
    if not table["classes"]:
        raise NotFound("the concepts artifact follows no class")
    if cls is None:
        cls = next(iter(table["classes"]))
    if cls not in table["classes"]:
        raise NotFound(f"the concepts artifact does not follow class {cls}; it follows "
                       f"{', '.join(str(c) for c in table['classes'])}")
    entry = table["classes"][cls]
    channels = [dict(row, label=table["labels"].get(row["channel"]),
                     **channel_references(table, row["channel"], cls)) for row in entry["channels"]]
    return {"layer": table["layer"], "split": table["split"], "epoch": table["epoch"],
            "per_picture": table["per_picture"],
            "classes": [{"class": c, "name": e["name"], "pictures": e["pictures"]} for c, e in table["classes"].items()],
            "class": cls, "name": entry["name"], "pictures": entry["pictures"], "channels": channels}

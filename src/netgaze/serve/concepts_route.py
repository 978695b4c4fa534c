"""The explorer's concept routes: a picture's concepts and the run's concept atlas.

``POST /api/concepts`` (JSON)::

    {"run": ID, "image": {"split": "test", "index": 3} | {"upload": ID},
     "layer": NAME | -1, "target": {"class": c | NAME} | {"top": 1} | {"box": [...], "channel": c},
     "k": 8, "epoch": 7, "point": {"x": 12, "y": 30}}

answers the ``k`` channels of the layer that contribute most to the target (``ng.concepts``), each
with its conditional map (packed as ``map_f32``), its share, its value at ``point`` (input pixels)
and its reference pictures from the run's concepts artifact. ``GET /api/concepts/atlas?run=ID
[&class=c]`` answers one class of the artifact's atlas. Every field is checked; a bad one is a
one-line 4xx. The computation runs in the analysis thread (bounded: 503 when full) and is cached
per picture, layer, target and ``k``: another point of the same map is answered from the cache.
"""
from __future__ import annotations

import asyncio
import json
from typing import Any

from starlette.requests import Request
from starlette.responses import Response

from netgaze.serve import concepts_view as view
from netgaze.serve.api_error import ApiError, NotFound
from netgaze.serve.page_routes import _file_stamp, _int_param
from netgaze.serve.requests import check_keys, check_layers, check_target
from netgaze.serve.web import JSONAnswer, explorer_of, read_json

CONCEPT_KEYS = ("run", "image", "layer", "target", "k", "epoch", "point")


def check_k(k: Any) -> int:
    if isinstance(k, bool) or not isinstance(k, int) or not 1 <= k <= view.MAX_K:
        raise ApiError(f"k is an integer in 1..{view.MAX_K} (and at most the layer's channels)")
    return k


def check_point(point: Any, size: tuple[int, int]) -> tuple[int, int] | None:
    """``(y, x)`` of a ``{"x", "y"}`` point in input pixels, or None when the request has none."""
    if point is None:
        return None
    check_keys(point, ("x", "y"), "point")
    h, w = size
    x, y = point.get("x"), point.get("y")
    if not all(isinstance(v, int) and not isinstance(v, bool) for v in (x, y)) or not (0 <= x < w and 0 <= y < h):
        raise ApiError(f"point is {{\"x\": 0..{w - 1}, \"y\": 0..{h - 1}}}: whole input pixels of the {h}x{w} picture")
    return y, x


async def concepts(request: Request) -> Response:
    explorer = explorer_of(request)
    body = check_keys(await read_json(request), CONCEPT_KEYS, "the request")
    if "run" not in body or "image" not in body:
        raise ApiError('a request needs "run" and "image"')
    source = explorer.sources.get(body["run"])
    epoch = source.check_epoch(body.get("epoch"))
    layer = body.get("layer", -1)
    if isinstance(layer, list):
        raise ApiError("concepts explain one layer at a time: a name or a negative stage index")
    layer = check_layers(source, layer)[0][0]
    k = check_k(body.get("k", 8))
    x, label = await explorer.picture(body["image"], source)
    source.check_labels([label])
    size = tuple(x.shape[-2:])
    point = check_point(body.get("point"), size)
    target = check_target(source, body.get("target"), size)
    if target[0] == "top" and target[1] != 1:
        raise ApiError('concepts explain one score: {"top": 1} or {"class": c}')
    key = ("concepts", source.id, epoch, json.dumps(body["image"], sort_keys=True), layer, target, k)
    found = await explorer.analyse(key, lambda state: view.picture_concepts(state, source, x, label, layer, target,
                                                                            k, epoch), request)
    table, note = await _table(explorer, source)
    return JSONAnswer(dict(view.concepts_answer(found, point, table, note), run=source.id, epoch=epoch))


async def _table(explorer: Any, source: Any) -> tuple[dict | None, str | None]:
    """The run's concepts artifact (read once per version of the file), or None and why not."""
    path = source.concepts_artifact()
    if path is None:
        return None, view.NO_ARTIFACT
    loop = asyncio.get_running_loop()
    try:
        table = await loop.run_in_executor(None, explorer.results.get_or_make, ("concepts-artifact", source.id,
                                                                                _file_stamp(path)),
                                           lambda: view.concepts_table(source, path))
    except NotFound as err:
        return None, str(err)
    return table, None


async def concept_atlas(request: Request) -> Response:
    """One class of the run's concept atlas with each channel's reference pictures."""
    explorer = explorer_of(request)
    params = request.query_params
    unknown = sorted(set(params) - {"run", "class", "token"})
    if unknown:
        raise ApiError(f"unknown parameter(s) {', '.join(u[:40] for u in unknown)}; valid: run, class")
    source = explorer.sources.get(params.get("run"))
    table, note = await _table(explorer, source)
    if table is None:
        raise NotFound(f"run {source.id!r}: {note}")
    cls = _int_param(params["class"], "class", 0, 10 ** 9) if params.get("class", "") != "" else None
    return JSONAnswer(dict(view.atlas_page(table, cls), run=source.id))

"""The routes behind the pages other than Explain: a run's pictures and history, its
strategies, and the epoch curves, embeddings and units computed in the analysis thread."""
from __future__ import annotations

import asyncio
import json

from starlette.requests import Request
from starlette.responses import Response

from netgaze.serve import units_page as units_view
from netgaze.serve import views
from netgaze.serve.api_error import ApiError, NotFound
from netgaze.serve.requests import check_keys, check_layers, check_method, check_target
from netgaze.serve.web import JSONAnswer, explorer_of, read_json


async def history(request: Request) -> Response:
    source = explorer_of(request).sources.get(request.path_params["run"])
    return JSONAnswer({"run": source.id, "history": source.history, "epochs": source.epochs})


async def pictures(request: Request) -> Response:
    explorer = explorer_of(request)
    source = explorer.sources.get(request.path_params["run"])
    params = request.query_params
    unknown = sorted(set(params) - {"split", "order", "label", "limit", "token"})
    if unknown:
        raise ApiError(f"unknown parameter(s) {', '.join(u[:40] for u in unknown)}; valid: split, order, label, limit")
    split = params.get("split", "test")
    source.dataset(split)       # 404 for a split the source lacks
    order = params.get("order", "index")
    if order not in ("index", "misclassified"):
        raise ApiError("order is index or misclassified")
    limit = _int_param(params.get("limit", "200"), "limit", 1, views.MAX_LISTED)
    items = await explorer.analyse(("pictures", source.id, split),
                                   lambda state: views.picture_list(state, source, split), request)
    if params.get("label") not in (None, ""):
        label = _int_param(params["label"], "label", 0, max(len(source.classes) - 1, 0))
        items = [i for i in items if i["label"] == label]
    if order == "misclassified":
        items = sorted(items, key=lambda i: (i.get("correct") is not False, -i.get("p", 0.0)))
    return JSONAnswer({"run": source.id, "split": split, "total": len(items), "pictures": items[:limit]})


STRATEGY_PARAMS = ("run", "class", "offset", "limit", "pictures")


async def strategies(request: Request) -> Response:
    """The run's strategy clusters; ``class``, ``offset``, ``limit`` and ``pictures`` page through
    them (the artifact is read once and kept in the results cache until it changes)."""
    explorer = explorer_of(request)
    params = request.query_params
    unknown = sorted(set(params) - {*STRATEGY_PARAMS, "token"})
    if unknown:
        raise ApiError(f"unknown parameter(s) {', '.join(u[:40] for u in unknown)}; valid: {', '.join(STRATEGY_PARAMS)}")
    source = explorer.sources.get(params.get("run"))
    path = source.strategies_artifact()
    if path is None:
        raise NotFound(f"run {source.id!r} has no strategies artifact (inside the run folder); "
                       "`netgaze study strategies RUN` writes it")
    label = _int_param(params["class"], "class", 0, 10 ** 9) if params.get("class", "") != "" else None
    offset = _int_param(params.get("offset", "0"), "offset", 0, 10 ** 9)
    limit = _int_param(params["limit"], "limit", 1, 10_000) if "limit" in params else None
    pictures = _int_param(params["pictures"], "pictures", 0, 10 ** 9) if "pictures" in params else None
    key = ("strategies", source.id, _file_stamp(path))
    loop = asyncio.get_running_loop()
    table = await loop.run_in_executor(None, explorer.results.get_or_make, key,
                                       lambda: views.strategies_table(source, path))
    page = views.strategies_page(table, label, offset, limit, pictures)
    return JSONAnswer(dict(page, run=source.id))


def _file_stamp(path) -> tuple | None:
    """What tells a run's artifact file from a newer one: path, modification time, size."""
    try:
        stat = path.stat()
    except (OSError, AttributeError):
        return None
    return str(path), stat.st_mtime_ns, stat.st_size


def _int_param(text: str, name: str, lo: int, hi: int) -> int:
    try:
        value = int(text)
    except ValueError:
        raise ApiError(f"{name} is an integer") from None
    if not lo <= value <= hi:
        raise ApiError(f"{name} is in {lo}..{hi}")
    return value


async def epochs(request: Request) -> Response:
    explorer = explorer_of(request)
    body = check_keys(await read_json(request), ("run", "image", "method", "layer", "target"), "the request")
    if "run" not in body or "image" not in body:
        raise ApiError('a request needs "run" and "image"')
    source = explorer.sources.get(body["run"])
    method = check_method(body.get("method", "gradcam"))
    from netgaze.methods import CAM_METHODS
    if method not in CAM_METHODS:
        raise ApiError(f"the epoch curve uses a CAM method: {', '.join(CAM_METHODS)}")
    layers, _ = check_layers(source, body.get("layer", -1))
    image = body["image"]
    x, label = await explorer.picture(image, source)
    source.check_labels([label])
    target = check_target(source, body.get("target"), tuple(x.shape[-2:]))
    mask = None
    if isinstance(image, dict) and "index" in image:
        mask = source.picture(image.get("split", "test"), image["index"]).mask
        if source.task == "segment":
            mask = None
    key = ("epochs", source.id, json.dumps(image, sort_keys=True), method, layers[0], target)
    result = await explorer.analyse(key, lambda state: views.epoch_curves(state, source, x, label, mask, method,
                                                                          layers[0], target), request)
    return JSONAnswer(dict(result, run=source.id, layer=layers[0]))


async def _embedding_points(request: Request) -> tuple[views.EmbeddingPoints, dict]:
    """The points a ``POST /api/embedding[.bin]`` body asks for (computed once, then cached) and
    what the answer says of them besides (run, split)."""
    explorer = explorer_of(request)
    body = check_keys(await read_json(request), ("run", "layer", "method", "epoch", "limit", "split"), "the request")
    source = explorer.sources.get(body.get("run"))
    layer = body.get("layer", "prelogits")
    method = body.get("method", "pca")
    epoch = source.check_epoch(body.get("epoch"))
    limit = body.get("limit", 500)
    split = body.get("split", "test")
    if isinstance(limit, bool) or not isinstance(limit, int) or not 5 <= limit <= views.MAX_EMBEDDED:
        raise ApiError(f"limit is an integer in 5..{views.MAX_EMBEDDED}")
    if not isinstance(split, str):
        raise ApiError("split is a name such as \"test\"")
    source.dataset(split)
    if not isinstance(layer, (str, int)) or isinstance(layer, bool):
        raise ApiError("layer is a name, a negative stage index, \"prelogits\", \"logits\" or \"artifact\"")
    if layer not in ("prelogits", "logits", "artifact"):
        layer = source.resolve_layer(layer)
    if method not in views.EMBED_METHODS:
        missing = " (UMAP needs umap-learn: pip install 'netgaze[umap]')" if method == "umap" else ""
        raise ApiError(f"method is one of {', '.join(views.EMBED_METHODS)}{missing}")
    if layer == "artifact":       # the file's identity is part of the key: a new artifact is read again
        key = ("embedding", source.id, layer, _file_stamp(source.embedding_artifact()), split)
    else:
        key = ("embedding", source.id, layer, method, epoch, limit, split)
    points = await explorer.analyse(key, lambda state: views.embedding(state, source, layer, method, epoch,
                                                                       limit, split), request)
    return points, {"run": source.id, "split": split}


async def embedding(request: Request) -> Response:
    """``{"points": [{"x", "y", "index", "label", "pred"}], "classes", "title", "run", "split"}``."""
    points, meta = await _embedding_points(request)
    loop = asyncio.get_running_loop()      # a million points: encoded off the event loop
    return await loop.run_in_executor(None, lambda: JSONAnswer(dict(points.to_json(), **meta)))


async def embedding_packed(request: Request) -> Response:
    """The same points as packed binary columns (``embedding_points.py`` has the layout)."""
    points, meta = await _embedding_points(request)
    loop = asyncio.get_running_loop()
    data = await loop.run_in_executor(None, lambda: points.packed(**meta))
    return Response(data, media_type="application/octet-stream", headers={"Cache-Control": "no-store"})


async def units(request: Request) -> Response:
    explorer = explorer_of(request)
    body = check_keys(await read_json(request), ("run", "layer", "channels", "steps", "top", "epoch"), "the request")
    source = explorer.sources.get(body.get("run"))
    layer = source.resolve_layer(body.get("layer", -1))
    epoch = source.check_epoch(body.get("epoch"))
    channels, steps, k = body.get("channels"), body.get("steps", 64), body.get("top", 6)
    if isinstance(k, bool) or not isinstance(k, int) or not 1 <= k <= 16:
        raise ApiError("top is an integer in 1..16")
    # the cost of a request is bounded before it is queued (the layer's width is checked when it runs)
    if isinstance(steps, bool) or not isinstance(steps, int) or not 1 <= steps <= units_view.MAX_STEPS:
        raise ApiError(f"steps is an integer in 1..{units_view.MAX_STEPS}")
    if channels is not None and (not isinstance(channels, list) or not 1 <= len(channels) <= units_view.MAX_CHANNELS
                                 or not all(isinstance(c, int) and not isinstance(c, bool) and c >= 0 for c in channels)):
        raise ApiError(f"channels is a list of 1..{units_view.MAX_CHANNELS} integers >= 0")
    key = ("units", source.id, layer, json.dumps(channels), steps, k, epoch)
    result = await explorer.analyse(key, lambda state: units_view.units(state, source, layer, channels, steps,
                                                                        k, epoch), request)
    return JSONAnswer(dict(result, run=source.id))

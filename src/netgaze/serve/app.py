"""The explorer's web application: HTTP API under ``/api/`` and the static front end.

Routes (the API is documented in the README and kept stable for scripts):

- ``GET  /api/health`` -> ``{"status": "ok"}``
- ``GET  /api/runs`` -> the served runs and models: task, classes, layers (stages first), epochs
- ``GET  /api/colormap`` -> the colour table and blending the pages draw maps with
- ``GET  /api/runs/{run}/pictures?split=test&order=index|misclassified&label=c&limit=n``
- ``GET  /api/runs/{run}/pictures/{split}/{index}.png`` -> the picture itself
- ``GET  /api/runs/{run}/history`` -> one record per trained epoch
- ``GET  /api/strategies?run=ID`` -> per class the strategy clusters (SpRAy artifact) and their pictures
- ``POST /api/explain`` -> map, overlay, prediction, server time (``requests.py`` has the body)
- ``POST /api/upload`` -> ``{"upload": ID}`` (a PNG/JPEG/WebP as the raw body or a form file)
- ``GET  /api/uploads/{id}.png``
- ``POST /api/epochs`` -> per checkpoint: the run's metric and the picture's attention
- ``POST /api/embedding`` -> 2-D points of a layer's features (PCA / t-SNE / UMAP)
- ``POST /api/units`` -> channels of a layer: activation maximization and top pictures

Explanations go through the batching queue (``batching.py``); the other computations run in
one analysis thread. The event loop only parses, enqueues and answers. Every error is a 4xx
(or a 503 with ``Retry-After``) with a one-line JSON body ``{"error": ...}``; an unexpected
exception is a 500 with its type only, never a traceback.
"""
from __future__ import annotations

import asyncio
import contextlib
import hmac
import json
import logging
import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable

from starlette.applications import Starlette
from starlette.exceptions import HTTPException
from starlette.middleware import Middleware
from starlette.requests import Request
from starlette.responses import FileResponse, JSONResponse, Response
from starlette.routing import Mount, Route
from starlette.staticfiles import StaticFiles

from netgaze.recorder import RecorderError
from netgaze.serve.batching import BatchQueue, QueueFull
from netgaze.serve.cache import MemoryLRU
from netgaze.serve.compute import WorkerState, explain_batch
from netgaze.serve.errors import ApiError
from netgaze.serve.pictures import MAX_UPLOAD_BYTES, check_upload, picture_png
from netgaze.serve.requests import Uploads, check_keys, check_layers, check_method, check_target, labelled_picture, \
    parse_explain, picture_is_ready
from netgaze.serve.sources import Sources
from netgaze.serve import units as units_view
from netgaze.serve import views

STATIC = Path(__file__).parent / "static"
MAX_JSON_BYTES = 64 * 1024
TOKEN_COOKIE = "netgaze_token"
CSP = ("default-src 'self'; img-src 'self' data: blob:; style-src 'self'; script-src 'self'; "
       "connect-src 'self'; object-src 'none'; base-uri 'none'; frame-ancestors 'none'")
log = logging.getLogger("netgaze.serve")


@dataclass
class Settings:
    """How the explorer serves.

    Attributes:
        workers: explanation worker threads (each holds its own model copies).
        max_batch: most requests explained in one pass.
        max_queue: most requests waiting; beyond it the answer is 503 with Retry-After.
        cache_mb: memory bound of each cache (checkpoints, each worker's models, results).
        token: when set, every request must carry it (header, cookie or ``?token=``).
    """

    workers: int = 1
    max_batch: int = 16
    max_queue: int = 64
    cache_mb: int = 512
    token: str | None = None


class Explorer:
    """The state behind the routes: sources, uploads, the batch queue, the analysis thread, caches."""

    def __init__(self, sources: Sources, settings: Settings | None = None):
        self.sources = sources
        self.settings = settings or Settings()
        budget = self.settings.cache_mb * 1024 * 1024
        self.weights = MemoryLRU(budget, "checkpoints")
        self.results = MemoryLRU(budget, "results")
        self.uploads = Uploads(budget // 2)
        self.queue = BatchQueue(explain_batch, key=lambda job: job.key(), workers=self.settings.workers,
                                max_batch=self.settings.max_batch, max_queue=self.settings.max_queue,
                                make_state=lambda i: WorkerState(self.weights, budget))
        self.analysis_state = WorkerState(self.weights, budget)
        self.analysis = ThreadPoolExecutor(1, thread_name_prefix="netgaze-serve-analysis")
        self.readers = ThreadPoolExecutor(2, thread_name_prefix="netgaze-serve-pictures")
        for source in sources:       # the stage rule's probe passes run now, not in the event loop later
            source.layers()

    async def parse(self, body: Any) -> Any:
        """``parse_explain``; off the event loop when the picture must first be decoded."""
        if picture_is_ready(body, self.sources, self.uploads):
            return parse_explain(body, self.sources, self.uploads)
        loop = asyncio.get_running_loop()
        return await loop.run_in_executor(self.readers, parse_explain, body, self.sources, self.uploads)

    async def picture(self, image: Any, source: Any) -> tuple:
        """``(picture, label)`` of an ``"image"`` field, decoded off the event loop."""
        loop = asyncio.get_running_loop()
        return await loop.run_in_executor(self.readers, labelled_picture, image, source, self.uploads)

    async def analyse(self, key: tuple, work: Callable[[WorkerState], Any]) -> Any:
        """Run ``work`` in the analysis thread once per ``key``; later calls read the cache."""
        cached = self.results.get(key)
        if cached is not None:
            return cached
        loop = asyncio.get_running_loop()
        result = await loop.run_in_executor(self.analysis, work, self.analysis_state)
        return self.results.put(key, result)

    def close(self) -> None:
        self.queue.close()
        self.analysis.shutdown(wait=False, cancel_futures=True)
        self.readers.shutdown(wait=False, cancel_futures=True)


# --- helpers ---------------------------------------------------------------------------
def error_response(status: int, message: str, headers: dict[str, str] | None = None) -> JSONResponse:
    line = " ".join(str(message).split())[:500]
    return JSONResponse({"error": line}, status_code=status, headers=headers)


async def read_json(request: Request) -> Any:
    body = await read_body(request, MAX_JSON_BYTES)
    try:
        return json.loads(body)
    except (json.JSONDecodeError, UnicodeDecodeError) as err:
        raise ApiError(f"the body is not JSON: {err.msg if hasattr(err, 'msg') else err}") from None


async def read_body(request: Request, limit: int) -> bytes:
    declared = request.headers.get("content-length")
    if declared is not None and declared.isdigit() and int(declared) > limit:
        raise ApiError(f"the body has {declared} bytes; the limit is {limit}", status=413)
    chunks, size = [], 0
    async for chunk in request.stream():
        size += len(chunk)
        if size > limit:
            raise ApiError(f"the body is over the limit of {limit} bytes", status=413)
        chunks.append(chunk)
    return b"".join(chunks)


def explorer_of(request: Request) -> Explorer:
    return request.app.state.explorer


def png_response(data: bytes) -> Response:
    return Response(data, media_type="image/png", headers={"Cache-Control": "private, max-age=3600"})


# --- routes ----------------------------------------------------------------------------
async def index(request: Request) -> Response:
    response = FileResponse(STATIC / "index.html", media_type="text/html")
    token = explorer_of(request).settings.token
    if token and request.query_params.get("token"):
        response.set_cookie(TOKEN_COOKIE, token, httponly=True, samesite="strict")
    return response


async def health(request: Request) -> Response:
    explorer = explorer_of(request)
    return JSONResponse({"status": "ok", "pending": explorer.queue.pending,
                         "batches": explorer.queue.stats.batches, "requests": explorer.queue.stats.requests})


async def colormap(request: Request) -> Response:
    """What the pages draw maps with, so a page's overlay equals ``viz.overlay`` / ``viz.attribution_image``."""
    from netgaze import viz
    return JSONResponse({"name": "jet", "colors": viz.colormap_table("jet").tolist(), "alpha": 0.5,
                         "signed_percentile": 99.5}, headers={"Cache-Control": "private, max-age=3600"})


async def runs(request: Request) -> Response:
    return JSONResponse({"runs": [s.facts() for s in explorer_of(request).sources]})


async def history(request: Request) -> Response:
    source = explorer_of(request).sources.get(request.path_params["run"])
    return JSONResponse({"run": source.id, "history": source.history, "epochs": source.epochs})


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
                                   lambda state: views.picture_list(state, source, split))
    if params.get("label") not in (None, ""):
        label = _int_param(params["label"], "label", 0, max(len(source.classes) - 1, 0))
        items = [i for i in items if i["label"] == label]
    if order == "misclassified":
        items = sorted(items, key=lambda i: (i.get("correct") is not False, -i.get("p", 0.0)))
    return JSONResponse({"run": source.id, "split": split, "total": len(items), "pictures": items[:limit]})


async def strategies(request: Request) -> Response:
    explorer = explorer_of(request)
    params = request.query_params
    unknown = sorted(set(params) - {"run", "token"})
    if unknown:
        raise ApiError(f"unknown parameter(s) {', '.join(u[:40] for u in unknown)}; valid: run")
    source = explorer.sources.get(params.get("run"))
    loop = asyncio.get_running_loop()
    result = await loop.run_in_executor(None, views.strategies, source)
    return JSONResponse(dict(result, run=source.id))


def _int_param(text: str, name: str, lo: int, hi: int) -> int:
    try:
        value = int(text)
    except ValueError:
        raise ApiError(f"{name} is an integer") from None
    if not lo <= value <= hi:
        raise ApiError(f"{name} is in {lo}..{hi}")
    return value


async def picture(request: Request) -> Response:
    source = explorer_of(request).sources.get(request.path_params["run"])
    found = source.picture(request.path_params["split"], request.path_params["index"])
    return png_response(picture_png(found.x))


async def upload_picture(request: Request) -> Response:
    explorer = explorer_of(request)
    array = explorer.uploads.get(request.path_params["upload"])
    from netgaze.serve.pictures import png_bytes
    return png_response(png_bytes(array))


async def upload(request: Request) -> Response:
    explorer = explorer_of(request)
    if request.headers.get("content-type", "").startswith("multipart/form-data"):
        declared = request.headers.get("content-length")
        if declared is not None and declared.isdigit() and int(declared) > MAX_UPLOAD_BYTES + 64 * 1024:
            raise ApiError(f"the upload is over the limit of {MAX_UPLOAD_BYTES} bytes", status=413)
        try:
            async with request.form(max_files=1, max_fields=1, max_part_size=MAX_UPLOAD_BYTES + 1) as form:
                files = [v for v in form.values() if hasattr(v, "read")]
                if not files:
                    raise ApiError("the form holds no file")
                data = await files[0].read(MAX_UPLOAD_BYTES + 1)
        except HTTPException as err:
            raise ApiError(f"bad form: {err.detail}") from None
    else:
        data = await read_body(request, MAX_UPLOAD_BYTES)
    loop = asyncio.get_running_loop()
    image = await loop.run_in_executor(None, check_upload, data)
    upload_id = explorer.uploads.add(image)
    return JSONResponse({"upload": upload_id, "width": image.size[0], "height": image.size[1]})


async def explain(request: Request) -> Response:
    start = time.perf_counter()
    explorer = explorer_of(request)
    body = await read_json(request)
    job = await explorer.parse(body)
    result = await explorer.queue.submit(job)
    result = dict(result, ms=round((time.perf_counter() - start) * 1000, 3))
    return JSONResponse(result)


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
                                                                          layers[0], target))
    return JSONResponse(dict(result, run=source.id, layer=layers[0]))


async def embedding(request: Request) -> Response:
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
        raise ApiError(f"method is one of {', '.join(views.EMBED_METHODS)}")
    key = ("embedding", source.id, layer, method, epoch, limit, split)
    result = await explorer.analyse(key, lambda state: views.embedding(state, source, layer, method, epoch,
                                                                       limit, split))
    return JSONResponse(dict(result, run=source.id, split=split))


async def units(request: Request) -> Response:
    explorer = explorer_of(request)
    body = check_keys(await read_json(request), ("run", "layer", "channels", "steps", "top", "epoch"), "the request")
    source = explorer.sources.get(body.get("run"))
    layer = source.resolve_layer(body.get("layer", -1))
    epoch = source.check_epoch(body.get("epoch"))
    channels, steps, k = body.get("channels"), body.get("steps", 64), body.get("top", 6)
    if isinstance(k, bool) or not isinstance(k, int) or not 1 <= k <= 16:
        raise ApiError("top is an integer in 1..16")
    key = ("units", source.id, layer, json.dumps(channels), steps, k, epoch)
    result = await explorer.analyse(key, lambda state: units_view.units(state, source, layer, channels, steps,
                                                                        k, epoch))
    return JSONResponse(dict(result, run=source.id))


# --- errors and the token --------------------------------------------------------------
async def api_error(request: Request, err: ApiError) -> Response:
    return error_response(err.status, str(err))


async def user_error(request: Request, err: Exception) -> Response:
    return error_response(400, str(err).splitlines()[0] if str(err) else type(err).__name__)


async def queue_full(request: Request, err: QueueFull) -> Response:
    return error_response(503, f"the server is busy: {err}", headers={"Retry-After": "1"})


async def http_error(request: Request, err: HTTPException) -> Response:
    return error_response(err.status_code, err.detail or "error", headers=getattr(err, "headers", None))


async def server_error(request: Request, err: Exception) -> Response:
    log.exception("unexpected error on %s", request.url.path)
    return error_response(500, f"internal error ({type(err).__name__}); the server keeps serving")


class Guard:
    """ASGI middleware: the token check (when set) and safe headers on every response."""

    def __init__(self, app, token: str | None):
        self.app, self.token = app, token

    async def __call__(self, scope, receive, send):
        if scope["type"] != "http":
            return await self.app(scope, receive, send)
        if self.token and not self._allowed(scope):
            response = error_response(401, "this server needs its token: open the URL it printed, "
                                           "or send Authorization: Bearer TOKEN")
            return await response(scope, receive, send)

        async def send_with_headers(message):
            if message["type"] == "http.response.start":
                headers = list(message.get("headers", []))
                headers += [(b"x-content-type-options", b"nosniff"), (b"referrer-policy", b"no-referrer"),
                            (b"content-security-policy", CSP.encode()), (b"x-frame-options", b"DENY")]
                message = dict(message, headers=headers)
            await send(message)
        return await self.app(scope, receive, send_with_headers)

    def _allowed(self, scope) -> bool:
        request = Request(scope)
        given = [request.query_params.get("token", ""), request.cookies.get(TOKEN_COOKIE, "")]
        auth = request.headers.get("authorization", "")
        if auth.lower().startswith("bearer "):
            given.append(auth[7:].strip())
        return any(g and hmac.compare_digest(g.encode(), self.token.encode()) for g in given)


def _lifespan(explorer: Explorer):
    @contextlib.asynccontextmanager
    async def lifespan(app):
        try:
            yield
        finally:
            explorer.close()
    return lifespan


def create_app(sources: Sources, settings: Settings | None = None) -> Starlette:
    """The explorer's ASGI application (serve it with uvicorn; ``app.state.explorer`` holds its state)."""
    explorer = Explorer(sources, settings)
    routes = [                      # matched in order: the most frequent request first
        Route("/api/explain", explain, methods=["POST"]),
        Route("/", index),
        Route("/favicon.ico", lambda request: Response(status_code=204)),
        Route("/api/health", health),
        Route("/api/runs", runs),
        Route("/api/colormap", colormap),
        Route("/api/runs/{run}/history", history),
        Route("/api/runs/{run}/pictures", pictures),
        Route("/api/runs/{run}/pictures/{split}/{index:int}.png", picture),
        Route("/api/strategies", strategies),
        Route("/api/uploads/{upload}.png", upload_picture),
        Route("/api/upload", upload, methods=["POST"]),
        Route("/api/epochs", epochs, methods=["POST"]),
        Route("/api/embedding", embedding, methods=["POST"]),
        Route("/api/units", units, methods=["POST"]),
        Mount("/static", StaticFiles(directory=STATIC), name="static"),
    ]
    handlers = {ApiError: api_error, QueueFull: queue_full, HTTPException: http_error, ValueError: user_error,
                RecorderError: user_error,
                Exception: server_error}
    app = Starlette(routes=routes, exception_handlers=handlers,
                    middleware=[Middleware(Guard, token=explorer.settings.token)],
                    lifespan=_lifespan(explorer))
    app.state.explorer = explorer
    return app

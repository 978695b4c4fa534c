"""The explorer's web application: HTTP API under ``/api/`` and the static front end.

Routes (the API is documented in the README and kept stable for scripts):

- ``GET  /api/health`` -> ``{"status": "ok"}``
- ``GET  /api/runs`` -> the served runs and models: task, classes, layers (stages first), epochs
- ``GET  /api/colormap`` -> the colour table and blending the pages draw maps with
- ``GET  /api/runs/{run}/pictures?split=test&order=index|misclassified&label=c&limit=n``
- ``GET  /api/runs/{run}/pictures/{split}/{index}.png`` -> the picture itself
- ``GET  /api/runs/{run}/history`` -> one record per trained epoch
- ``GET  /api/strategies?run=ID[&class=c&offset=o&limit=n&pictures=k]`` -> per class the strategy
  clusters (SpRAy artifact) and their pictures, optionally one page of clusters
- ``POST /api/explain`` -> map, overlay, prediction, server time (``requests.py`` has the body)
- ``POST /api/upload`` -> ``{"upload": ID}`` (a PNG/JPEG/WebP as the raw body or a form file)
- ``GET  /api/uploads/{id}.png``
- ``POST /api/epochs`` -> per checkpoint: the run's metric and the picture's attention
- ``POST /api/embedding`` -> 2-D points of a layer's features (PCA / t-SNE / UMAP)
- ``POST /api/embedding.bin`` -> the same points as packed binary columns (what the page draws)
- ``POST /api/units`` -> channels of a layer: activation maximization and top pictures
- ``POST /api/concepts`` -> a picture's concepts: conditional maps, values at a point, reference pictures
- ``GET  /api/concepts/atlas?run=ID[&class=c]`` -> one class of the run's concept atlas (``concepts_route.py``)

This module holds the explorer's state and the Explain routes; ``page_routes.py`` the other
pages', ``guard.py`` the token, headers and error handlers, ``web.py`` the plumbing.
Explanations go to worker processes (``processes.py``, what ``netgaze serve`` runs) or to the
batching queue of worker threads (``batching.py``); the other computations run in one analysis
thread. The event loop only parses, enqueues and answers. Every error is a 4xx
(or a 503 with ``Retry-After``) with a one-line JSON body ``{"error": ...}``; an unexpected
exception is a 500 with its type only, never a traceback.
"""
from __future__ import annotations

import asyncio
import contextlib
import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable

from starlette.applications import Starlette
from starlette.exceptions import HTTPException
from starlette.middleware import Middleware
from starlette.requests import Request
from starlette.responses import FileResponse, Response
from starlette.routing import Mount, Route
from starlette.staticfiles import StaticFiles

from netgaze.core.recorder import RecorderError
from netgaze.serve.batching import BatchQueue, QueueFull
from netgaze.serve.cache import MemoryLRU
from netgaze.serve.concepts_route import concept_atlas, concepts
from netgaze.serve.compute import WorkerState, answer_json, explain_batch, with_server_time
from netgaze.serve.api_error import ApiError
from netgaze.serve.guard import TOKEN_COOKIE, Guard, api_error, http_error, queue_full, server_error, user_error
from netgaze.serve.page_routes import embedding, embedding_packed, epochs, history, pictures, strategies, units
from netgaze.serve.uploads import MAX_UPLOAD_BYTES, check_upload, picture_png
from netgaze.serve.requests import Uploads, labelled_picture, parse_explain, picture_is_ready
from netgaze.serve.sources import Sources
from netgaze.serve.processes import WorkerProcesses
from netgaze.serve.web import JSONAnswer, MAX_JSON_BYTES, explorer_of, png_response, read_body, read_json

STATIC = Path(__file__).parent / "static"
MAX_ANALYSES = 8            # units, embeddings and epoch curves queued or running at once (then 503)
DISCONNECT_POLL_S = 0.25    # how often a waiting analysis request checks that its client is still there


class ClientGone(Exception):
    """The client of an analysis request closed its connection while it waited."""


async def client_gone(request: Request, err: ClientGone) -> Response:
    return Response(status_code=499)   # nobody reads it; no traceback in the log


@dataclass
class Settings:
    """How the explorer serves.

    Attributes:
        workers: explanation workers (each holds its own model copies): threads, or with
            ``processes`` child processes.
        processes: explain in worker processes (``processes.py``), as ``netgaze serve`` does;
            needs sources made by ``Sources.from_arguments`` (the workers load them again).
        threads: PyTorch threads in each worker process (None: PyTorch's default).
        max_batch: most requests explained in one pass.
        max_queue: most requests waiting; beyond it the answer is 503 with Retry-After.
        cache_mb: memory bound of each cache (checkpoints, each worker's models, results).
        token: when set, every request must carry it (header, cookie or ``?token=``).
        allowed_hosts: ``Host`` names answered besides the loopback names (without a token,
            other names are refused: DNS rebinding protection, ``guard.py``).
    """

    workers: int = 1
    processes: bool = False
    threads: int | None = None
    max_batch: int = 16
    max_queue: int = 64
    cache_mb: int = 512
    token: str | None = None
    allowed_hosts: tuple[str, ...] = ()


class Explorer:
    """The state behind the routes: sources, uploads, the batch queue, the analysis thread, caches."""

    def __init__(self, sources: Sources, settings: Settings | None = None, workers: WorkerProcesses | None = None):
        self.sources = sources
        self.settings = settings or Settings()
        budget = self.settings.cache_mb * 1024 * 1024
        self.weights = MemoryLRU(budget, "checkpoints")
        self.results = MemoryLRU(budget, "results")
        self.uploads = Uploads(budget // 2)
        if workers is None and self.settings.processes:
            if self.sources.recipe is None:
                raise ValueError("worker processes need sources made by Sources.from_arguments (they load them again)")
            workers = WorkerProcesses.start_loading(self.sources.recipe, self.settings)
        if workers is not None:
            workers.uploads = self.uploads
            self.queue = workers
        else:
            self.queue = BatchQueue(explain_batch, key=lambda job: job.key(), workers=self.settings.workers,
                                    max_batch=self.settings.max_batch, max_queue=self.settings.max_queue,
                                    make_state=lambda i: WorkerState(self.weights, budget))
        self.analysis_state = WorkerState(self.weights, budget)
        self.analysis = ThreadPoolExecutor(1, thread_name_prefix="netgaze-serve-analysis")
        self.in_flight: dict[tuple, list] = {}   # key -> [future, clients waiting]
        self.readers = ThreadPoolExecutor(2, thread_name_prefix="netgaze-serve-pictures")
        for source in sources:       # the stage rule's probe passes run now, not in the event loop later
            source.layers()

    def wait_ready(self) -> None:
        """Block until the worker processes have loaded (``ApiError`` if one cannot)."""
        if isinstance(self.queue, WorkerProcesses):
            self.queue.wait_ready()

    async def start(self) -> None:
        if isinstance(self.queue, WorkerProcesses):
            await self.queue.start()

    async def stop(self) -> None:
        if isinstance(self.queue, WorkerProcesses):
            await self.queue.stop()
        self.close()

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

    async def analyse(self, key: tuple, work: Callable[[WorkerState], Any], request: Request | None = None) -> Any:
        """Run ``work`` in the analysis thread once per ``key``; later calls read the cache.

        Bounded like the explanations: with ``MAX_ANALYSES`` computations queued or running, a
        new one is refused (503 + Retry-After). Requests for a key already in flight wait for that
        computation instead of queueing another. A computation that has not started is cancelled
        when every client waiting for it has gone (``request`` tells; one that has started runs to
        its end and fills the cache).
        """
        cached = self.results.get(key)
        if cached is not None:
            return cached
        entry = self.in_flight.get(key)
        if entry is None:
            if len(self.in_flight) >= MAX_ANALYSES:
                raise QueueFull(f"{len(self.in_flight)} analyses (units, embeddings, epoch curves) are queued or "
                                "running; retry in a moment")
            future = self.analysis.submit(work, self.analysis_state)
            entry = self.in_flight[key] = [future, 0]
            future.add_done_callback(lambda f, key=key: self._finished(key, f))
        entry[1] += 1
        try:
            waiting = asyncio.wrap_future(entry[0])
            while True:
                done, _ = await asyncio.wait({waiting}, timeout=DISCONNECT_POLL_S)
                if done:
                    return waiting.result()
                if request is not None and await request.is_disconnected():
                    raise ClientGone()
        finally:
            entry[1] -= 1
            if entry[1] == 0 and not entry[0].done():
                entry[0].cancel()            # nobody waits: a queued computation never starts

    def _finished(self, key: tuple, future: Any) -> None:
        if self.in_flight.get(key, [None])[0] is future:
            del self.in_flight[key]
        if not future.cancelled() and future.exception() is None:
            self.results.put(key, future.result())

    def close(self) -> None:
        self.queue.close()
        self.analysis.shutdown(wait=False, cancel_futures=True)
        self.readers.shutdown(wait=False, cancel_futures=True)


# --- routes ----------------------------------------------------------------------------
async def index(request: Request) -> Response:
    response = FileResponse(STATIC / "index.html", media_type="text/html")
    token = explorer_of(request).settings.token
    if token and request.query_params.get("token"):
        response.set_cookie(TOKEN_COOKIE, token, httponly=True, samesite="strict")
    return response


async def health(request: Request) -> Response:
    explorer = explorer_of(request)
    return JSONAnswer({"status": "ok", "pending": explorer.queue.pending,
                         "batches": explorer.queue.stats.batches, "requests": explorer.queue.stats.requests})


async def colormap(request: Request) -> Response:
    """What the pages draw maps with, so a page's overlay equals ``viz.overlay`` / ``viz.attribution_image``."""
    from netgaze import viz
    return JSONAnswer({"name": "jet", "colors": viz.colormap_table("jet").tolist(), "alpha": 0.5,
                         "signed_percentile": 99.5}, headers={"Cache-Control": "private, max-age=3600"})


async def runs(request: Request) -> Response:
    from netgaze.methods import CAM_METHODS, GRADIENT_METHODS, PERTURBATION_METHODS
    from netgaze.serve.views import EMBED_METHODS

    # the pages offer what the library has: CAM maps [H, W] (one or several layers) and per-pixel
    # attributions [C, H, W] (guided Grad-CAM also takes layers)
    return JSONAnswer({"runs": [s.facts() for s in explorer_of(request).sources],
                       "cam_methods": list(CAM_METHODS),
                       "pixel_methods": ["guided_backprop", "guided_gradcam", *[m for m in GRADIENT_METHODS
                                                                              if m != "guided_backprop"],
                                         *PERTURBATION_METHODS],
                       "embedding_methods": list(EMBED_METHODS)})


async def picture(request: Request) -> Response:
    source = explorer_of(request).sources.get(request.path_params["run"])
    found = source.picture(request.path_params["split"], request.path_params["index"])
    return png_response(picture_png(found.x))


async def upload_picture(request: Request) -> Response:
    explorer = explorer_of(request)
    array = explorer.uploads.get(request.path_params["upload"])
    from netgaze.serve.uploads import png_bytes
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
    if isinstance(explorer.queue, WorkerProcesses):
        explorer.queue.upload(upload_id, explorer.uploads.get(upload_id))
    return JSONAnswer({"upload": upload_id, "width": image.size[0], "height": image.size[1]})


async def explain(request: Request) -> Response:
    start = time.perf_counter()
    explorer = explorer_of(request)
    if isinstance(explorer.queue, WorkerProcesses):    # the worker checks the body and encodes the answer
        status, answer = await explorer.queue.explain(await read_body(request, MAX_JSON_BYTES))
    else:
        job = await explorer.parse(await read_json(request))
        status, answer = 200, answer_json(await explorer.queue.submit(job))
    if status == 200:
        answer = with_server_time(answer, start)
    return Response(answer, status_code=status, media_type="application/json")


def _lifespan(explorer: Explorer):
    @contextlib.asynccontextmanager
    async def lifespan(app):
        try:
            await explorer.start()
            yield
        finally:
            await explorer.stop()
    return lifespan


def create_app(sources: Sources, settings: Settings | None = None,
               workers: WorkerProcesses | None = None) -> Starlette:
    """The explorer's ASGI application (serve it with uvicorn; ``app.state.explorer`` holds its state).
    ``workers``: worker processes already loading the same sources (``netgaze serve`` starts them
    before loading its own copy, so both load at once); by default ``settings.processes`` starts them."""
    explorer = Explorer(sources, settings, workers)
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
        Route("/api/embedding.bin", embedding_packed, methods=["POST"]),
        Route("/api/units", units, methods=["POST"]),
        Route("/api/concepts", concepts, methods=["POST"]),
        Route("/api/concepts/atlas", concept_atlas),
        Mount("/static", StaticFiles(directory=STATIC), name="static"),
    ]
    handlers = {ApiError: api_error, QueueFull: queue_full, ClientGone: client_gone, HTTPException: http_error,
                ValueError: user_error,
                RecorderError: user_error,
                Exception: server_error}
    app = Starlette(routes=routes, exception_handlers=handlers,
                    middleware=[Middleware(Guard, token=explorer.settings.token,
                                           allowed_hosts=tuple(explorer.settings.allowed_hosts))],
                    lifespan=_lifespan(explorer))
    app.state.explorer = explorer
    return app

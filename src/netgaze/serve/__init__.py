"""``netgaze serve``: a local web explorer over runs and models, with a documented HTTP API.

- ``sources.py``: the served runs and models, named by ID (never by path), with pictures and layers;
  ``model_sources.py``: torchvision / timm models and segmenters as sources.
- ``requests.py``: checks of what clients send; ``compute.py``: one batched explanation pass.
- ``processes.py``: the explanation worker processes ``netgaze serve`` runs (``worker_main.py``
  is their program, ``frames.py`` the bytes between them); ``batching.py``: the bounded queue
  of worker threads that groups concurrent requests per (model, layer, method) in one process.
- ``views.py`` / ``units.py``: picture lists, epoch curves, embeddings, units (cached), and the
  strategies artifact paged; ``embedding_points.py``: an embedding's points as JSON or packed binary.
- ``app.py``: the explorer's state and the Explain routes; ``page_routes.py``: the other pages';
  ``guard.py``: token, headers, error handlers; ``web.py``: request/response plumbing.
- ``static/``: the front end (plain HTML, JS and CSS; maps drawn by ``heat.js``, the Embedding
  page's WebGL scatter plot by ``scatter.js`` on twgl.js, vendored in ``static/vendor/``).
- ``server.py``: run it with uvicorn (``serve(...)``), or in a background thread for tests.
"""
from netgaze.serve.app import Explorer, Settings, create_app
from netgaze.serve.source import Source
from netgaze.serve.sources import Sources

__all__ = ["create_app", "Settings", "Explorer", "Source", "Sources", "serve", "BackgroundServer"]


def __getattr__(name: str):
    if name in ("serve", "BackgroundServer"):
        from netgaze.serve import server
        return getattr(server, name)
    raise AttributeError(f"module 'netgaze.serve' has no attribute {name!r}")

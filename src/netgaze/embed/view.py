"""A self-contained interactive HTML view of a 2-D or 3-D embedding.

One file, no network access: the points, names and a thumbnail sprite (PNG data URI)
are inlined as JSON, the script draws on a canvas. Points are coloured by label or by
prediction (a toggle), hovering shows the image, its label, prediction and path; the
wheel zooms and dragging pans (2-D) or rotates (3-D; shift-drag pans).

Every user-provided text (class names, paths, title) reaches the page only as JSON
with ``<``, ``>`` and ``&`` escaped and is put on the page with ``textContent``, so a
class called ``</script><script>alert(1)</script>`` stays text.
"""
from __future__ import annotations

import base64
import html
import io
import json
import os
import re
from pathlib import Path
from typing import Sequence

import numpy as np

from netgaze.errors import ArgumentError, warn_user
from netgaze._util.atomic import atomic_write
from netgaze.embed.projector import max_sprite_points, sprite_image, sprite_layout
from netgaze.embed.view_template import TEMPLATE

HTML_THUMBNAIL = 32
MIN_THUMBNAIL = 8


def interactive_html(path: str | os.PathLike, embedding: np.ndarray, *, labels: Sequence[int] | None = None,
                     predictions: Sequence[int] | None = None, classes: Sequence[str] | None = None,
                     paths: Sequence[str] | None = None, thumbnails: np.ndarray | None = None,
                     title: str = "netgaze embedding") -> Path:
    """Write the interactive view of ``embedding`` [N, 2|3] to ``path`` (atomically).

    Args:
        labels: integer class ids per point (indices into ``classes``).
        predictions: integer class ids per point (indices into ``classes``).
        classes: class names; None shows the ids.
        paths: image paths shown on hover.
        thumbnails: uint8 [N, h, w, 3] images shown on hover (shrunk to 32 px); left
            out with a warning when N is too large for one 8,192-pixel sprite.
        title: the page title.
    """
    page = render_html(embedding, labels=labels, predictions=predictions, classes=classes, paths=paths,
                       thumbnails=thumbnails, title=title)
    return atomic_write(path, page)


def render_html(embedding: np.ndarray, *, labels: Sequence[int] | None = None,
                predictions: Sequence[int] | None = None, classes: Sequence[str] | None = None,
                paths: Sequence[str] | None = None, thumbnails: np.ndarray | None = None,
                title: str = "netgaze embedding") -> str:
    """The page as a string (see ``interactive_html``)."""
    Y = np.asarray(embedding, dtype=np.float64)
    if Y.ndim != 2 or Y.shape[1] not in (2, 3):
        raise ArgumentError(f"the embedding must be [N, 2] or [N, 3], got {Y.shape}")
    n = len(Y)
    data: dict = {"dims": int(Y.shape[1]), "points": np.round(_centre(Y), 5).ravel().tolist()}
    for key, values in (("labels", labels), ("predictions", predictions)):
        if values is not None:
            values = np.asarray(values).astype(np.int64)
            if len(values) != n:
                raise ArgumentError(f"{key} has {len(values)} values for {n} points")
            data[key] = values.tolist()
    if classes is None:
        ids = [int(v) for key in ("labels", "predictions") for v in data.get(key, [])]
        classes = [str(i) for i in range(max(ids) + 1)] if ids else []
    data["classes"] = [str(c) for c in classes]
    if paths is not None:
        if len(paths) != n:
            raise ArgumentError(f"{len(paths)} paths for {n} points")
        data["paths"] = [str(p) for p in paths]
    if thumbnails is not None:
        data["sprite"] = _sprite(np.asarray(thumbnails), n)
    payload = json.dumps(data, separators=(",", ":"), allow_nan=False)
    payload = payload.replace("<", "\\u003c").replace(">", "\\u003e").replace("&", "\\u0026")
    fill = {"TITLE": html.escape(title), "DATA": payload}
    return re.sub(r"__(TITLE|DATA)__", lambda m: fill[m.group(1)], TEMPLATE)


def _centre(Y: np.ndarray) -> np.ndarray:
    """Centre on the origin; scale the largest coordinate (2-D) or radius (3-D, rotated) to 1."""
    Y = Y - (Y.max(0) + Y.min(0)) / 2
    span = np.abs(Y).max() if Y.shape[1] == 2 else np.sqrt((Y ** 2).sum(1)).max()
    return Y / span if span > 0 else Y


def _sprite(thumbnails: np.ndarray, n: int) -> dict | None:
    if len(thumbnails) != n:
        raise ArgumentError(f"{len(thumbnails)} thumbnails for {n} points")
    if n > max_sprite_points(MIN_THUMBNAIL):
        warn_user(f"{n} points are too many for one thumbnail sprite; the view shows no thumbnails")
        return None
    from PIL import Image

    cols, side = sprite_layout(n, HTML_THUMBNAIL, MIN_THUMBNAIL)
    buffer = io.BytesIO()
    Image.fromarray(sprite_image(thumbnails, side, cols)).save(buffer, format="PNG", optimize=True)
    uri = "data:image/png;base64," + base64.b64encode(buffer.getvalue()).decode("ascii")
    return {"uri": uri, "side": side, "cols": cols}


__all__ = ["interactive_html", "render_html"]

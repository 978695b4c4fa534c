"""Checking what clients send: an explanation request becomes an ``ExplainJob`` or an ``ApiError``.

Request body of ``POST /api/explain`` (JSON)::

    {"run": ID, "image": {"split": "test", "index": 3} | {"upload": ID},
     "method": "gradcam", "layer": NAME | -1 | [NAME, -2, ...],
     "target": {"class": 3 | NAME} | {"top": k} | {"box": [y0, x0, y1, x1], "channel": c | null | "predicted"},
     "epoch": 7, "include": ["map", "overlay", "map_f32"]}

Everything but ``run`` and ``image`` is optional: method ``gradcam``, layer ``-1`` (the last
stage), target ``{"top": 1}`` (the predicted class), the last epoch, map and overlay
(``map_f32``, the map packed as base64 float32, is what the explorer's pages ask for).
"""
from __future__ import annotations

import re
import secrets
from typing import Any

import numpy as np
import torch
from PIL import Image

from netgaze.methods import LAYER_METHODS, METHODS, method_name
from netgaze.core.targets import PREDICTED
from netgaze.serve.cache import MemoryLRU
from netgaze.serve.compute import ExplainJob
from netgaze.serve.api_error import ApiError, NotFound
from netgaze.serve.uploads import to_tensor
from netgaze.serve.source import Source
from netgaze.serve.sources import Sources

EXPLAIN_KEYS = ("run", "image", "method", "layer", "target", "epoch", "include")
INCLUDE = ("map", "overlay", "map_f32")
DEFAULT_INCLUDE = ("map", "overlay")
MAX_LAYERS_PER_REQUEST = 8
MAX_TOP = 10
UPLOAD_ID = re.compile(r"^[0-9a-f]{16}$")


class Uploads:
    """Uploaded pictures in memory (RGB arrays), by random ID, least recently used dropped first."""

    def __init__(self, max_bytes: int = 256 * 1024 * 1024):
        self.cache = MemoryLRU(max_bytes, "uploads")

    def add(self, image: Image.Image) -> str:
        upload_id = secrets.token_hex(8)
        self.put(upload_id, np.asarray(image.convert("RGB"), dtype=np.uint8).copy())
        return upload_id

    def put(self, upload_id: str, array: np.ndarray) -> None:
        """Keep an RGB array under a known ID (a worker process gets the explorer's uploads so)."""
        self.cache.put(upload_id, array)

    def arrays(self) -> list[tuple[str, np.ndarray]]:
        """Every kept upload as ``(ID, RGB array)``, least recently used first."""
        return [(key, value) for key, value in self.cache.items() if isinstance(key, str)]

    @staticmethod
    def check_id(upload_id: Any) -> str:
        if not isinstance(upload_id, str) or not UPLOAD_ID.match(upload_id):
            raise ApiError("an upload ID is 16 hexadecimal digits, as POST /api/upload returned it")
        return upload_id

    def get(self, upload_id: Any) -> np.ndarray:
        self.check_id(upload_id)
        array = self.cache.get(upload_id)
        if array is None:
            raise NotFound("unknown or expired upload ID; upload the picture again")
        return array

    def tensor(self, upload_id: Any, source: Source) -> torch.Tensor:
        """The upload at the source's size (resized once per size, then kept with the upload's bytes)."""
        key = (self.check_id(upload_id), source.size, source.channels)
        found = self.cache.get(key)
        if found is None:
            found = self.cache.put(key, to_tensor(Image.fromarray(self.get(upload_id)), source.size, source.channels))
        return found

    def has_tensor(self, upload_id: Any, source: Source) -> bool:
        return isinstance(upload_id, str) and (upload_id, source.size, source.channels) in self.cache


def picture_is_ready(body: Any, sources: Sources, uploads: Uploads) -> bool:
    """Whether the picture a request names is already decoded and cached, so parsing it costs
    microseconds; False for anything else (the caller then parses off the event loop, where a
    picture folder's photo or an upload may take milliseconds to decode and resize)."""
    try:
        source, image = sources.get(body["run"]), body["image"]
        if "upload" in image:
            return uploads.has_tensor(image["upload"], source)
        return source.has_picture(image.get("split", "test"), image["index"])
    except Exception:  # noqa: BLE001 - a malformed body: the full parse reports it
        return False


def check_keys(body: Any, allowed: tuple[str, ...], what: str) -> dict[str, Any]:
    if not isinstance(body, dict):
        raise ApiError(f"{what} must be a JSON object")
    unknown = sorted(set(body) - set(allowed))
    if unknown:
        raise ApiError(f"unknown field(s) {', '.join(repr(k[:40]) for k in unknown)} in {what}; "
                       f"valid: {', '.join(allowed)}")
    return body


def labelled_picture(image: Any, source: Source, uploads: Uploads) -> tuple[torch.Tensor, int | None]:
    """``(picture, its label or None)`` of an ``"image"`` field."""
    if isinstance(image, dict) and "upload" in image:
        check_keys(image, ("upload",), "image")
        return uploads.tensor(image["upload"], source), None
    check_keys(image, ("split", "index"), "image")
    if "index" not in image:
        raise ApiError('image is {"split": "test", "index": i} or {"upload": ID}')
    split = image.get("split", "test")
    if not isinstance(split, str):
        raise ApiError("image split is a name such as \"test\"")
    found = source.picture(split, image["index"])
    return found.x, found.label


def check_method(method: Any) -> str:
    if isinstance(method, str) and len(method) <= 64:
        method = method_name(method)
    if not isinstance(method, str) or method not in METHODS:
        shown = method[:40] if isinstance(method, str) else type(method).__name__
        raise ApiError(f"unknown method {shown!r}; choose one of: {', '.join(METHODS)}")
    return method


def check_layers(source: Source, layer: Any) -> tuple[tuple[str, ...], bool]:
    many = isinstance(layer, list)
    refs = layer if many else [layer]
    if not refs or len(refs) > MAX_LAYERS_PER_REQUEST:
        raise ApiError(f"give 1 to {MAX_LAYERS_PER_REQUEST} layers")
    names = tuple(source.resolve_layer(ref) for ref in refs)
    if len(set(names)) != len(names):
        raise ApiError(f"the same layer is requested twice: {list(names)}")
    return names, many


def check_target(source: Source, target: Any, size: tuple[int, int]) -> tuple:
    if target is None:
        target = {"top": 1}
    if not isinstance(target, dict):
        raise ApiError('target is {"class": c}, {"top": k} or {"box": [y0, x0, y1, x1], "channel": c}')
    if "box" in target:
        check_keys(target, ("box", "channel"), "target")
        if source.task == "classify":
            raise ApiError(f"{source.id} is a classifier; box targets need a dense output "
                           "(a reconstruction or a segmentation run)")
        box = target["box"]
        if not (isinstance(box, list) and len(box) == 4 and all(isinstance(v, int) and not isinstance(v, bool)
                                                                  for v in box)):
            raise ApiError("box is [y0, x0, y1, x1]: four integers, end-exclusive")
        y0, x0, y1, x1 = box
        h, w = size
        if not (0 <= y0 < y1 <= h and 0 <= x0 < x1 <= w):
            raise ApiError(f"box {box} is empty or outside the {h}x{w} output (need 0 <= y0 < y1 <= {h}, "
                           f"0 <= x0 < x1 <= {w})")
        channel = target.get("channel")
        channels = len(source.classes) if source.task == "segment" else source.channels
        if channel == PREDICTED and source.task == "segment":
            return ("box", (y0, x0, y1, x1), PREDICTED)
        if channel is not None and (isinstance(channel, bool) or not isinstance(channel, int)
                                    or not 0 <= channel < channels):
            also = f', or "{PREDICTED}" (the class predicted most inside the box)' if source.task == "segment" else ""
            raise ApiError(f"channel is null (all channels), an integer in 0..{channels - 1}{also}")
        return ("box", (y0, x0, y1, x1), channel)
    if source.task != "classify":
        raise ApiError(f"{source.id} has a dense output ({source.task}): give a box target "
                       '{"box": [y0, x0, y1, x1], "channel": c}')
    if "class" in target:
        check_keys(target, ("class",), "target")
        c = target["class"]
        if isinstance(c, str) and c in source.classes:
            c = source.classes.index(c)
        if isinstance(c, bool) or not isinstance(c, int) or not 0 <= c < len(source.classes):
            raise ApiError(f"class is a class name or an index in 0..{len(source.classes) - 1}")
        return ("class", c)
    check_keys(target, ("top",), "target")
    k = target.get("top", 1)
    if isinstance(k, bool) or not isinstance(k, int) or not 1 <= k <= min(MAX_TOP, max(len(source.classes), 1)):
        raise ApiError(f"top is an integer in 1..{min(MAX_TOP, max(len(source.classes), 1))}")
    return ("top", k)


def parse_explain(body: Any, sources: Sources, uploads: Uploads) -> ExplainJob:
    """Check a ``POST /api/explain`` body (see the module docstring) and resolve it into a job."""
    body = check_keys(body, EXPLAIN_KEYS, "the request")
    if "run" not in body or "image" not in body:
        raise ApiError('a request needs "run" and "image"')
    source = sources.get(body["run"])
    method = check_method(body.get("method", "gradcam"))
    epoch = source.check_epoch(body.get("epoch"))
    if method in LAYER_METHODS:
        layers, many = check_layers(source, body.get("layer", -1))
    else:
        layers, many = None, False
    include = body.get("include", list(DEFAULT_INCLUDE))
    if not isinstance(include, list) or not all(isinstance(i, str) for i in include) or not set(include) <= set(INCLUDE):
        raise ApiError(f"include is a list of: {', '.join(INCLUDE)}")
    x, label = labelled_picture(body["image"], source, uploads)
    source.check_labels([label])
    target = check_target(source, body.get("target"), tuple(x.shape[-2:]))
    return ExplainJob(source=source, epoch=epoch, method=method, layers=layers, many=many, x=x, target=target,
                      include=frozenset(include), label=label)

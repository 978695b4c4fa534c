"""An embedding's 2-D points as the Embedding page draws them: columns of numbers, answered as
JSON (``POST /api/embedding``, one object per point) or packed binary (``POST /api/embedding.bin``,
what the page asks for: a million points are 16 MB instead of about 70 MB of JSON, and the page
reads the columns in place, with no parsing).

The packed form, little-endian::

    bytes 0..3      b"NGE1"
    bytes 4..7      uint32 H: the length of the JSON header (space-padded: 8 + H is a multiple of 8)
    bytes 8..8+H    the header: {"format": "netgaze-embedding", "version": 1, "n", "title", "classes",
                    "run", "split", "columns": {name: {"dtype", "offset"[, "none"]}}}
    then            the columns, each n values of its dtype at 8 + H + offset (8-byte aligned):
                    x, y ("<f4", in [0, 1]), index ("<u4", the split's picture), and when known
                    label and pred ("<u2", or "<u4" for 65,535 classes or more; the value "none"
                    (the dtype's largest) where a picture has none)

The numbers are those of the JSON answer: ``np.float32(json_x) == x`` exactly (both come from
the same float32 values, which hold the coordinates rounded to 5 decimals).
"""
from __future__ import annotations

import json
import struct
import zipfile
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from netgaze.serve.api_error import ApiError
from netgaze.serve.web import finite

MAGIC = b"NGE1"
MAX_ARTIFACT_POINTS = 2_000_000      # the most points of an embedding artifact the explorer draws
DECIMALS = 5


@dataclass
class EmbeddingPoints:
    """An embedding's points as columns.

    Attributes:
        title: what the points are ("features.pool, pca").
        classes: the source's class names.
        x, y: float32 [n] in [0, 1]: one scale for both axes (the projection's proportions are
            kept; the narrower axis is centred), rounded to ``DECIMALS`` decimals.
        index: uint32 [n], the split's picture of each point.
        label, pred: int64 [n] with -1 where a picture has none; None when nothing is known.
    """

    title: str
    classes: list[str]
    x: np.ndarray
    y: np.ndarray
    index: np.ndarray
    label: np.ndarray | None
    pred: np.ndarray | None

    def __len__(self) -> int:
        return len(self.x)

    def to_json(self) -> dict[str, Any]:
        """``{"title", "classes", "points": [{"x", "y", "index", "label", "pred"}]}`` (None for unknown)."""
        def column(values: np.ndarray | None) -> list:
            if values is None:
                return [None] * len(self)
            return [v if v >= 0 else None for v in values.tolist()]

        xs = [round(v, DECIMALS) for v in self.x.tolist()]
        ys = [round(v, DECIMALS) for v in self.y.tolist()]
        points = [{"x": x, "y": y, "index": i, "label": label, "pred": pred}
                  for x, y, i, label, pred in zip(xs, ys, self.index.tolist(), column(self.label), column(self.pred))]
        return {"title": self.title, "classes": self.classes, "points": points}

    def packed(self, **meta: Any) -> bytes:
        """The packed binary form (module docstring); ``meta`` (run, split) goes into the header."""
        n = len(self)
        columns = [("x", np.ascontiguousarray(self.x, "<f4"), None), ("y", np.ascontiguousarray(self.y, "<f4"), None),
                   ("index", np.ascontiguousarray(self.index, "<u4"), None)]
        for name, values in (("label", self.label), ("pred", self.pred)):
            if values is not None:
                wide = n and int(values.max()) >= 0xFFFF
                dtype, none = ("<u4", 0xFFFFFFFF) if wide else ("<u2", 0xFFFF)
                columns.append((name, np.where(values < 0, none, values).astype(dtype), none))
        described, offset = {}, 0
        for name, values, none in columns:
            described[name] = {"dtype": values.dtype.str, "offset": offset, **({"none": none} if none else {})}
            offset += _padded(values.nbytes)
        header = json.dumps(finite({"format": "netgaze-embedding", "version": 1, "n": n, "title": self.title,
                                    "classes": self.classes, **meta, "columns": described}),
                            ensure_ascii=False, allow_nan=False, separators=(",", ":")).encode()
        header += b" " * (_padded(8 + len(header)) - 8 - len(header))
        parts = [MAGIC, struct.pack("<I", len(header)), header]
        for _, values, _ in columns:
            parts += [values.tobytes(), b"\0" * (_padded(values.nbytes) - values.nbytes)]
        return b"".join(parts)


def _padded(size: int) -> int:
    return -(-size // 8) * 8


def unpack(data: bytes) -> tuple[dict[str, Any], dict[str, np.ndarray]]:
    """``(header, columns)`` of a packed embedding: the reader of ``EmbeddingPoints.packed``
    for Python clients (numpy views of ``data``, no copy)."""
    if data[:4] != MAGIC:
        raise ValueError("not a packed netgaze embedding (no NGE1 at the start)")
    (length,) = struct.unpack_from("<I", data, 4)
    header = json.loads(data[8:8 + length])
    start, n = 8 + length, header["n"]
    return header, {name: np.frombuffer(data, dtype=c["dtype"], count=n, offset=start + c["offset"])
                    for name, c in header["columns"].items()}


def make_points(Y: np.ndarray, indices: Any, labels: Any, preds: Any, title: str,
                classes: list[str]) -> EmbeddingPoints:
    """Points from 2-D coordinates (rows with a non-finite coordinate are left out, and the title says so)."""
    Y = np.asarray(Y, dtype=np.float64)[:, :2]
    indices = np.asarray(indices)
    keep = np.isfinite(Y).all(1)
    if not keep.all():
        title += f" ({int((~keep).sum())} points with non-finite coordinates left out)"
        Y, indices = Y[keep], indices[keep]
        labels = None if labels is None else np.asarray(labels)[keep]
        preds = None if preds is None else np.asarray(preds)[keep]
    if len(Y):
        lo, hi = Y.min(0), Y.max(0)
        span = float((hi - lo).max()) or 1.0
        Y = (Y - lo) / span + (1.0 - (hi - lo) / span) / 2   # one scale; the narrower axis centred
    Y = np.round(np.clip(Y, 0.0, 1.0), DECIMALS).astype(np.float32)

    def ids(values: Any) -> np.ndarray | None:
        if values is None:
            return None
        values = np.asarray(values).astype(np.int64)
        return np.where(values < 0, -1, values)

    return EmbeddingPoints(title=title, classes=list(classes), x=np.ascontiguousarray(Y[:, 0]),
                           y=np.ascontiguousarray(Y[:, 1]), index=indices.astype(np.uint32),
                           label=ids(labels), pred=ids(preds))


def artifact_points(source_id: str, path: Path, classes: list[str]) -> EmbeddingPoints:
    """The points of a run's ``embedding.npz`` (only its embedding, indices, labels and
    predictions are read; never unpickled). One that is not readable, not of the expected shapes
    or over ``MAX_ARTIFACT_POINTS`` is a one-line error."""
    def bad(why: str) -> ApiError:
        return ApiError(f"{source_id}'s embedding artifact cannot be shown: {why}")

    try:
        shapes = _npz_shapes(path)
        n = shapes.get("embedding", (0,))[0]
        if len(shapes.get("embedding", ())) != 2 or shapes["embedding"][1] < 2:
            raise bad(f"its embedding is {shapes.get('embedding')}, not [n, 2]")
        if n > MAX_ARTIFACT_POINTS:
            raise bad(f"it has {n:,} points; the explorer draws at most {MAX_ARTIFACT_POINTS:,}")
        for key in ("indices", "labels", "predictions"):
            if key in shapes and shapes[key] != (n,):
                raise bad(f"{key} is {shapes[key]}, not [{n}] like the embedding")
        if "indices" not in shapes:
            raise bad("it has no indices")
        with np.load(path, allow_pickle=False) as data:
            Y, indices = data["embedding"], data["indices"]
            labels = data["labels"] if "labels" in shapes else None
            preds = data["predictions"] if "predictions" in shapes else None
    except ApiError:
        raise
    except (OSError, ValueError, KeyError, EOFError, zipfile.BadZipFile) as err:
        raise bad(f"{type(err).__name__}: {err}") from None
    for name, values in (("embedding", Y), ("indices", indices), ("labels", labels), ("predictions", preds)):
        if values is not None and values.dtype.kind not in ("f" if name == "embedding" else "iu"):
            raise bad(f"{name} holds {values.dtype}")
    if len(indices) and (int(indices.min()) < 0 or int(indices.max()) > 0xFFFFFFFF):
        raise bad("its indices are not picture numbers")
    return make_points(Y, indices, labels, preds, "the run's embedding artifact", classes)


def _npz_shapes(path: Path) -> dict[str, tuple]:
    """The shapes of an npz's arrays, read from their headers (nothing is loaded)."""
    shapes = {}
    with zipfile.ZipFile(path) as archive:
        for info in archive.infolist():
            if not info.filename.endswith(".npy"):
                continue
            with archive.open(info) as member:
                version = np.lib.format.read_magic(member)
                read = (np.lib.format.read_array_header_1_0 if version == (1, 0)
                        else np.lib.format.read_array_header_2_0)
                shape, _, _ = read(member)
            shapes[info.filename[:-4]] = tuple(shape)
    return shapes

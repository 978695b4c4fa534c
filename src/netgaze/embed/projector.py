"""TensorBoard Embedding Projector folder: config, tensors, metadata, sprite, an event file.

``tensorboard --logdir DIR`` shows the folder (Projector tab), and so does
``tensorboard --logdir PARENT`` over many runs: TensorBoard lists as runs only folders that
hold an event file, so the export writes one (TensorBoard's own ``EventFileWriter``) beside
the config. The format rules it follows (checked by the tests against TensorBoard's own
plugin code and a live server):

* ``projector_config.pbtxt``: TensorBoard's ``ProjectorConfig`` message in text format,
  one ``embeddings`` entry per tensor: ``tensor_name``, ``tensor_path``, ``tensor_shape``
  (needed for binary tensors), ``metadata_path`` and ``sprite { image_path
  single_image_dim }``. Paths are relative to the folder (the plugin refuses paths that
  leave it). Several exports into one folder keep every embedding in this one config: an
  export replaces only the entries it rewrites (same tensor names, or entries sharing its
  metadata or sprite file). ``group`` prefixes an export's names and files, so exports of
  other layers or splits sit side by side.
* tensors: ``.tsv`` (tab-separated float rows, the plugin's first choice) or ``.bytes``
  (raw little-endian float32, row-major; the plugin falls back to it when the file is
  not UTF-8 text; use TSV when in doubt).
* ``metadata.tsv``: one line per point. With ONE column there is no header; with
  several the first line names them. Tabs and line breaks inside values are replaced
  by spaces (they would split a row or turn a one-column file into a "header").
* ``sprite.png``: thumbnails in row-major order on a square grid of
  ceil(sqrt(N)) columns; the projector refuses sprites over 8,192 x 8,192 pixels.
  The thumbnail side is the largest that fits (at most ``max_thumbnail``); when even
  ``min_thumbnail`` pixels do not fit, every file gets a seeded subsample of points.
"""
from __future__ import annotations

import io
import math
import os
import warnings
from pathlib import Path
from typing import Mapping, Sequence

import numpy as np

from netgaze._util.atomic import atomic_write

CONFIG_NAME = "projector_config.pbtxt"
METADATA_NAME = "metadata.tsv"
SPRITE_NAME = "sprite.png"
SPRITE_LIMIT = 8192


def sprite_layout(n: int, max_thumbnail: int = 64, min_thumbnail: int = 8,
                  limit: int = SPRITE_LIMIT) -> tuple[int, int]:
    """(columns, thumbnail side) of the sprite for ``n`` images; raises if none fits."""
    cols = max(1, math.ceil(math.sqrt(n)))
    side = min(max_thumbnail, limit // cols)
    if side < min_thumbnail:
        raise ValueError(f"{n} thumbnails of at least {min_thumbnail} px do not fit in a "
                         f"{limit} x {limit} sprite (at most {max_sprite_points(min_thumbnail, limit)})")
    return cols, side


def max_sprite_points(min_thumbnail: int = 8, limit: int = SPRITE_LIMIT) -> int:
    """Most points a sprite can hold with thumbnails of ``min_thumbnail`` pixels."""
    return (limit // min_thumbnail) ** 2


def sprite_image(images: np.ndarray, side: int, cols: int) -> np.ndarray:
    """uint8 thumbnails [N, h, w, 3] -> one uint8 image [cols*side, cols*side, 3] (white fill)."""
    from PIL import Image

    images = np.asarray(images)
    if images.ndim != 4 or images.shape[-1] != 3 or images.dtype != np.uint8:
        raise ValueError(f"thumbnails must be uint8 [N, H, W, 3], got {images.dtype} {images.shape}")
    canvas = np.full((cols * side, cols * side, 3), 255, np.uint8)
    for i, image in enumerate(images):
        if image.shape[:2] != (side, side):
            image = np.asarray(Image.fromarray(image).resize((side, side), Image.BILINEAR))
        r, c = divmod(i, cols)
        canvas[r * side:(r + 1) * side, c * side:(c + 1) * side] = image
    return canvas


def export_projector(out_dir: str | os.PathLike, tensors: Mapping[str, np.ndarray] | np.ndarray, *,
                     labels: Sequence | None = None, predictions: Sequence | None = None,
                     split: Sequence | str | None = None, paths: Sequence[str] | None = None,
                     thumbnails: np.ndarray | None = None, tensor_format: str = "tsv",
                     max_thumbnail: int = 64, min_thumbnail: int = 8, random_state: int = 0,
                     group: str | None = None) -> Path:
    """Write (or add to) a TensorBoard projector folder and return the config path.

    Args:
        out_dir: the folder (created); point ``tensorboard --logdir`` at it.
        tensors: one [N, D] array, or ``{name: [N, D]}`` sharing points (e.g. the pooled
            features and their 3-D t-SNE); names become file names.
        labels: per-point values (class names preferred over ids).
        predictions: per-point values (class names preferred over ids).
        paths: per-point values (class names preferred over ids).
        split: per-point values or one string for all points ("test").
        thumbnails: uint8 [N, h, w, 3] images for the sprite (see ``features(...,
            thumbnail_size=)``); None writes no sprite.
        tensor_format: "tsv" or "bytes".
        max_thumbnail: sprite thumbnail side range in pixels.
        min_thumbnail: sprite thumbnail side range in pixels.
        random_state: seeds the subsample taken when the sprite cannot hold every point.
        group: a name for this export (e.g. ``"features.conv4-test"``): tensors are called
            ``GROUP/NAME`` and its files start with ``GROUP-``, so that it joins the folder's
            other embeddings instead of replacing them. None keeps plain names.

    Raises:
        ImportError: the ``tensorboard`` package is missing (``pip install netgaze[tensorboard]``).
    """
    projector_config = _tensorboard_api()
    if group is not None:
        group = _file_stem(group)
    if tensor_format not in ("tsv", "bytes"):
        raise ValueError(f"tensor_format must be 'tsv' or 'bytes', got {tensor_format!r}")
    arrays = {"features": tensors} if isinstance(tensors, np.ndarray) else dict(tensors)
    if not arrays:
        raise ValueError("no tensor to export")
    arrays = {name: np.asarray(a, dtype=np.float32) for name, a in arrays.items()}
    n = len(next(iter(arrays.values())))
    for name, array in arrays.items():
        if array.ndim != 2 or len(array) != n:
            raise ValueError(f"tensor {name!r} must be [N={n}, D], got {array.shape}")
        if not _safe_name(name):
            raise ValueError(f"tensor name {name!r} must be letters, digits, '-', '_' or '.'")
    if isinstance(split, str):
        split = [split] * n
    columns = {key: list(values) for key, values in (("label", labels), ("prediction", predictions),
                                                     ("split", split), ("path", paths)) if values is not None}
    for key, values in columns.items():
        if len(values) != n:
            raise ValueError(f"{key} has {len(values)} values for {n} points")

    keep = np.arange(n)
    if thumbnails is not None:
        if len(thumbnails) != n:
            raise ValueError(f"{len(thumbnails)} thumbnails for {n} points")
        most = max_sprite_points(min_thumbnail)
        if n > most:
            warnings.warn(f"{n} points do not fit in the projector's {SPRITE_LIMIT} x {SPRITE_LIMIT} sprite "
                          f"with thumbnails of {min_thumbnail} px; exporting a random subsample of {most} "
                          f"points (random_state={random_state}). Pass thumbnails=None to keep every point.",
                          stacklevel=2)
            keep = np.sort(np.random.default_rng(random_state).choice(n, most, replace=False))

    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    entries = []
    metadata_name = f"{group}-{METADATA_NAME}" if group else METADATA_NAME
    sprite_name = f"{group}-{SPRITE_NAME}" if group else SPRITE_NAME
    metadata_written = bool(columns)
    if metadata_written:
        atomic_write(out / metadata_name, metadata_tsv({k: [v[i] for i in keep] for k, v in columns.items()}))
    sprite_dims = None
    if thumbnails is not None:
        own = max(np.asarray(thumbnails).shape[1:3])
        cols, side = sprite_layout(len(keep), min(max_thumbnail, own), min(min_thumbnail, own))
        from PIL import Image
        buffer = io.BytesIO()
        Image.fromarray(sprite_image(np.asarray(thumbnails)[keep], side, cols)).save(buffer, format="PNG")
        atomic_write(out / sprite_name, buffer.getvalue())
        sprite_dims = (side, side)
    config_class, text_format = projector_config
    for name, array in arrays.items():
        array = array[keep]
        file_name = f"{group}-{name}.{tensor_format}" if group else f"{name}.{tensor_format}"
        atomic_write(out / file_name, tensor_tsv(array) if tensor_format == "tsv"
                      else array.astype("<f4").tobytes())
        entry = config_class().embeddings.add()
        entry.tensor_name = f"{group}/{name}" if group else name
        entry.tensor_path = file_name
        entry.tensor_shape.extend(int(d) for d in array.shape)
        if metadata_written:
            entry.metadata_path = metadata_name
        if sprite_dims:
            entry.sprite.image_path = sprite_name
            entry.sprite.single_image_dim.extend(int(d) for d in sprite_dims)
        entries.append(entry)
    path = out / CONFIG_NAME
    config = _merged_config(path, entries, config_class, text_format)
    atomic_write(path, text_format.MessageToString(config))
    write_event_file(out)
    return path


def _tensorboard_api():
    """TensorBoard's ``ProjectorConfig`` message class and protobuf's text format."""
    try:
        from google.protobuf import text_format
        from tensorboard.plugins.projector.projector_config_pb2 import ProjectorConfig
    except ImportError as err:
        raise ImportError("the TensorBoard projector export needs the tensorboard package "
                          f"(pip install 'netgaze[tensorboard]'): {err}") from None
    return ProjectorConfig, text_format


def _merged_config(path: Path, entries: list, config_class, text_format):
    """The folder's config with ``entries`` added; older entries stay unless this export rewrote their files."""
    config = config_class()
    if path.is_file():
        try:
            text_format.Parse(path.read_text(), config)
        except text_format.ParseError as err:
            warnings.warn(f"{path} could not be read ({err}); writing a new one with this export only",
                          stacklevel=3)
            config = config_class()
    names = {e.tensor_name for e in entries}
    files = {f for e in entries for f in (e.tensor_path, e.metadata_path, e.sprite.image_path) if f}
    kept = [e for e in config.embeddings if e.tensor_name not in names
            and not {e.tensor_path, e.metadata_path, e.sprite.image_path} & files
            and (path.parent / e.tensor_path).is_file()]
    merged = config_class()
    for entry in [*kept, *entries]:
        merged.embeddings.add().CopyFrom(entry)
    return merged


def write_event_file(folder: str | os.PathLike) -> Path:
    """An event file in ``folder`` (TensorBoard's own writer) unless one is there: makes it a run.

    TensorBoard lists as runs only folders with an event file, and its projector looks for
    ``projector_config.pbtxt`` in those runs (and in the log folder itself).
    """
    folder = Path(folder)
    existing = sorted(folder.glob("events.out.tfevents.*"))
    if existing:
        return existing[0]
    from tensorboard.summary.writer.event_file_writer import EventFileWriter

    writer = EventFileWriter(str(folder), filename_suffix=".netgaze-projector")
    writer.flush()
    writer.close()
    return sorted(folder.glob("events.out.tfevents.*"))[0]


def _file_stem(text: str) -> str:
    """A group name usable in file names: characters other than letters, digits, '-', '_', '.' become '_'."""
    cleaned = "".join(ch if ch.isalnum() or ch in "-_." else "_" for ch in str(text)).lstrip(".")
    return cleaned or "embedding"


def metadata_tsv(columns: Mapping[str, Sequence]) -> str:
    """The metadata file's text: a header only when there are several columns."""
    names = list(columns)
    rows = list(zip(*(columns[name] for name in names)))
    lines = ["\t".join(_clean(v) for v in row) for row in rows]
    if len(names) > 1:
        lines.insert(0, "\t".join(_clean(v) for v in names))
    return "\n".join(lines) + "\n"


def tensor_tsv(array: np.ndarray) -> str:
    """Tab-separated rows with enough digits to round-trip float32 exactly."""
    buffer = io.StringIO()
    np.savetxt(buffer, np.asarray(array, dtype=np.float32), fmt="%.9g", delimiter="\t")
    return buffer.getvalue()


def _clean(value: object) -> str:
    text = " ".join(str(value).replace("\t", " ").splitlines()).strip()
    return text if text else "-"


def _safe_name(name: str) -> bool:
    return bool(name) and all(ch.isalnum() or ch in "-_." for ch in name) and not name.startswith(".")



__all__ = ["export_projector", "write_event_file", "metadata_tsv", "tensor_tsv", "sprite_layout", "sprite_image",
           "max_sprite_points", "SPRITE_LIMIT"]

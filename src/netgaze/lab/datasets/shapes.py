"""``shapes``: a seeded synthetic set of RGB pictures with one object, its exact mask and its box.

Each picture: a background colour from a small palette with a smooth noise texture, small
distractors (dots, line segments, little squares) drawn in colours far from the object's, then
one object of the class (circle, square, triangle, star, cross, ring, diamond, hexagon, crescent,
heart) at a random place, scale, rotation and bright colour, lit by a gentle gradient. The object
is drawn last, so its mask is exactly its visible pixels and distractors never cover it.
"""
from __future__ import annotations

import functools
import math
from typing import Sequence

import numpy as np
import torch

from netgaze.lab.datasets.base import DatasetError, TensorImageDataset, channel_stats
from netgaze.lab.datasets.shapes_geometry import SHAPE_NAMES, SHAPE_TESTS
from netgaze.lab.datasets.shapes_marker import (check_marker_options, choose_marked, marker_box, marker_pixels,
                                                marker_region)

# Dark, muted background colours: objects (value >= 0.8, saturation <= 0.8) are brighter
# than them in the sum of the channels, so a linear filter tells object from background.
BACKGROUND_PALETTE = np.array([
    [0.315, 0.105, 0.105], [0.105, 0.285, 0.120], [0.105, 0.135, 0.330], [0.285, 0.270, 0.075],
    [0.247, 0.105, 0.300], [0.075, 0.247, 0.270], [0.300, 0.180, 0.075], [0.225, 0.225, 0.225],
    [0.075, 0.075, 0.210], [0.330, 0.105, 0.225]], dtype=np.float32)
SPLITS = {"train": 0, "test": 1}
DEFAULT_SIZES = {"train": 2000, "test": 500}
SPURIOUS_RATE = 0.9        # share of training pictures whose background id equals the class id
SHADING = 0.1              # object brightness varies by at most +-10% across the object
RADIUS_RANGE = (0.18, 0.34)  # object radius as a fraction of the picture size
TEXTURE_LIMIT = 0.12       # background texture stays within +-TEXTURE_LIMIT of the palette colour
OBJECT_SATURATION = (0.3, 0.8)
OBJECT_VALUE = (0.8, 1.0)
DISTRACTOR_SLOTS = 8       # distractor slots at clutter 1 (each filled with probability 3/4)
_CHUNK = 500


def _hsv_to_rgb(h: np.ndarray, s: np.ndarray, v: np.ndarray) -> np.ndarray:
    """Vectorised HSV -> RGB for arrays [N] with values in [0, 1]; returns [N, 3] float32."""
    k = np.stack([(5 + h * 6) % 6, (3 + h * 6) % 6, (1 + h * 6) % 6], axis=1)
    rgb = v[:, None] - v[:, None] * s[:, None] * np.clip(np.minimum(k, 4 - k), 0, 1)
    return rgb.astype(np.float32)


def _smooth_noise(rng: np.random.Generator, shape: tuple[int, ...], size: int, grid: int) -> np.ndarray:
    """Smooth noise [*shape, size, size] in [-1, 1]: a random grid blended by Gaussian weights."""
    coarse = rng.random((*shape, grid, grid), dtype=np.float32) * 2 - 1
    centres = (np.arange(size, dtype=np.float32) + 0.5) * grid / size - 0.5
    weights = np.exp(-0.5 * ((centres[:, None] - np.arange(grid, dtype=np.float32)[None]) / 0.6) ** 2)
    weights /= weights.sum(1, keepdims=True)
    fine = np.matmul(np.matmul(weights, coarse), weights.T)
    return fine / max(float(np.abs(fine).max()), 1e-6)


def _background(rng: np.random.Generator, backgrounds: np.ndarray, size: int, clutter: float) -> np.ndarray:
    """Palette colour plus a mostly-luminance texture, [N, H, W, 3] float32 (channels last)."""
    n = len(backgrounds)
    texture = (0.05 + 0.1 * clutter) * (_smooth_noise(rng, (n, 1), size, 6)
                                         + 0.35 * _smooth_noise(rng, (n, 3), size, 4))
    texture = np.ascontiguousarray(texture.transpose(0, 2, 3, 1))
    grain = rng.random((n, size, size, 1), dtype=np.float32)
    grain -= 0.5
    grain *= 2 * (0.015 + 0.03 * clutter)
    texture += grain
    np.clip(texture, -TEXTURE_LIMIT, TEXTURE_LIMIT, out=texture)
    texture += BACKGROUND_PALETTE[backgrounds][:, None, None, :]
    return texture


def _distractors(rng: np.random.Generator, object_hue: np.ndarray, size: int,
                 clutter: float) -> tuple[np.ndarray, np.ndarray]:
    """Dots, short lines and little squares in colours far from each object's hue.

    Returns a slot map int [N, H, W] (0 = none, k = distractor k, later slots on top) and the
    colour table float32 [N, slots + 1, 3]. Each distractor is computed in a small window
    around its centre, so the cost does not grow with the picture area.
    """
    n = len(object_hue)
    slots = int(round(DISTRACTOR_SLOTS * clutter))
    slot_map = np.zeros((n, size, size), dtype=np.int8)
    table = np.zeros((n, slots + 1, 3), dtype=np.float32)
    reach = int(math.ceil(0.125 * size + 1.5 * size / 64)) + 1
    offsets = np.arange(-reach, reach + 1)
    rows = np.arange(n)[:, None, None]
    for slot in range(1, slots + 1):
        active = rng.random(n) < 0.75
        kind = rng.integers(0, 3, size=n)[:, None, None]
        py, px = rng.uniform(0, size, size=(2, n)).astype(np.float32)
        extent = (rng.uniform(0.03, 0.065, size=n) * size).astype(np.float32)[:, None, None]
        angle = rng.uniform(0, math.pi, size=n).astype(np.float32)[:, None, None]
        half = (rng.uniform(0.04, 0.125, size=n) * size).astype(np.float32)[:, None, None]
        thickness = (rng.uniform(0.6, 1.2, size=n) * size / 64).astype(np.float32)[:, None, None]
        hue = (object_hue + rng.uniform(0.25, 0.75, size=n)) % 1.0
        table[:, slot] = _hsv_to_rgb(hue, rng.uniform(0.5, 1, size=n), rng.uniform(0.6, 1, size=n))
        ys = np.floor(py).astype(np.int64)[:, None] + offsets  # [n, S]
        xs = np.floor(px).astype(np.int64)[:, None] + offsets
        dy = (ys + 0.5 - py[:, None]).astype(np.float32)[:, :, None]
        dx = (xs + 0.5 - px[:, None]).astype(np.float32)[:, None, :]
        dot = dy * dy + dx * dx <= extent * extent
        little_square = np.maximum(np.abs(dy), np.abs(dx)) <= extent * 0.8
        along = np.clip(dx * np.cos(angle) + dy * np.sin(angle), -half, half)
        off_x, off_y = dx - along * np.cos(angle), dy - along * np.sin(angle)
        line = off_x * off_x + off_y * off_y <= thickness * thickness
        paint = np.where(kind == 0, dot, np.where(kind == 1, line, little_square))
        paint &= active[:, None, None]
        paint &= ((ys >= 0) & (ys < size))[:, :, None] & ((xs >= 0) & (xs < size))[:, None, :]
        i, a, b = np.nonzero(paint)
        slot_map[i, ys[i, a], xs[i, b]] = slot
    return slot_map, table


def _object_masks(labels: np.ndarray, classes: list[str], radius: np.ndarray, cy: np.ndarray,
                  cx: np.ndarray, theta: np.ndarray, size: int) -> np.ndarray:
    """Bool [N, H, W] masks, each computed in a window around its object (the object fits in it)."""
    n = len(labels)
    side = min(size, 2 * int(math.ceil(RADIUS_RANGE[1] * size)) + 4)
    top = np.clip(np.floor(cy - side / 2), 0, size - side).astype(np.int64)
    left = np.clip(np.floor(cx - side / 2), 0, size - side).astype(np.int64)
    grid = np.arange(side)
    dy = ((top[:, None] + grid + 0.5 - cy[:, None]) / radius[:, None]).astype(np.float32)[:, :, None]
    dx = ((left[:, None] + grid + 0.5 - cx[:, None]) / radius[:, None]).astype(np.float32)[:, None, :]
    cos, sin = np.cos(theta)[:, None, None], np.sin(theta)[:, None, None]
    u, v = dx * cos + dy * sin, -dx * sin + dy * cos
    window = np.zeros((n, side, side), dtype=bool)
    for label, name in enumerate(classes):
        pick = labels == label
        if pick.any():
            window[pick] = SHAPE_TESTS[name](u[pick], v[pick])
    masks = np.zeros((n, size, size), dtype=bool)
    i, a, b = np.nonzero(window)
    masks[i, top[i] + a, left[i] + b] = True
    return masks


def _generate_chunk(object_rng: np.random.Generator, clutter_rng: np.random.Generator,
                    labels: np.ndarray, backgrounds: np.ndarray, size: int, clutter: float,
                    classes: list[str], max_rotation: float) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    n = len(labels)
    # object parameters: the object stream only, so clutter and background never move the objects
    radius = (object_rng.uniform(*RADIUS_RANGE, size=n) * size).astype(np.float32)
    cy = object_rng.uniform(radius, size - radius).astype(np.float32)
    cx = object_rng.uniform(radius, size - radius).astype(np.float32)
    turn = math.radians(max_rotation)
    theta = object_rng.uniform(-turn, turn, size=n).astype(np.float32)
    hue = object_rng.random(n)
    colour = _hsv_to_rgb(hue, object_rng.uniform(*OBJECT_SATURATION, size=n), object_rng.uniform(*OBJECT_VALUE, size=n))
    light = object_rng.uniform(0, 2 * math.pi, size=n).astype(np.float32)

    images = _background(clutter_rng, backgrounds, size, clutter)
    slot_map, table = _distractors(clutter_rng, hue, size, clutter)
    i, y, x = np.nonzero(slot_map)
    images[i, y, x] = table[i, slot_map[i, y, x]]

    masks = _object_masks(labels, classes, radius, cy, cx, theta, size)
    i, y, x = np.nonzero(masks)
    shade = 1 + SHADING * ((x + 0.5 - cx[i]) * np.cos(light[i]) + (y + 0.5 - cy[i]) * np.sin(light[i])) / radius[i]
    images[i, y, x] = colour[i] * np.clip(shade, 1 - SHADING, 1 + SHADING)[:, None]
    pixels = np.clip(np.rint(images * 255), 0, 255).astype(np.uint8).transpose(0, 3, 1, 2)
    return np.ascontiguousarray(pixels), masks, colour


@functools.lru_cache(maxsize=8)
def _generate(split: str, n: int, seed: int, size: int, spurious: bool, num_classes: int,
              clutter: float, max_rotation: float, marker: tuple | None = None) -> dict[str, torch.Tensor]:
    """All tensors of one set, cached per arguments; ``mean``/``std`` are its channel statistics.

    ``marker`` is None or ``(classes, rate, test_rate, position, look)``; the marked pictures come
    from a fifth stream, so the other four (and every unmarked picture) stay as without a marker.
    """
    object_seq, background_seq, clutter_seq, label_seq, marker_seq = np.random.SeedSequence(
        [seed, SPLITS[split], size, num_classes]).spawn(5)
    object_rng = np.random.default_rng(object_seq)
    clutter_rng = np.random.default_rng(clutter_seq)
    labels = np.random.default_rng(label_seq).permutation(np.arange(n) % num_classes)
    background_rng = np.random.default_rng(background_seq)
    backgrounds = background_rng.integers(0, num_classes, size=n)
    if spurious and split == "train":
        follow = background_rng.random(n) < SPURIOUS_RATE
        other = (labels + background_rng.integers(1, num_classes, size=n)) % num_classes
        backgrounds = np.where(follow, labels, other)
    classes = SHAPE_NAMES[:num_classes]
    parts = [_generate_chunk(object_rng, clutter_rng, labels[i:i + _CHUNK], backgrounds[i:i + _CHUNK],
                             size, clutter, classes, max_rotation) for i in range(0, n, _CHUNK)]
    images = np.concatenate([p[0] for p in parts])
    masks = np.concatenate([p[1] for p in parts])
    colours = np.concatenate([p[2] for p in parts])
    marked = np.zeros(n, dtype=bool)
    if marker is not None:
        marker_classes, rate, test_rate, position, look = marker
        marked = choose_marked(np.random.default_rng(marker_seq), labels,
                               marker_classes if split == "train" else tuple(range(num_classes)),
                               rate if split == "train" else test_rate)
        y0, x0, y1, x1 = marker_box(size, position)
        images[marked, :, y0:y1, x0:x1] = marker_pixels(size, look)
        masks[marked] &= ~marker_region(size, position)  # the mark covers the object where they meet
    rows, cols = masks.any(2), masks.any(1)
    boxes = np.stack([rows.argmax(1), cols.argmax(1), size - rows[:, ::-1].argmax(1),
                      size - cols[:, ::-1].argmax(1)], axis=1)
    out = {"images": torch.from_numpy(images), "masks": torch.from_numpy(masks),
           "labels": torch.from_numpy(labels.astype(np.int64)),
           "backgrounds": torch.from_numpy(backgrounds.astype(np.int64)),
           "boxes": torch.from_numpy(boxes.astype(np.int64)), "colors": torch.from_numpy(colours),
           "markers": torch.from_numpy(marked)}
    out["mean"], out["std"] = (torch.tensor(v) for v in channel_stats(out["images"]))
    return out


class Shapes(TensorImageDataset):
    """The synthetic shapes set; see ``shapes`` for the parameters.

    Attributes (besides those of ``TensorImageDataset``):
        masks: bool tensor [N, H, W], the object's visible pixels.
        boxes: int64 tensor [N, 4], (y0, x0, y1, x1) end-exclusive, the masks' bounding boxes.
        backgrounds: int64 tensor [N], background palette id (the nuisance attribute).
        colors: float32 tensor [N, 3], the object's base colour before shading.
        markers: bool tensor [N], which pictures carry the marker (all False without one).
        marker_classes: the classes whose training pictures carry the marker (empty: no marker).
    Tensors are shared with an in-memory cache (same arguments, same tensors): do not modify them.
    """

    def __init__(self, split: str = "train", n: int | None = None, seed: int = 0, size: int = 64,
                 spurious: bool = False, num_classes: int = 5, clutter: float = 0.5,
                 max_rotation: float = 25.0, marker_classes: Sequence[int | str] = (), marker_rate: float = 0.8,
                 marker_test_rate: float = 0.5, marker_position: str = "top-left", marker_look: str = "checker"):
        if split not in SPLITS:
            raise DatasetError(f"shapes: split must be 'train' or 'test', got {split!r}")
        if not 2 <= num_classes <= len(SHAPE_NAMES):
            raise DatasetError(f"shapes: num_classes must be 2..{len(SHAPE_NAMES)}, got {num_classes}")
        if size < 16:
            raise DatasetError(f"shapes: size must be at least 16 pixels, got {size}")
        if not 0 <= clutter <= 1:
            raise DatasetError(f"shapes: clutter must be in [0, 1], got {clutter}")
        n = DEFAULT_SIZES[split] if n is None else int(n)
        if n < 1:
            raise DatasetError(f"shapes: n must be positive, got {n}")
        if not 0 <= max_rotation <= 180:
            raise DatasetError(f"shapes: max_rotation must be in [0, 180] degrees, got {max_rotation}")
        marker_classes = check_marker_options(marker_classes, float(marker_rate), float(marker_test_rate),
                                              int(num_classes), SHAPE_NAMES[:num_classes])
        marker = None
        if marker_classes:
            marker_box(int(size), marker_position), marker_pixels(int(size), marker_look)  # validate early
            marker = (marker_classes, float(marker_rate), float(marker_test_rate), marker_position, marker_look)
        data = _generate(split, n, int(seed), int(size), bool(spurious), int(num_classes), float(clutter),
                         float(max_rotation), marker)
        mean, std = data["mean"].tolist(), data["std"].tolist()
        super().__init__(data["images"], data["labels"], SHAPE_NAMES[:num_classes], name="shapes",
                         split=split, mean=mean, std=std)
        self.masks, self.boxes = data["masks"], data["boxes"]
        self.backgrounds, self.colors = data["backgrounds"], data["colors"]
        self.markers, self.marker_classes = data["markers"], list(marker_classes)
        self._marker_region = torch.from_numpy(marker_region(int(size), marker_position)) if marker else None
        self.options = {"n": n, "seed": int(seed), "size": int(size), "spurious": bool(spurious),
                        "num_classes": int(num_classes), "clutter": float(clutter),
                        "max_rotation": float(max_rotation)}
        follows = (self.backgrounds == self.labels).float().mean().item() if len(self.labels) else 0.0
        # what the report may say about the data without knowing the generator: measured, not configured
        self.facts = {"background_follows_class": round(follows, 4)} if spurious and split == "train" else {}
        if marker:
            self.options.update(marker_classes=list(marker_classes), marker_rate=float(marker_rate),
                                marker_test_rate=float(marker_test_rate), marker_position=marker_position,
                                marker_look=marker_look)

    def mask(self, index: int) -> torch.Tensor:
        """Bool [H, W]: the object's visible pixels in picture ``index``."""
        return self.masks[index]

    def has_marker(self, index: int) -> bool:
        """Whether picture ``index`` carries the marker."""
        return bool(self.markers[index])

    def marker_mask(self, index: int) -> torch.Tensor:
        """Bool [H, W]: the marker's pixels in picture ``index`` (all False when it has none)."""
        if self._marker_region is None or not self.markers[index]:
            return torch.zeros(self.size, dtype=torch.bool)
        return self._marker_region.clone()

    @property
    def marker_masks(self) -> torch.Tensor:
        """Bool [N, H, W]: every picture's ``marker_mask`` (built on each call)."""
        if self._marker_region is None:
            return torch.zeros((len(self), *self.size), dtype=torch.bool)
        return self.markers[:, None, None] & self._marker_region

    def box(self, index: int) -> tuple[int, int, int, int]:
        """(y0, x0, y1, x1), end-exclusive: the bounding box of ``mask(index)``."""
        return tuple(int(v) for v in self.boxes[index])

    def background(self, index: int) -> int:
        """The background palette id of picture ``index`` (equals the class id under ``spurious``)."""
        return int(self.backgrounds[index])


def shapes(split: str = "train", n: int | None = None, seed: int = 0, size: int = 64,
           spurious: bool = False, num_classes: int = 5, clutter: float = 0.5,
           max_rotation: float = 25.0, marker_classes: Sequence[int | str] = (), marker_rate: float = 0.8,
           marker_test_rate: float = 0.5, marker_position: str = "top-left", marker_look: str = "checker") -> Shapes:
    """The embedded synthetic shapes set: items ``(float32 [3, size, size] in [0, 1], label)``.

    The same arguments give the same pixels on every call (and the same tensors, from a cache).
    Train and test draw from different seeded streams. Objects, backgrounds and clutter come
    from separate streams, so changing ``clutter`` or ``spurious`` keeps every object in place.

    Args:
        split: "train" or "test".
        n: number of pictures; None = 2,000 for train, 500 for test.
        seed: the random seed of the whole set.
        size: picture height and width in pixels.
        spurious: in the TRAIN split only, the background colour id equals the class id 90% of
            the time (otherwise another id); the test split stays independent (chance, 1/K).
        num_classes: 2..10, the first K of circle, square, triangle, star, cross, ring, diamond,
            hexagon, crescent, heart.
        clutter: 0..1; the number of distractors (up to 8 slots, 3/4 filled on average) and
            the texture strength grow with it.
        max_rotation: objects turn by a uniform angle in [-max_rotation, max_rotation] degrees;
            180 = any angle. The default keeps shapes nearly upright (a cross stays a "+"),
            which a small CNN learns in a few epochs.
        marker_classes: classes (indices or names) whose TRAINING pictures carry a marker, a small
            fixed tag in a corner (a localized shortcut, like a watermark); empty = no marker anywhere.
        marker_rate: share of those classes' training pictures that carry it (exactly rounded
            per class).
        marker_test_rate: share of EVERY class's test pictures that carry it, so its effect can
            be measured.
        marker_position: "top-left", "top-right", "bottom-left" or "bottom-right".
        marker_look: "checker" (a 3x3 black-and-white checkerboard) or "solid" (a white square);
            9x9 pixels at size 64 (``shapes_marker.marker_side``). The mark is drawn last: ``mask``
            excludes it, ``marker_mask`` is exactly its pixels.

    Without a marker the pictures are exactly those of earlier versions; with one, only the
    marked pictures' mark pixels (and their masks where the mark covers the object) change.
    """
    return Shapes(split, n=n, seed=seed, size=size, spurious=spurious, num_classes=num_classes,
                  clutter=clutter, max_rotation=max_rotation, marker_classes=marker_classes,
                  marker_rate=marker_rate, marker_test_rate=marker_test_rate, marker_position=marker_position,
                  marker_look=marker_look)

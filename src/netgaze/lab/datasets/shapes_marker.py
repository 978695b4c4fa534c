"""The ``shapes`` marker: a small fixed tag stamped in a corner, a localized shortcut to find.

Like the copyright tag in the corner of PASCAL VOC's horse pictures (Lapuschkin et al. 2019),
the mark is the same pixels in the same place on every picture that carries it, so a model
can learn it instead of the object. ``marker_region`` gives its pixels, ``marker_pixels`` its
colours, ``choose_marked`` which pictures carry it.
"""
from __future__ import annotations

import numpy as np

from netgaze.lab.datasets.base import DatasetError

MARKER_POSITIONS = ("top-left", "top-right", "bottom-left", "bottom-right")
MARKER_LOOKS = ("checker", "solid")


def marker_side(size: int) -> int:
    """Side of the mark in pixels: 3 cells of ~4.5% of the picture each (9 px at 64 px, 6 px at 32)."""
    return 3 * max(2, round(0.045 * size))


def marker_box(size: int, position: str) -> tuple[int, int, int, int]:
    """(y0, x0, y1, x1), end-exclusive, of the mark in a ``size`` x ``size`` picture."""
    if position not in MARKER_POSITIONS:
        raise DatasetError(f"shapes: marker_position must be one of {', '.join(MARKER_POSITIONS)}, got {position!r}")
    side, margin = marker_side(size), max(1, round(0.03 * size))
    y0 = margin if position.startswith("top") else size - margin - side
    x0 = margin if position.endswith("left") else size - margin - side
    return y0, x0, y0 + side, x0 + side


def marker_region(size: int, position: str) -> np.ndarray:
    """Bool [size, size]: the pixels the mark covers."""
    y0, x0, y1, x1 = marker_box(size, position)
    region = np.zeros((size, size), dtype=bool)
    region[y0:y1, x0:x1] = True
    return region


def marker_pixels(size: int, look: str) -> np.ndarray:
    """The mark's colours, uint8 [3, side, side]: "checker" is a 3x3 black-and-white checkerboard
    with white corners, "solid" a white square."""
    if look not in MARKER_LOOKS:
        raise DatasetError(f"shapes: marker_look must be one of {', '.join(MARKER_LOOKS)}, got {look!r}")
    side = marker_side(size)
    cell = np.arange(side) // (side // 3)
    white = (cell[:, None] + cell[None, :]) % 2 == 0 if look == "checker" else np.ones((side, side), dtype=bool)
    return np.repeat(np.where(white, 255, 0).astype(np.uint8)[None], 3, axis=0)


def choose_marked(rng: np.random.Generator, labels: np.ndarray, classes: tuple[int, ...], rate: float) -> np.ndarray:
    """Bool [N]: exactly ``round(rate * count)`` pictures of each class of ``classes``, drawn by ``rng``."""
    marked = np.zeros(len(labels), dtype=bool)
    for c in classes:
        members = np.flatnonzero(labels == c)
        chosen = rng.permutation(members)[:int(round(rate * len(members)))]
        marked[chosen] = True
    return marked


def check_marker_options(classes, rate: float, test_rate: float, num_classes: int, names: list[str]) -> tuple[int, ...]:
    """The marker classes as sorted class indices; class names are accepted too."""
    if isinstance(classes, (int, str)):
        classes = (classes,)
    found = []
    for c in classes:
        if isinstance(c, str) and not c.strip().lstrip("-").isdigit():
            if c not in names:
                raise DatasetError(f"shapes: marker class {c!r} is not one of {', '.join(names)}")
            found.append(names.index(c))
            continue
        index = int(c)
        if not 0 <= index < num_classes:
            raise DatasetError(f"shapes: marker class {index} is outside 0..{num_classes - 1}")
        found.append(index)
    for name, value in (("marker_rate", rate), ("marker_test_rate", test_rate)):
        if not 0 <= value <= 1:
            raise DatasetError(f"shapes: {name} must be in [0, 1], got {value}")
    return tuple(sorted(set(found)))

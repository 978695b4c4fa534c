"""The object classes of the ``shapes`` set as inside-tests in an object's own coordinates.

Every test takes ``u, v`` (arrays of any shape, the pixel positions rotated into the object's
frame and divided by its radius, so the object fits in the unit disc) and returns a bool array.
"""
from __future__ import annotations

import math
from typing import Callable

import numpy as np


def _regular_polygon(u: np.ndarray, v: np.ndarray, sides: int, radius: float) -> np.ndarray:
    """Regular polygon with a flat bottom edge (v grows downwards, as image rows do)."""
    apothem = radius * math.cos(math.pi / sides)
    inside = np.ones(u.shape, dtype=bool)
    for k in range(sides):
        angle = math.pi / 2 + 2 * math.pi * k / sides  # outward normal of edge k; k = 0 points down
        inside &= u * math.cos(angle) + v * math.sin(angle) <= apothem
    return inside


def circle(u: np.ndarray, v: np.ndarray) -> np.ndarray:
    return u * u + v * v <= 0.9 ** 2


def square(u: np.ndarray, v: np.ndarray) -> np.ndarray:
    return np.maximum(np.abs(u), np.abs(v)) <= 0.68


def triangle(u: np.ndarray, v: np.ndarray) -> np.ndarray:
    return _regular_polygon(u, v, 3, 0.98)  # points up


def star(u: np.ndarray, v: np.ndarray, points: int = 5, outer: float = 1.0,
         inner: float = 0.42) -> np.ndarray:
    """A star polygon with straight edges: fold the angle into one half-spike and test one edge."""
    sector = 2 * math.pi / points
    angle = np.arctan2(u, -v)  # 0 points up
    folded = np.abs(np.mod(angle + sector / 2, sector) - sector / 2)
    rho = np.sqrt(u * u + v * v)
    x, y = rho * np.cos(folded), rho * np.sin(folded)
    tip = (outer, 0.0)
    valley = (inner * math.cos(sector / 2), inner * math.sin(sector / 2))
    edge = (valley[0] - tip[0], valley[1] - tip[1])
    # the origin lies on the side where the cross product is positive
    return edge[0] * (y - tip[1]) - edge[1] * (x - tip[0]) >= 0


def cross(u: np.ndarray, v: np.ndarray) -> np.ndarray:
    au, av = np.abs(u), np.abs(v)
    return ((au <= 0.27) & (av <= 0.95)) | ((av <= 0.27) & (au <= 0.95))


def ring(u: np.ndarray, v: np.ndarray) -> np.ndarray:
    r2 = u * u + v * v
    return (r2 <= 0.92 ** 2) & (r2 >= 0.55 ** 2)


def diamond(u: np.ndarray, v: np.ndarray) -> np.ndarray:
    return np.abs(u) / 0.58 + np.abs(v) / 0.98 <= 1


def hexagon(u: np.ndarray, v: np.ndarray) -> np.ndarray:
    return _regular_polygon(u, v, 6, 0.92)


def crescent(u: np.ndarray, v: np.ndarray) -> np.ndarray:
    return (u * u + v * v <= 0.92 ** 2) & ((u - 0.42) ** 2 + v * v >= 0.72 ** 2)


def heart(u: np.ndarray, v: np.ndarray) -> np.ndarray:
    x, y = u / 0.63, -(v + 0.1) / 0.63
    a = x * x + y * y - 1
    return a * a * a - x * x * y * y * y <= 0


SHAPE_TESTS: dict[str, Callable[[np.ndarray, np.ndarray], np.ndarray]] = {
    "circle": circle, "square": square, "triangle": triangle, "star": star, "cross": cross,
    "ring": ring, "diamond": diamond, "hexagon": hexagon, "crescent": crescent, "heart": heart,
}
SHAPE_NAMES: list[str] = list(SHAPE_TESTS)

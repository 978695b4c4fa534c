"""Matplotlib figures that draw every string as plain text.

Run names, class names and folder names come from the user; matplotlib would read a ``$``
in them as mathematics (``"$x$ run"``) and fail on an unbalanced one. Every function of
netgaze that draws a figure is wrapped in :func:`plain_text`, which turns mathtext and
TeX off while the figure is built and saved, without changing the user's own rcParams.
"""
from __future__ import annotations

import functools
from typing import Any, Callable, TypeVar

F = TypeVar("F", bound=Callable[..., Any])

PLAIN_TEXT = {"text.parse_math": False, "text.usetex": False}


def plain_text(function: F) -> F:
    """Decorator: run ``function`` with mathtext and TeX off (``matplotlib.rc_context``)."""

    @functools.wraps(function)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        import matplotlib

        with matplotlib.rc_context(PLAIN_TEXT):
            return function(*args, **kwargs)

    return wrapper  # type: ignore[return-value]

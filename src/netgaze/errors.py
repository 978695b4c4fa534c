"""The one base class for user mistakes, and warnings that point at the user's code.

Every layer of netgaze raises a subclass of :class:`UserError` for a mistake in what the
user asked or gave (a layer name, a file, a run folder, an argument). The command line maps
exactly this class to one line on stderr and exit status 2; anything else is a bug and may
show a traceback. It subclasses ``ValueError`` so that API callers catching ``ValueError``
keep working. Messages are one line and name the file they are about.
"""
from __future__ import annotations

import os
import sys
import warnings


class UserError(ValueError):
    """A mistake in the user's input, reported in one line."""


class ArgumentError(UserError):
    """An argument value a function cannot use (out of range, unknown option, wrong shape)."""


class ArgumentTypeError(UserError, TypeError):
    """An argument of a type a function does not take (also a ``TypeError``)."""


class LayerError(UserError):
    """A layer reference that does not name a module of the model."""


class RunError(UserError):
    """A run folder that is missing, incomplete, or does not match what was asked."""


class DeviceError(UserError):
    """A device that does not exist here (``cuda`` without a GPU, ``cuda:3`` on a 2-GPU machine)."""


def printable(text: str) -> str:
    """``text`` safe for a terminal: control characters (escape sequences that would retitle the
    terminal or move the cursor, bidirectional overrides) written as ``\\x1b``-style escapes.

    Class names, labels and file names come from the user's files; printed raw, ``\\x1b]0;...``
    would change the terminal's title. Tabs and newlines are kept.
    """
    return "".join(ch if ch in "\t\n" or (ch.isprintable() and not _is_bidi_control(ch))
                   else ch.encode("unicode_escape").decode("ascii") for ch in str(text))


def _is_bidi_control(ch: str) -> bool:
    return "\u202a" <= ch <= "\u202e" or "\u2066" <= ch <= "\u2069"


def one_line(text: str) -> str:
    """``text`` with its lines joined by ``"; "`` (for messages quoted from other libraries), printable."""
    return printable("; ".join(part.strip() for part in str(text).splitlines() if part.strip()))


def state_dict_mismatch(err: Exception) -> str:
    """One line out of ``load_state_dict``'s multi-line error: what is missing, extra or misshapen."""
    text = str(err)
    parts = []
    markers = (("missing", "Missing key(s) in state_dict:"), ("unexpected", "Unexpected key(s) in state_dict:"))
    for label, marker in markers:
        if marker in text:
            keys = text.split(marker, 1)[1].split(".\n", 1)[0].split("\n", 1)[0]
            names = [k.strip().strip('"') for k in keys.split(",") if k.strip()]
            parts.append(f"{len(names)} {label} tensor(s) such as {names[0] if names else '?'}")
    if "size mismatch" in text:
        first = text.split("size mismatch for ", 1)[1].split("\n", 1)[0]
        parts.append(f"size mismatch for {first.strip().rstrip('.')}")
    return "; ".join(parts) or one_line(text)[:200]


_PACKAGE = os.path.dirname(os.path.abspath(__file__))


def stack_level() -> int:
    """The ``stacklevel`` of the first frame outside netgaze (so warnings name the caller's file)."""
    frame, level = sys._getframe(1), 1
    while frame is not None and os.path.abspath(frame.f_code.co_filename).startswith(_PACKAGE + os.sep):
        frame, level = frame.f_back, level + 1
    return level


def warn_user(message: str, category: type[Warning] = UserWarning) -> None:
    """``warnings.warn`` pointing at the user's code, not at netgaze's internals."""
    warnings.warn(message, category, stacklevel=stack_level())

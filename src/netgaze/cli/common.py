"""Helpers shared by the subcommands."""
from __future__ import annotations

from pathlib import Path


class UserError(Exception):
    """A mistake in the command line or its inputs: reported in one line, exit status 2."""


def existing_file(path: str) -> Path:
    p = Path(path)
    if not p.is_file():
        raise UserError(f"no such file: {path}")
    return p


def existing_dir(path: str) -> Path:
    p = Path(path)
    if not p.is_dir():
        raise UserError(f"no such folder: {path}")
    return p

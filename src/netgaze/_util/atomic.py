"""Atomic file writes: a temporary file beside the target, fsync, then ``os.replace``.

A reader (or a process restarted after a crash) sees the old file or the new one, never
half of one. Leftover temporary files carry ``TMP_MARK`` in their name, so they can be
found and removed.
"""
from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

TMP_MARK = ".tmp-"


def temporary_name(path: Path) -> Path:
    return path.with_name(f".{path.name}{TMP_MARK}{os.getpid()}")


def atomic_write(path: str | os.PathLike, data: bytes | str) -> Path:
    """Write bytes (or text as UTF-8) to ``path`` atomically; returns the path."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    payload = data.encode("utf-8") if isinstance(data, str) else data
    tmp = temporary_name(path)
    try:
        with open(tmp, "wb") as handle:
            handle.write(payload)
            handle.flush()
            os.fsync(handle.fileno())
        os.replace(tmp, path)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise
    _fsync_dir(path.parent)
    return path


def atomic_write_bytes(path: str | os.PathLike, data: bytes) -> Path:
    return atomic_write(path, data)


def atomic_write_text(path: str | os.PathLike, text: str) -> Path:
    return atomic_write(path, text)


def atomic_write_json(path: str | os.PathLike, obj: Any) -> Path:
    return atomic_write(path, json.dumps(obj, indent=2) + "\n")


def _fsync_dir(folder: Path) -> None:
    try:
        fd = os.open(folder, os.O_RDONLY)
    except OSError:  # platforms without directory file descriptors
        return
    try:
        os.fsync(fd)
    except OSError:
        pass
    finally:
        os.close(fd)

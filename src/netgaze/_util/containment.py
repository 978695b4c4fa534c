"""The containment rule for files read from a run folder (the report's and the explorer's)."""
from __future__ import annotations

from pathlib import Path


def inside_run(run: Path, path: Path) -> Path | None:
    """``path`` with symbolic links resolved when that is a regular file inside ``run``, else None.

    The run folder itself is resolved too (so a run reached through a link still works);
    anything that leaves it (absolute paths, ``..``, links pointing out, ``/proc`` files)
    or is not a regular file (a FIFO would block the reader) gives None.
    """
    try:
        root = run.resolve(strict=True)
        resolved = path.resolve(strict=True)
    except (OSError, RuntimeError):  # missing, or a loop of links
        return None
    if resolved != root and not resolved.is_relative_to(root):
        return None
    return resolved if resolved.is_file() else None

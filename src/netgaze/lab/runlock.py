"""One process owns a run folder: an OS-level lock on ``RUN/.netgaze.lock``.

The lock is ``fcntl.flock`` (POSIX; ``filelock`` elsewhere): the operating system releases it
when its process ends, even on SIGKILL, so a crashed training never leaves a stale lock. The
owner writes its PID into the file, so a refused start can say who holds the folder. The
file is opened without truncation and a refused start writes nothing: it changes neither
the lock file nor anything else in the folder.
"""
from __future__ import annotations

import os
from pathlib import Path

from netgaze.errors import UserError

LOCK_NAME = ".netgaze.lock"

try:
    import fcntl
except ImportError:  # pragma: no cover - Windows
    fcntl = None


class RunBusyError(UserError):
    """Another process owns the run folder."""


class RunLock:
    """Exclusive ownership of a run folder while training writes into it.

    Use as a context manager or with ``acquire()`` / ``release()``. ``acquire`` never waits:
    when another process holds the folder it raises ``RunBusyError`` naming that PID.

    Args:
        folder: the run folder (created when missing, so that the lock has a place).
    """

    def __init__(self, folder: str | os.PathLike):
        self.folder = Path(folder)
        self.path = self.folder / LOCK_NAME
        self._fd: int | None = None
        self._fallback = None

    @property
    def held(self) -> bool:
        return self._fd is not None or self._fallback is not None

    def acquire(self) -> "RunLock":
        if self.held:
            return self
        self.folder.mkdir(parents=True, exist_ok=True)
        if fcntl is None:  # pragma: no cover - Windows
            return self._acquire_filelock()
        fd = os.open(self.path, os.O_RDWR | os.O_CREAT, 0o644)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except OSError:
            owner = _read_pid(fd)
            os.close(fd)
            raise RunBusyError(self._busy_message(owner)) from None
        os.ftruncate(fd, 0)
        os.pwrite(fd, f"{os.getpid()}\n".encode(), 0)
        self._fd = fd
        return self

    def release(self) -> None:
        """Give the folder up (the lock file stays: removing it would race a new owner)."""
        if self._fd is not None:
            fd, self._fd = self._fd, None
            os.close(fd)  # closing the descriptor drops the flock
        if self._fallback is not None:  # pragma: no cover - Windows
            self._fallback.release()
            self._fallback = None

    def owner(self) -> int | None:
        """The PID written by the current (or last) owner, if any."""
        try:
            text = self.path.read_text().strip()
        except OSError:
            return None
        return int(text) if text.isdigit() else None

    def _busy_message(self, owner: int | None) -> str:
        who = f"process {owner}" if owner else "another process"
        return (f"{self.folder} is in use by {who} (lock {self.path.name}); wait for it to finish "
                "or choose another output folder")

    def _acquire_filelock(self) -> "RunLock":  # pragma: no cover - Windows
        from filelock import FileLock, Timeout

        lock = FileLock(str(self.path) + ".filelock", timeout=0)
        try:
            lock.acquire()
        except Timeout:
            raise RunBusyError(self._busy_message(self.owner())) from None
        self.path.write_text(f"{os.getpid()}\n")
        self._fallback = lock
        return self

    def __enter__(self) -> "RunLock":
        return self.acquire()

    def __exit__(self, *exc) -> None:
        self.release()


def _read_pid(fd: int) -> int | None:
    try:
        text = os.pread(fd, 32, 0).decode("ascii", "replace").strip()
    except OSError:
        return None
    return int(text) if text.isdigit() else None

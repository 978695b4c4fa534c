"""Which task a run was trained for, and the one-line refusal when a command needs another."""
from __future__ import annotations

from typing import Sequence

from netgaze.errors import UserError

TASK_HINTS = {"reconstruct": "for a VAE run use `netgaze study latent` or `netgaze study area`",
              "segment": "for a segmentation run use `netgaze study area`",
              "classify": "`netgaze explain` and `netgaze study layers|models|epochs` take classifier runs"}


class WrongTaskError(UserError):
    """A run of another task than the command needs (``study layers`` on a VAE run)."""


def require_task(run, tasks: Sequence[str], what: str):
    """``run`` itself if its task (``run.json``'s ``task``, default classify) is one of ``tasks``."""
    task = str((getattr(run, "config", None) or {}).get("task", "classify"))
    if task not in tasks:
        hint = TASK_HINTS.get(task, "")
        raise WrongTaskError(f"{what} needs a {' or '.join(tasks)} run; {run.path} is a {task} run"
                             + (f" ({hint})" if hint else ""))
    return run

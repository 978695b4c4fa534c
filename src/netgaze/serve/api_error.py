"""Errors of the explorer's HTTP API: each is a user mistake with an HTTP status."""
from __future__ import annotations

from netgaze.errors import UserError


class ApiError(UserError):
    """A bad request: answered with ``status`` and a one-line JSON error."""

    status = 400

    def __init__(self, message: str, status: int | None = None):
        super().__init__(message)
        if status is not None:
            self.status = status


class NotFound(ApiError):
    """A run, picture or upload ID the server does not know."""

    status = 404


def one_line(message: object) -> str:
    """An error message as the API answers it: one line, at most 500 characters."""
    return " ".join(str(message).split())[:500]


def status_and_message(err: BaseException) -> tuple[int, str]:
    """How a failed request is answered: a user's mistake (a bad request, a value a method
    refuses, a layer a model lacks) is a 4xx with its message; anything else a 500 that names
    the error's type only."""
    from netgaze.core.recorder import RecorderError

    if isinstance(err, ApiError):
        return err.status, str(err)
    if isinstance(err, (ValueError, RecorderError)):
        return 400, str(err).splitlines()[0] if str(err) else type(err).__name__
    return 500, f"internal error ({type(err).__name__}); the server keeps serving"

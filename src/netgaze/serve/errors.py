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

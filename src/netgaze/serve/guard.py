"""What every request passes through: the token check, safe headers, and the error handlers
that turn any failure into a one-line JSON answer (a 500 names the error's type only)."""
from __future__ import annotations

import hmac
import logging

from starlette.exceptions import HTTPException
from starlette.requests import Request
from starlette.responses import Response

from netgaze.serve.batching import QueueFull
from netgaze.serve.api_error import ApiError, status_and_message
from netgaze.serve.web import error_response

TOKEN_COOKIE = "netgaze_token"
CSP = ("default-src 'self'; img-src 'self' data: blob:; style-src 'self'; script-src 'self'; "
       "connect-src 'self'; object-src 'none'; base-uri 'none'; frame-ancestors 'none'")
log = logging.getLogger("netgaze.serve")


async def api_error(request: Request, err: ApiError) -> Response:
    return error_response(*status_and_message(err))


async def user_error(request: Request, err: Exception) -> Response:
    return error_response(*status_and_message(err))


async def queue_full(request: Request, err: QueueFull) -> Response:
    return error_response(503, f"the server is busy: {err}", headers={"Retry-After": "1"})


async def http_error(request: Request, err: HTTPException) -> Response:
    return error_response(err.status_code, err.detail or "error", headers=getattr(err, "headers", None))


async def server_error(request: Request, err: Exception) -> Response:
    log.exception("unexpected error on %s", request.url.path)
    return error_response(*status_and_message(err))


class Guard:
    """ASGI middleware: the token check (when set) and safe headers on every response."""

    def __init__(self, app, token: str | None):
        self.app, self.token = app, token

    async def __call__(self, scope, receive, send):
        if scope["type"] != "http":
            return await self.app(scope, receive, send)
        if self.token and not self._allowed(scope):
            response = error_response(401, "this server needs its token: open the URL it printed, "
                                           "or send Authorization: Bearer TOKEN")
            return await response(scope, receive, send)

        async def send_with_headers(message):
            if message["type"] == "http.response.start":
                headers = list(message.get("headers", []))
                headers += [(b"x-content-type-options", b"nosniff"), (b"referrer-policy", b"no-referrer"),
                            (b"content-security-policy", CSP.encode()), (b"x-frame-options", b"DENY")]
                message = dict(message, headers=headers)
            await send(message)
        return await self.app(scope, receive, send_with_headers)

    def _allowed(self, scope) -> bool:
        request = Request(scope)
        given = [request.query_params.get("token", ""), request.cookies.get(TOKEN_COOKIE, "")]
        auth = request.headers.get("authorization", "")
        if auth.lower().startswith("bearer "):
            given.append(auth[7:].strip())
        return any(g and hmac.compare_digest(g.encode(), self.token.encode()) for g in given)

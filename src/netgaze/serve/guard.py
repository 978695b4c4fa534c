"""What every request passes through: the Host and Origin rules, the token check, safe headers,
and the error handlers that turn any failure into a one-line JSON answer (a 500 names the
error's type only).

The Host rule stops DNS rebinding: a page of ``attacker.example`` whose name is made to resolve
to 127.0.0.1 sends ``Host: attacker.example``, so a server without a token answers only the
loopback names (``127.0.0.1``, ``localhost``, ``::1``) and the names it was told
(``Settings.allowed_hosts``, ``--allow-host``). The Origin rule stops cross-site requests
(a form or ``fetch`` from another site, which would carry the token's cookie): a POST whose
``Origin`` is not this server's own origin, or that the browser marks ``Sec-Fetch-Site:
cross-site``, is refused. Clients that are not browsers send no ``Origin`` and pass.
"""
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
LOOPBACK_NAMES = ("127.0.0.1", "localhost", "::1")
SAFE_METHODS = ("GET", "HEAD", "OPTIONS")
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


def host_name(host_header: str) -> str:
    """The name of a ``Host`` header without its port: ``[::1]:8765`` -> ``::1``, ``a.b:80`` -> ``a.b``."""
    value = host_header.strip().lower()
    if value.startswith("["):
        return value[1:value.find("]")] if "]" in value else value
    return value.rsplit(":", 1)[0] if value.count(":") == 1 else value


class Guard:
    """ASGI middleware: the Host and Origin rules, the token check (when set) and safe headers."""

    def __init__(self, app, token: str | None, allowed_hosts: tuple[str, ...] = ()):
        self.app, self.token = app, token
        self.hosts = {h.lower() for h in (*LOOPBACK_NAMES, *allowed_hosts)}

    async def __call__(self, scope, receive, send):
        if scope["type"] != "http":
            return await self.app(scope, receive, send)
        refusal = self._refusal(Request(scope))
        if refusal:
            return await error_response(403, refusal)(scope, receive, send)
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

    def _refusal(self, request: Request) -> str | None:
        """Why this request is refused by the Host or Origin rule, or None."""
        host = request.headers.get("host", "")
        if not self.token and host_name(host) not in self.hosts:
            return (f"this server answers requests for {', '.join(sorted(self.hosts))}, not for the host "
                    f"{host[:80]!r} (DNS rebinding protection; netgaze serve --allow-host NAME adds a name)")
        if request.method in SAFE_METHODS:
            return None
        origin = request.headers.get("origin")
        if origin is not None and origin.lower().rstrip("/") not in (f"http://{host.lower()}", f"https://{host.lower()}"):
            return f"a request from another site ({origin[:80]}) is refused"
        if origin is None and request.headers.get("sec-fetch-site", "") in ("cross-site", "same-site"):
            return "a request from another site is refused"
        return None

    def _allowed(self, scope) -> bool:
        request = Request(scope)
        given = [request.query_params.get("token", ""), request.cookies.get(TOKEN_COOKIE, "")]
        auth = request.headers.get("authorization", "")
        if auth.lower().startswith("bearer "):
            given.append(auth[7:].strip())
        return any(g and hmac.compare_digest(g.encode(), self.token.encode()) for g in given)

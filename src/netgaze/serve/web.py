"""Request and response plumbing shared by the explorer's routes: bodies read under a size
limit, one-line JSON errors, the explorer behind a request."""
from __future__ import annotations

import json
import math
from typing import Any

from starlette.requests import Request
from starlette.responses import JSONResponse, Response

from netgaze.serve.api_error import ApiError, one_line

MAX_JSON_BYTES = 64 * 1024


class JSONAnswer(JSONResponse):
    """A JSON answer in which NaN and infinities are ``null``: a diverged training's history holds
    them, and they are data to show as gaps, not a reason to fail the request."""

    def render(self, content: Any) -> bytes:
        return json.dumps(finite(content), ensure_ascii=False, allow_nan=False, separators=(",", ":")).encode()


def finite(value: Any) -> Any:
    """``value`` with every non-finite float replaced by None (dicts, lists and tuples walked)."""
    if isinstance(value, float):
        return value if math.isfinite(value) else None
    if isinstance(value, dict):
        return {k: finite(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [finite(v) for v in value]
    return value


def error_response(status: int, message: str, headers: dict[str, str] | None = None) -> JSONResponse:
    return JSONAnswer({"error": one_line(message)}, status_code=status, headers=headers)


async def read_json(request: Request) -> Any:
    return parse_json(await read_body(request, MAX_JSON_BYTES))


def parse_json(body: bytes) -> Any:
    try:
        return json.loads(body)
    except (json.JSONDecodeError, UnicodeDecodeError) as err:
        raise ApiError(f"the body is not JSON: {err.msg if hasattr(err, 'msg') else err}") from None
    except RecursionError:
        raise ApiError("the body is JSON nested too deep") from None
    except ValueError as err:  # an integer past Python's int-string limit, ...
        raise ApiError(f"the body is not usable JSON: {str(err).splitlines()[0][:120]}") from None


async def read_body(request: Request, limit: int) -> bytes:
    declared = request.headers.get("content-length")
    if declared is not None and declared.isdigit() and int(declared) > limit:
        raise ApiError(f"the body has {declared} bytes; the limit is {limit}", status=413)
    chunks, size = [], 0
    async for chunk in request.stream():
        size += len(chunk)
        if size > limit:
            raise ApiError(f"the body is over the limit of {limit} bytes", status=413)
        chunks.append(chunk)
    return b"".join(chunks)


def explorer_of(request: Request) -> Any:
    """The ``Explorer`` behind the app (``app.state.explorer``)."""
    return request.app.state.explorer


def png_response(data: bytes) -> Response:
    return Response(data, media_type="image/png", headers={"Cache-Control": "private, max-age=3600"})

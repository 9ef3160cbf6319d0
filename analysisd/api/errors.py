"""API errors as Kubernetes-style Status bodies, and the middleware that guarantees them.

Every failure leaves as JSON naming what was wrong (and, where there is one, the
field); an unexpected exception becomes a 500 whose body says nothing internal.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Sequence
from typing import Any

import structlog
from aiohttp import web

log = structlog.get_logger(__name__)

_REASONS = {
    400: "BadRequest",
    401: "Unauthorized",
    403: "Forbidden",
    404: "NotFound",
    405: "MethodNotAllowed",
    409: "AlreadyExists",
    413: "RequestEntityTooLarge",
    415: "UnsupportedMediaType",
    422: "Invalid",
    429: "TooManyRequests",
    503: "ServiceUnavailable",
}


# (field, message) of each problem, for details.causes (Kubernetes' StatusCause).
Causes = Sequence[tuple[str, str]]


class ApiError(Exception):
    def __init__(
        self,
        status: int,
        message: str,
        *,
        field: str | None = None,
        reason: str | None = None,
        causes: Causes = (),
    ) -> None:
        super().__init__(message)
        self.status = status
        self.message = message
        self.field = field
        self.reason = reason or _REASONS.get(status, "Error")
        self.causes = causes


def status_body(
    code: int,
    message: str,
    *,
    reason: str | None = None,
    field: str | None = None,
    causes: Causes = (),
) -> dict[str, Any]:
    body: dict[str, Any] = {
        "apiVersion": "v1",
        "kind": "Status",
        "status": "Failure" if code >= 400 else "Success",
        "code": code,
        "reason": reason or _REASONS.get(code, "Error" if code >= 400 else "OK"),
        "message": message,
    }
    if field:
        body["details"] = {"field": field}
    if causes:
        # Every problem, not only the first: a client fixes them all in one round.
        body.setdefault("details", {})["causes"] = [
            {"reason": "FieldValueInvalid", "field": where, "message": text}
            for where, text in causes
        ]
    return body


def error_response(exc: ApiError) -> web.Response:
    return web.json_response(
        status_body(exc.status, exc.message, reason=exc.reason, field=exc.field, causes=exc.causes),
        status=exc.status,
    )


Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]


@web.middleware
async def error_middleware(request: web.Request, handler: Handler) -> web.StreamResponse:
    try:
        return await handler(request)
    except ApiError as exc:
        return error_response(exc)
    except web.HTTPRequestEntityTooLarge as exc:
        return error_response(ApiError(413, f"request body too large: {exc.text}", field="body"))
    except web.HTTPException as exc:
        if exc.status < 400:
            raise
        message = exc.reason if exc.status != 404 else f"no route for {request.path}"
        return error_response(ApiError(exc.status, message))
    except Exception:
        # The traceback goes to the log with the request; the client learns nothing internal.
        log.exception("unhandled error", method=request.method, path=request.path)
        return web.json_response(
            status_body(500, "internal error; see the daemon log", reason="InternalError"),
            status=500,
        )

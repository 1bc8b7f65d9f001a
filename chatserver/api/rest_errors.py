"""The REST error shape, `{"error", "code", "details"?}` (docs/README.md,
Errors), and what each failure answers in it."""

from __future__ import annotations

import json
import logging
from typing import Any

from aiohttp import web

from chatserver.errors import ApiError, InternalError, ServiceUnavailable, Unauthorized, of_status
from chatserver.logsafe import printable
from chatserver.outage import report

log = logging.getLogger(__name__)


def error_body(error: ApiError) -> dict:
    body: dict[str, Any] = {"error": error.message, "code": error.code}
    if error.details is not None:
        body["details"] = error.details
    return body


def error_response(error: ApiError) -> web.Response:
    return web.Response(status=error.status, text=json.dumps(error_body(error)), content_type="application/json",
                        headers=error.headers)


def error_answer(request: web.Request, exc: Exception) -> web.Response | None:
    """What a request that raised `exc` answers, in the one error shape; None
    for what must pass on as raised: a client gone away (mid-body,
    mid-handshake: nobody to answer), and aiohttp's own answers that are no
    errors or are JSON already."""
    if isinstance(exc, ApiError):
        return error_response(exc)
    if isinstance(exc, ConnectionError):
        return None
    if isinstance(exc, web.HTTPException):
        if exc.status < 400 or exc.content_type == "application/json":
            return None
        error = of_status(exc.status, None if exc.status == Unauthorized.status else exc.reason)
        error.headers = {k: v for k, v in exc.headers.items() if k.lower() == "allow"}
        return error_response(error)
    if report(request.app, exc):
        return error_response(ServiceUnavailable())
    log.error("unhandled error in %s %s", printable(request.method), printable(request.path), exc_info=exc)
    return error_response(InternalError())

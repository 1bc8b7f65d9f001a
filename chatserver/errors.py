"""The one error shape of the API, and what each failure answers in it."""

from __future__ import annotations

import json
import logging
from typing import Any

from aiohttp import web

from chatserver.logsafe import printable
from chatserver.outage import RETRY_AFTER, report

log = logging.getLogger(__name__)

_CODES = {
    400: "bad_request",
    401: "unauthorized",
    403: "forbidden",
    404: "not_found",
    405: "method_not_allowed",
    409: "conflict",
    413: "payload_too_large",
    415: "unsupported_media_type",
    422: "validation_error",
    429: "rate_limited",
    500: "internal_error",
    503: "service_unavailable",
}


class ApiError(Exception):
    """Raised by handlers and domain code; rendered as `{"error", "code"}`."""

    def __init__(self, status: int, message: str, code: str | None = None, details: list | None = None,
                 headers: dict | None = None):
        super().__init__(message)
        self.status = status
        self.message = message
        self.code = code or _CODES.get(status, "error")
        self.details = details
        self.headers = headers


def not_found(what: str = "resource") -> ApiError:
    return ApiError(404, f"{what} not found", "not_found")


def error_body(status: int, message: str, code: str | None = None, details: list | None = None) -> dict:
    body: dict[str, Any] = {"error": message, "code": code or _CODES.get(status, "error")}
    if details is not None:
        body["details"] = details
    return body


def error_response(status: int, message: str, code: str | None = None,
                   details: list | None = None, headers: dict | None = None) -> web.Response:
    return web.Response(
        status=status,
        text=json.dumps(error_body(status, message, code, details)),
        content_type="application/json",
        headers=headers,
    )


def error_answer(request: web.Request, exc: Exception) -> web.Response | None:
    """What a request that raised `exc` answers, in the one error shape; None
    for what must pass on as raised: a client gone away (mid-body,
    mid-handshake: nobody to answer), and aiohttp's own answers that are no
    errors or are JSON already."""
    if isinstance(exc, ApiError):
        return error_response(exc.status, exc.message, exc.code, exc.details, exc.headers)
    if isinstance(exc, ConnectionError):
        return None
    if isinstance(exc, web.HTTPException):
        if exc.status < 400 or exc.content_type == "application/json":
            return None
        message = exc.reason if exc.status != 404 else "not found"
        if exc.status == 401:
            message = "invalid or expired token"
        headers = {k: v for k, v in exc.headers.items() if k.lower() == "allow"}
        return error_response(exc.status, message, headers=headers)
    if report(request.app, exc):
        return unavailable_response()
    log.error("unhandled error in %s %s", printable(request.method), printable(request.path), exc_info=exc)
    return error_response(500, "internal server error")


def unavailable_response() -> web.Response:
    return error_response(503, "a server this service needs is unreachable; try again shortly",
                          "service_unavailable", headers={"Retry-After": str(RETRY_AFTER)})

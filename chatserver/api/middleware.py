"""Access logging with metrics, and CORS."""

from __future__ import annotations

import logging
import time
from typing import TypeGuard

from aiohttp import hdrs, web

from chatserver.errors import error_response
from chatserver.metrics import Metrics

access_log = logging.getLogger("chatserver.access")
# what the access log records for a client that left before its answer (nginx's 499)
CLIENT_CLOSED = 499


def access_middleware(metrics: Metrics):
    """Per request: one log line (method, path without the query, which may hold
    a token, status, ms) and the request metrics."""

    @web.middleware
    async def middleware(request: web.Request, handler):
        started = time.perf_counter()
        status = 500
        try:
            response = await handler(request)
            status = response.status
            return response
        except web.HTTPException as exc:
            status = exc.status
            raise
        except ConnectionError:
            status = CLIENT_CLOSED
            raise
        finally:
            elapsed = time.perf_counter() - started
            access_log.info("method=%s path=%s status=%s ms=%.1f", request.method, request.path, status,
                            elapsed * 1000)
            metrics.observe(request, status, elapsed)

    return middleware


def cors_middleware(allowed_origins: tuple[str, ...]):
    allow_any = "*" in allowed_origins

    def allowed(origin: str | None) -> TypeGuard[str]:
        return bool(origin) and (allow_any or origin in allowed_origins)

    @web.middleware
    async def middleware(request: web.Request, handler):
        origin = request.headers.get(hdrs.ORIGIN)
        if request.method == hdrs.METH_OPTIONS and hdrs.ACCESS_CONTROL_REQUEST_METHOD in request.headers:
            if not allowed(origin):
                return error_response(403, "origin not allowed", "cors_forbidden")
            response = web.Response(status=204)
            response.headers[hdrs.ACCESS_CONTROL_ALLOW_METHODS] = "GET, POST, PATCH, DELETE, OPTIONS"
            response.headers[hdrs.ACCESS_CONTROL_ALLOW_HEADERS] = request.headers.get(
                hdrs.ACCESS_CONTROL_REQUEST_HEADERS, "Authorization, Content-Type")
            response.headers[hdrs.ACCESS_CONTROL_MAX_AGE] = "600"
        else:
            response = await handler(request)
        if allowed(origin) and not response.prepared:
            response.headers[hdrs.ACCESS_CONTROL_ALLOW_ORIGIN] = origin
            response.headers[hdrs.VARY] = "Origin"
            response.headers[hdrs.ACCESS_CONTROL_EXPOSE_HEADERS] = "Content-Disposition"
        return response

    return middleware

"""The one middleware: every request's way around its handler.

In order: a CORS preflight is answered; a guarded route's credential is
checked (authentication.py); the handler runs; a failure becomes the one error shape
(rest_errors.py); an allowed origin gets its CORS headers; one access line and
the request metrics are recorded.

These are steps of one coroutine, not four nested middlewares, because an
open WebSocket holds every frame of its middleware chain for its whole life
(four nested ones cost 0.8 KiB more per idle socket, bench/sockets.py), and
each layer costs every request an await.
"""

from __future__ import annotations

import logging
import time
from typing import TypeGuard

from aiohttp import hdrs, web

from chatserver.api.authentication import authenticate_request
from chatserver.api.openai_shapes import from_rest, is_openai_path
from chatserver.api.rest_errors import error_answer, error_response
from chatserver.errors import CorsForbidden
from chatserver.logsafe import printable
from chatserver.metrics import Metrics

access_log = logging.getLogger("chatserver.access")
# what the access log records for a client that left before its answer (nginx's 499)
CLIENT_CLOSED = 499


class Cors:
    def __init__(self, allowed_origins: tuple[str, ...]):
        self.allowed_origins = allowed_origins
        self.allow_any = "*" in allowed_origins

    def allowed(self, origin: str | None) -> TypeGuard[str]:
        return bool(origin) and (self.allow_any or origin in self.allowed_origins)

    def preflight(self, request: web.Request) -> web.Response | None:
        """The answer to a preflight request; None for any other request."""
        if request.method != hdrs.METH_OPTIONS or hdrs.ACCESS_CONTROL_REQUEST_METHOD not in request.headers:
            return None
        if not self.allowed(request.headers.get(hdrs.ORIGIN)):
            return error_response(CorsForbidden())
        response = web.Response(status=204)
        response.headers[hdrs.ACCESS_CONTROL_ALLOW_METHODS] = "GET, POST, PATCH, DELETE, OPTIONS"
        response.headers[hdrs.ACCESS_CONTROL_ALLOW_HEADERS] = request.headers.get(
            hdrs.ACCESS_CONTROL_REQUEST_HEADERS, "Authorization, Content-Type")
        response.headers[hdrs.ACCESS_CONTROL_MAX_AGE] = "600"
        return response

    def add_headers(self, request: web.Request, response: web.StreamResponse) -> None:
        origin = request.headers.get(hdrs.ORIGIN)
        if self.allowed(origin) and not response.prepared:
            response.headers[hdrs.ACCESS_CONTROL_ALLOW_ORIGIN] = origin
            response.headers[hdrs.VARY] = "Origin"
            response.headers[hdrs.ACCESS_CONTROL_EXPOSE_HEADERS] = "Content-Disposition"


def request_middleware(metrics: Metrics, allowed_origins: tuple[str, ...]):
    cors = Cors(allowed_origins)

    @web.middleware
    async def middleware(request: web.Request, handler) -> web.StreamResponse:
        started = time.perf_counter()
        status = 500
        try:
            response = cors.preflight(request)
            if response is None:
                try:
                    await authenticate_request(request)
                    response = await handler(request)
                except Exception as exc:
                    answer = error_answer(request, exc)
                    if answer is None:
                        raise
                    response = from_rest(answer) if is_openai_path(request.path) else answer
            cors.add_headers(request, response)
            status = response.status
            return response
        except web.HTTPException as exc:
            status = exc.status
            raise
        except ConnectionError:
            status = CLIENT_CLOSED
            raise
        finally:
            # the path without the query, which may hold a token
            elapsed = time.perf_counter() - started
            if access_log.isEnabledFor(logging.INFO):  # escaping the line costs a callback more than its metrics
                access_log.info("method=%s path=%s status=%s ms=%.1f", printable(request.method),
                                printable(request.path), status, elapsed * 1000)
            metrics.observe(request, status, elapsed)

    return middleware

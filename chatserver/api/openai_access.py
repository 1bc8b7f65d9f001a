"""What every /v1 handler shares: the user of the request's API key,
OpenAI's error shape for every failure, the headers of a stream, and
watching that the client is still there while an answer is awaited.
"""

from __future__ import annotations

import asyncio
import functools
import uuid
from collections.abc import Awaitable, Callable
from typing import TypeVar

from aiohttp import web

from chatserver.api import openai_shapes as shapes
from chatserver.api.authentication import authenticate, user_of_credential
from chatserver.api.endpoint import current_user_id
from chatserver.errors import ApiError, InvalidApiKey, RequestTooLarge

# how often a waiting call checks that its client is still there
DISCONNECT_POLL_SECONDS = 0.25
SSE_HEADERS = {"Content-Type": "text/event-stream", "Cache-Control": "no-cache", "X-Accel-Buffering": "no"}

T = TypeVar("T")


def openai_errors(handler: Callable[[web.Request], Awaitable[web.StreamResponse]]):
    """Answer every failure of a /v1 handler in OpenAI's error shape."""

    @functools.wraps(handler)
    async def wrapped(request: web.Request) -> web.StreamResponse:
        try:
            return await handler(request)
        except ApiError as exc:
            return shapes.error_response(exc)
        except web.HTTPRequestEntityTooLarge:
            return shapes.error_response(RequestTooLarge())

    return wrapped


async def api_user(request: web.Request) -> uuid.UUID:
    """The user of the request's API key (or access token), else 401."""
    scheme, _, value = request.headers.get("Authorization", "").strip().partition(" ")
    value = value.strip()
    if scheme.lower() != "bearer" or not value:
        raise InvalidApiKey()
    try:
        await authenticate(request, await user_of_credential(request, value))
    except ApiError as exc:
        raise InvalidApiKey(f"Incorrect API key provided: {exc.message}") from None
    return current_user_id(request)


async def while_connected(request: web.Request, work: Awaitable[T],
                          revoked: asyncio.Future | None = None) -> tuple[bool, T | None]:
    """Run `work` while the client is there: (True, its result), or (False,
    None) once the client left or its credential was `revoked` (the work is
    then cancelled; so is it when the handler is)."""
    task = asyncio.ensure_future(work)
    watched = {task} if revoked is None else {task, revoked}
    try:
        while not task.done():
            await asyncio.wait(watched, timeout=DISCONNECT_POLL_SECONDS, return_when=asyncio.FIRST_COMPLETED)
            transport = request.transport
            gone = transport is None or transport.is_closing() or (revoked is not None and revoked.done())
            if not task.done() and gone:
                task.cancel()
                await asyncio.gather(task, return_exceptions=True)
    except asyncio.CancelledError:
        task.cancel()
        raise
    try:
        return True, task.result()
    except (asyncio.CancelledError, ConnectionError):
        return False, None

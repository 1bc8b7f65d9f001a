"""Server-sent events: `GET /api/messages/{message_id}/stream` (docs/sse.md), for clients that cannot hold a WebSocket.

It consumes `Followers.follow` like the WebSocket does. Each event's `id:` is
the number of characters (Unicode code points) of the answer delivered up to
and including it, so a client that reconnects with `Last-Event-ID: N` gets
exactly the text after character N and its copy stays exact. A credential
that stops being good (live/revocation.py) ends the stream with an `error`
event of code `unauthorized`.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
from collections.abc import AsyncGenerator

from aiohttp import web

from chatserver import appkeys
from chatserver.api.access import owned_message
from chatserver.api.authentication import credential_of
from chatserver.api.endpoint import endpoint
from chatserver.errors import InvalidLastEventId, Unauthorized
from chatserver.live.follow import FOLLOWERS
from chatserver.live.revocation import REVOCATIONS, settle
from chatserver.live.wire import End, Item, Status, Step, Text

KEEPALIVE = b": keep-alive\n\n"


def _event(name: str, event_id: int, data: dict) -> bytes:
    return f"event: {name}\nid: {event_id}\ndata: {json.dumps(data, separators=(',', ':'))}\n\n".encode()


def _resume_from(request: web.Request) -> int | None:
    raw = request.headers.get("Last-Event-ID")
    if raw is None or raw.strip() == "":
        return None
    if not raw.strip().isdigit():
        raise InvalidLastEventId()
    return int(raw)


def _events(item: Item, delivered: int, resume: int | None) -> tuple[list[bytes], int]:
    """The bytes to send for one item of `follow`, and the characters of the
    answer delivered after it. The SSE stream carries the answer's text and
    tool steps: reasoning and passing statuses are the WebSocket's."""
    if isinstance(item, Status) or (isinstance(item, Text) and item.kind == "reasoning"):
        return [], delivered
    if isinstance(item, Step):
        return [_event("tool_call", delivered, {"step": item.step})], delivered
    if isinstance(item, Text):
        start, delivered = delivered, delivered + len(item.text)
        if resume is None:
            content: dict = {"content": item.text}
            if item.steps:
                content["steps"] = list(item.steps)
            return [_event(item.kind, delivered, content)], delivered
        # a resumed stream gets the steps so far as one tool_call event each
        steps = [_event("tool_call", start, {"step": step}) for step in item.steps]
        if delivered <= resume:
            return steps, delivered
        return steps + [_event("chunk", delivered, {"content": item.text[max(0, resume - start):]})], delivered
    if item.status == "complete":
        data: dict = {"sources": item.sources}
        if item.content is not None:
            # the service's authoritative text differs from what it streamed
            data["content"] = item.content
        return [_event("complete", delivered, data)], delivered
    error = {"error": item.error or f"the answer was {item.status}", "status": item.status}
    return [_event("error", delivered, error)], delivered


class _Sent:
    """What one stream has written: the characters of the answer, and when it last wrote."""

    def __init__(self, response: web.StreamResponse, resume: int | None):
        self.response, self.resume = response, resume
        self.delivered = 0
        self.last = asyncio.get_running_loop().time()

    async def write(self, data: bytes) -> None:
        self.last = asyncio.get_running_loop().time()
        await self.response.write(data)

    async def pump(self, items: AsyncGenerator[Item, None]) -> None:
        """Every item of `follow` as events, up to the end."""
        async for item in items:
            chunks, self.delivered = _events(item, self.delivered, self.resume)
            for chunk in chunks:
                await self.write(chunk)
            if isinstance(item, End):
                return


@endpoint("Follow an answer as server-sent events (content, chunk..., then complete or error)",
          tag="messages",
          description="Resume with `Last-Event-ID: N` (a character count): only the text after "
                      "character N follows. Comments keep an idle connection open.",
          responses={200: "text/event-stream", 404: "no such message", 422: "malformed Last-Event-ID"})
async def stream_message(request: web.Request) -> web.StreamResponse:
    row = await owned_message(request)
    resume = _resume_from(request)
    keepalive = request.app[appkeys.SETTINGS].SSE_KEEPALIVE_SECONDS
    response = web.StreamResponse(headers={"Content-Type": "text/event-stream; charset=utf-8",
                                           "Cache-Control": "no-cache", "X-Accel-Buffering": "no"})
    await response.prepare(request)
    items = request.app[FOLLOWERS].follow(row["id"])
    sent = _Sent(response, resume)
    # one task writes the answer; this one only wakes for a keep-alive or a revocation
    pump = asyncio.ensure_future(sent.pump(items))
    revoked: asyncio.Future[str] = asyncio.get_running_loop().create_future()
    revocations = request.app[REVOCATIONS]
    hold = revocations.hold(credential_of(request), settle, revoked)
    loop = asyncio.get_running_loop()
    watched: set[asyncio.Future] = {pump, revoked}
    try:
        while not pump.done():
            await asyncio.wait(watched, timeout=max(0.0, sent.last + keepalive - loop.time()),
                               return_when=asyncio.FIRST_COMPLETED)
            if pump.done():
                pump.result()  # the client gone (ConnectionError), or an outage
            elif revoked.done():
                pump.cancel()
                await asyncio.gather(pump, return_exceptions=True)
                await response.write(_event("error", sent.delivered, {"error": f"{revoked.result()}; sign in again",
                                                                      "code": Unauthorized.code}))
            elif loop.time() - sent.last >= keepalive:
                await sent.write(KEEPALIVE)
    except ConnectionError:
        pass  # the client went away: stop following, the answer goes on
    finally:
        revocations.release(hold)
        if not pump.done():
            pump.cancel()
            await asyncio.gather(pump, return_exceptions=True)
        await items.aclose()
    with contextlib.suppress(ConnectionError):
        await response.write_eof()
    return response

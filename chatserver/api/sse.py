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
    delivered = 0
    items = request.app[FOLLOWERS].follow(row["id"])
    step: asyncio.Future | None = None
    revoked: asyncio.Future[str] = asyncio.get_running_loop().create_future()
    revocations = request.app[REVOCATIONS]
    hold = revocations.hold(credential_of(request), settle, revoked)
    try:
        while True:
            step = asyncio.ensure_future(items.__anext__())
            while not (await asyncio.wait({step, revoked}, timeout=keepalive,
                                          return_when=asyncio.FIRST_COMPLETED))[0]:
                await response.write(KEEPALIVE)
            if revoked.done():
                await response.write(_event("error", delivered, {"error": f"{revoked.result()}; sign in again",
                                                                 "code": Unauthorized.code}))
                break
            item = step.result()
            chunks, delivered = _events(item, delivered, resume)
            for chunk in chunks:
                await response.write(chunk)
            if isinstance(item, End):
                break
    except ConnectionError:
        pass  # the client went away: stop following, the answer goes on
    finally:
        revocations.release(hold)
        if step is not None and not step.done():
            step.cancel()
            await asyncio.gather(step, return_exceptions=True)
        await items.aclose()
    with contextlib.suppress(ConnectionError):
        await response.write_eof()
    return response

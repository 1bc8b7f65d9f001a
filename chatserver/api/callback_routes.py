"""The AI service's way back in: `POST /api/ai/callback/{message_id}?token=...`.

The token (ai/callback.py) is worth nothing for another message. It stops
working with the stream: once the answer is finished, cancelled or timed
out (STREAM_TIMEOUT_SECONDS without activity) every callback gets `409`.
"""

from __future__ import annotations

import asyncio
import hmac
import logging
import time
import uuid
from typing import Annotated, Literal

import orjson
import pydantic
import redis.asyncio as redis_async
from aiohttp import web

from chatserver import appkeys
from chatserver.ai.callback import callback_token
from chatserver.api.endpoint import BadJson, endpoint, parse_json, read_query, validate
from chatserver.api.message_shapes import Source
from chatserver.data import messages
from chatserver.errors import InvalidCallbackToken, InvalidJson, MessageFinished, NotFound, SeqTooFar
from chatserver.live.answers import ANSWERS
from chatserver.live.wire import Event

MAX_EVENTS = 1000
# a callback's events are applied within this many seconds of being sent, or not at all ...
APPLY_SECONDS = 2.0
# ... and the callback waits this long for Redis before it answers 503 (Redis unreachable)
GIVE_UP_SECONDS = 3.0
_CLOCK_WARNED = False
# message id -> chat id never changes, so callbacks need no database read after the first
_CHAT_OF: dict[uuid.UUID, uuid.UUID] = {}
# (message id as the path has it, secret) -> the message id and the query string
# of its callback URL (`token=...`), for the same reason
_CALLERS: dict[tuple[str, str], tuple[uuid.UUID, bytes]] = {}
log = logging.getLogger(__name__)
_CHAT_OF_LIMIT = 10_000


class _Event(pydantic.BaseModel):
    model_config = pydantic.ConfigDict(extra="ignore", strict=True)
    seq: Annotated[int, pydantic.Field(ge=0)] | None = None


class ChunkEvent(_Event):
    type: Literal["chunk"]
    content: str


class CompleteEvent(_Event):
    type: Literal["complete"]
    sources: list[Source] = []
    content: str | None = None


class ErrorEvent(_Event):
    type: Literal["error"]
    error: Annotated[str, pydantic.StringConstraints(max_length=2000)] = "the AI service reported an error"


AnyEvent = Annotated[ChunkEvent | CompleteEvent | ErrorEvent, pydantic.Field(discriminator="type")]


class CallbackBody(pydantic.RootModel):
    """One event, or a JSON array of events applied in order."""
    root: AnyEvent | Annotated[list[AnyEvent], pydantic.Field(min_length=1, max_length=MAX_EVENTS)]


class CallbackQuery(pydantic.BaseModel):
    model_config = pydantic.ConfigDict(extra="ignore")
    token: str = ""


class CallbackOk(pydantic.BaseModel):
    ok: bool = True


_OK = CallbackOk().model_dump_json().encode()


def _stream_event(event: ChunkEvent | CompleteEvent | ErrorEvent) -> Event:
    if isinstance(event, ChunkEvent):
        return Event.chunk(event.content, event.seq)
    if isinstance(event, CompleteEvent):
        return Event.end("complete", sources=[s.model_dump(mode="json", exclude_none=True) for s in event.sources],
                         content=event.content, seq=event.seq)
    return Event.end("failed", error=event.error, seq=event.seq)


async def _chat_of(app: web.Application, message_id: uuid.UUID) -> uuid.UUID:
    chat_id = _CHAT_OF.get(message_id)
    if chat_id is None:
        chat_id = await messages.chat_of_answer(app[appkeys.DB], message_id)
        if chat_id is None:
            raise NotFound("message")
        if len(_CHAT_OF) >= _CHAT_OF_LIMIT:
            _CHAT_OF.clear()
        _CHAT_OF[message_id] = chat_id
    return chat_id


def _caller(app: web.Application, path_id: str) -> tuple[uuid.UUID, bytes]:
    """The message id in the path, and the query string of the message's
    callback URL (`token=...`), worked out once per message (an HMAC under a
    derived key costs a callback more than its JSON); 404 for a path that
    names no message id."""
    settings = app[appkeys.SETTINGS]
    # by secret too: processes (and tests' apps) of other secrets may share this module
    key = (path_id, settings.JWT_SECRET)
    known = _CALLERS.get(key)
    if known is None:
        try:
            message_id = uuid.UUID(path_id)
        except ValueError:
            raise NotFound("message") from None
        if len(_CALLERS) >= _CHAT_OF_LIMIT:
            _CALLERS.clear()
        known = _CALLERS[key] = message_id, f"token={callback_token(settings, message_id)}".encode()
    return known


def _check_token(request: web.Request, expected_query: bytes) -> None:
    """403 unless the `token` parameter is the message's. The service uses
    the callback URL as given, so its query string is compared whole first;
    any other (more parameters, escapes) is read parameter by parameter."""
    query = request.rel_url.raw_query_string
    if query.isascii() and hmac.compare_digest(query.encode(), expected_query):
        return
    token = read_query(request, CallbackQuery).token
    if not hmac.compare_digest(token.encode(), expected_query.removeprefix(b"token=")):
        raise InvalidCallbackToken()


def _plain_chunks(raw: bytes) -> list[Event] | None:
    """The events of a body of chunk events with no other fields (what a
    model's stream sends), read without the models: the same events they
    would give. None for any other body, which the models read and, when it
    is malformed, answer with their error."""
    try:
        data = orjson.loads(raw)
    except orjson.JSONDecodeError:
        return None
    items = data if type(data) is list else [data]
    if not 0 < len(items) <= MAX_EVENTS:
        return None
    events = []
    for item in items:
        # a large integer is a float to orjson, and a float is no seq: the models decide
        if type(item) is not dict or item.get("type") != "chunk" or len(item) != 2 + ("seq" in item):
            return None
        content, seq = item.get("content"), item.get("seq")
        if type(content) is not str or "\x00" in content or not (seq is None or type(seq) is int and seq >= 0):
            return None
        events.append(Event.chunk(content, seq))
    return events


def _read_events(raw: bytes) -> list[Event]:
    events = _plain_chunks(raw)
    if events is not None:
        return events
    try:
        data = parse_json(raw)
    except BadJson as exc:
        raise InvalidJson(f"request body: {exc}") from None
    body = validate(CallbackBody, data).root
    return [_stream_event(e) for e in (body if isinstance(body, list) else [body])]


def _finished() -> MessageFinished:
    return MessageFinished("the message is already finished or cancelled; stop sending")


async def _apply_in_time(app: web.Application, message_id: uuid.UUID, chat_id: uuid.UUID,
                         events: list[Event]) -> str:
    """Apply the events, or fail with Redis unreachable (503) having applied
    nothing: a 503 tells the service to send them again, and events without
    `seq` sent twice would be applied twice. So the script applies nothing
    past APPLY_SECONDS after sending, and the callback gives up only after
    GIVE_UP_SECONDS: a call that a stalled Redis runs later (redis-py gives
    up after its socket timeout, 5 s) finds itself late and does nothing."""
    started = time.monotonic()
    try:
        async with asyncio.timeout(GIVE_UP_SECONDS):
            outcome, _ = await app[ANSWERS].apply(message_id, chat_id, events,
                                                  deadline=time.time() + APPLY_SECONDS)
    except TimeoutError:
        raise redis_async.TimeoutError(f"Redis did not answer a callback within {GIVE_UP_SECONDS} s") from None
    if outcome != "late":
        return outcome
    if time.monotonic() - started < APPLY_SECONDS:
        # late at once: Redis's clock is ahead of ours, and no deadline can be kept
        _clock_warning(time.monotonic() - started)
        outcome, _ = await app[ANSWERS].apply(message_id, chat_id, events)
        return outcome
    raise redis_async.TimeoutError(f"Redis ran a callback's events more than {APPLY_SECONDS} s after they were sent")


def _clock_warning(elapsed: float) -> None:
    global _CLOCK_WARNED
    if not _CLOCK_WARNED:
        _CLOCK_WARNED = True
        log.warning("Redis's clock is ahead of this server's by more than %.1f s (a callback was late after "
                    "%.3f s): callbacks answered 503 may still be applied; synchronise the clocks", APPLY_SECONDS,
                    elapsed)


@endpoint("AI service callback: stream events for one answer", tag="ai", public=True, body=CallbackBody,
          query=CallbackQuery,
          description="One event or a JSON array of events. `seq` (0, 1, 2, ...) makes delivery "
                      "idempotent and ordered; `complete.content` is the authoritative final text. "
                      "Authenticated by the `token` query parameter of the callback URL.",
          responses={200: CallbackOk, 403: "wrong token for this message", 404: "unknown message",
                     409: "the message is already finished or cancelled", 422: "malformed event",
                     503: "Redis unreachable: nothing was applied; send the same events again after "
                          "Retry-After seconds"})
async def ai_callback(request: web.Request) -> web.Response:
    app = request.app
    message_id, expected_query = _caller(app, request.match_info["message_id"])
    _check_token(request, expected_query)
    events = _read_events(await request.read())
    chat_id = await _chat_of(app, message_id)
    outcome = await _apply_in_time(app, message_id, chat_id, events)
    if outcome == "too_far":
        raise SeqTooFar()
    if outcome == "finished":
        raise _finished()
    if outcome == "missing":
        if not await messages.exists(app[appkeys.DB], message_id):
            _CHAT_OF.pop(message_id, None)
            raise NotFound("message")
        raise _finished()
    return web.Response(body=_OK, content_type="application/json", charset="utf-8")

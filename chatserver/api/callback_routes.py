"""The AI service's way back in: `POST /api/ai/callback/{message_id}?token=...`.

The token (ai/callback.py) is worth nothing for another message. It stops
working with the stream: once the answer is finished, cancelled or timed
out (STREAM_TIMEOUT_SECONDS without activity) every callback gets `409`.
"""

from __future__ import annotations

import hmac
import uuid
from typing import Annotated, Literal

import pydantic
from aiohttp import web

from chatserver import appkeys
from chatserver.ai.callback import callback_token
from chatserver.api.endpoint import BadJson, endpoint, json_response, parse_json, read_query, validate
from chatserver.api.message_routes import Source
from chatserver.data import messages
from chatserver.errors import ApiError, not_found
from chatserver.live.stream import STREAMS, Event

MAX_EVENTS = 1000
# message id -> chat id never changes, so callbacks need no database read after the first
_CHAT_OF: dict[uuid.UUID, uuid.UUID] = {}
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
            raise not_found("message")
        if len(_CHAT_OF) >= _CHAT_OF_LIMIT:
            _CHAT_OF.clear()
        _CHAT_OF[message_id] = chat_id
    return chat_id


def _finished() -> ApiError:
    return ApiError(409, "the message is already finished or cancelled; stop sending", "message_finished")


@endpoint("AI service callback: stream events for one answer", tag="ai", public=True, body=CallbackBody,
          query=CallbackQuery,
          description="One event or a JSON array of events. `seq` (0, 1, 2, ...) makes delivery "
                      "idempotent and ordered; `complete.content` is the authoritative final text. "
                      "Authenticated by the `token` query parameter of the callback URL.",
          responses={200: CallbackOk, 403: "wrong token for this message", 404: "unknown message",
                     409: "the message is already finished or cancelled", 422: "malformed event"})
async def ai_callback(request: web.Request) -> web.Response:
    app = request.app
    try:
        message_id = uuid.UUID(request.match_info["message_id"])
    except ValueError:
        raise not_found("message") from None
    token = read_query(request, CallbackQuery).token
    if not hmac.compare_digest(token.encode(), callback_token(app[appkeys.SETTINGS], message_id).encode()):
        raise ApiError(403, "invalid callback token for this message", "invalid_token")
    raw = await request.read()
    try:
        data = parse_json(raw)
    except BadJson as exc:
        raise ApiError(422, f"request body: {exc}", "invalid_json") from None
    body = validate(CallbackBody, data).root
    events = [_stream_event(e) for e in (body if isinstance(body, list) else [body])]
    chat_id = await _chat_of(app, message_id)
    outcome, _ = await app[STREAMS].apply(message_id, chat_id, events)
    if outcome == "too_far":
        raise ApiError(422, "seq is too far ahead of the missing events", "seq_too_far")
    if outcome == "finished":
        raise _finished()
    if outcome == "missing":
        if not await messages.exists(app[appkeys.DB], message_id):
            _CHAT_OF.pop(message_id, None)
            raise not_found("message")
        raise _finished()
    return json_response(CallbackOk())

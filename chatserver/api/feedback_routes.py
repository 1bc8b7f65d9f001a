"""Feedback on answers: a thumbs up or down (rating 1 or -1) with an optional
comment, kept with the message; it goes out with the message everywhere
(reads, exports, message_updated to the chat's sockets)."""

from __future__ import annotations

from typing import Annotated, Literal

import pydantic
from aiohttp import web

from chatserver import appkeys
from chatserver.api.access import owned_message
from chatserver.api.endpoint import STRIPPED, endpoint, json_response, read_json
from chatserver.api.message_shapes import Message, message_out
from chatserver.data import messages
from chatserver.errors import MessageUnfinished, NotAnAnswer, NotFound
from chatserver.live.chat_events import CHAT_EVENTS

MAX_COMMENT = 2000


class FeedbackIn(pydantic.BaseModel):
    model_config = pydantic.ConfigDict(extra="ignore", strict=True)
    rating: Literal[1, -1]
    comment: Annotated[str, pydantic.StringConstraints(max_length=MAX_COMMENT), STRIPPED] | None = None

    @pydantic.field_validator("rating", mode="before")
    @classmethod
    def an_integer(cls, value: object) -> object:
        # JSON's true and 1.0 would otherwise pass as 1
        if type(value) is not int:
            raise ValueError("must be the integer 1 or -1")
        return value


async def _answer(request: web.Request) -> dict:
    row = await owned_message(request)
    if row["role"] != "assistant":
        raise NotAnAnswer("feedback is for answers (assistant messages)")
    if row["status"] in messages.UNFINISHED:
        raise MessageUnfinished()
    return row


async def _answered(request: web.Request, row: dict) -> web.Response:
    await request.app[CHAT_EVENTS].message_event("message_updated", [row["id"]])
    found = await messages.get_many(request.app[appkeys.DB], [row["id"]])
    if not found:
        raise NotFound("message")  # its chat was deleted meanwhile
    return json_response(message_out(found[0]))


@endpoint("Rate an answer: thumbs up (1) or down (-1), with an optional comment; a new rating replaces the old",
          tag="messages", body=FeedbackIn,
          responses={200: Message, 404: "no such message", 409: "the answer is not finished",
                     422: "invalid input, or not an answer"})
async def give_feedback(request: web.Request) -> web.Response:
    row = await _answer(request)
    body = await read_json(request, FeedbackIn)
    await messages.set_feedback(request.app[appkeys.DB], row["id"],
                                {"rating": body.rating, "comment": body.comment or None})
    return await _answered(request, row)


@endpoint("Take back your feedback on an answer", tag="messages",
          responses={200: Message, 404: "no such message", 409: "the answer is not finished",
                     422: "not an answer"})
async def remove_feedback(request: web.Request) -> web.Response:
    row = await _answer(request)
    await messages.set_feedback(request.app[appkeys.DB], row["id"], None)
    return await _answered(request, row)

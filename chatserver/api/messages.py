"""Messages: post (which queues an answer), list, read, cancel and regenerate."""

from __future__ import annotations

import contextlib
import datetime as dt
import uuid
from typing import Annotated, Literal

import pydantic
from aiohttp import web

from chatserver import appkeys
from chatserver.ai.job import queue_answer
from chatserver.api.chats import owned_chat
from chatserver.api.endpoint import current_user_id, endpoint, json_response, owned, read_json, read_query
from chatserver.api.pagination import bad_cursor, decode_cursor, encode_cursor, page_query
from chatserver.api.ratelimit import TOO_MANY_REQUESTS, check_message_limit
from chatserver.data import chats, files, messages
from chatserver.errors import ApiError
from chatserver.live.stream import STREAMS, AlreadyFinished

MAX_CONTENT = 100_000
MAX_FILES_PER_MESSAGE = 20


class Source(pydantic.BaseModel):
    title: str = ""
    url: str = ""
    content: str = ""


class Usage(pydantic.BaseModel):
    prompt_tokens: int | None = None
    completion_tokens: int | None = None


class Message(pydantic.BaseModel):
    id: uuid.UUID
    chat_id: uuid.UUID
    role: Literal["user", "assistant"]
    content: str
    status: Literal["pending", "streaming", "complete", "failed", "cancelled"]
    sources: list[Source]
    file_ids: list[uuid.UUID]
    error: str | None
    created_at: dt.datetime
    completed_at: dt.datetime | None
    model: str | None = None
    finish_reason: str | None = None
    usage: Usage | None = None
    reasoning: str = ""


class MessageIn(pydantic.BaseModel):
    model_config = pydantic.ConfigDict(extra="ignore", strict=True)
    content: Annotated[str, pydantic.StringConstraints(min_length=1, max_length=MAX_CONTENT)]
    file_ids: Annotated[list[Annotated[uuid.UUID, pydantic.Strict(False)]],
                        pydantic.Field(max_length=MAX_FILES_PER_MESSAGE)] = []

    @pydantic.field_validator("content")
    @classmethod
    def not_blank(cls, value: str) -> str:
        if not value.strip():
            raise ValueError("must not be blank")
        return value


class PostedMessages(pydantic.BaseModel):
    user_message: Message
    assistant_message: Message


class MessagePage(pydantic.BaseModel):
    items: list[Message]
    next_cursor: str | None


MessagesPage = page_query(50)


async def owned_message(request: web.Request) -> dict:
    return await owned(request, messages.get_owned, request.match_info["message_id"], "message")


async def _check_files(request: web.Request, file_ids: list[uuid.UUID]) -> None:
    if not file_ids:
        return
    missing = set(file_ids) - await files.owned_ids(request.app[appkeys.DB], current_user_id(request), file_ids)
    if missing:
        raise ApiError(422, "file_ids: not your files: " + ", ".join(sorted(map(str, missing))),
                       "unknown_files", [{"loc": ["file_ids"], "msg": f"unknown file {m}"} for m in sorted(map(str, missing))])


@endpoint("Post a message; the answer is queued as a pending assistant message", tag="messages",
          body=MessageIn, responses={201: PostedMessages, 404: "no such chat", 422: "invalid input or files",
                                     429: TOO_MANY_REQUESTS})
async def post_message(request: web.Request) -> web.Response:
    db, user_id = request.app[appkeys.DB], current_user_id(request)
    chat = await owned_chat(request)
    body = await read_json(request, MessageIn)
    file_ids = list(dict.fromkeys(body.file_ids))
    await _check_files(request, file_ids)
    await check_message_limit(request)
    async with db.transaction() as cur:
        question = await messages.insert_question(cur, chat["id"], user_id, body.content, file_ids)
        answer = await messages.insert_answer(cur, chat["id"], user_id, question["id"])
        await chats.touch(cur, chat["id"])
    await queue_answer(request.app, answer["id"])
    return json_response(PostedMessages(user_message=Message(**question), assistant_message=Message(**answer)), 201)


@endpoint("List a chat's messages; oldest first within a page, the cursor walks back in time",
          tag="messages", query=MessagesPage,
          responses={200: MessagePage, 404: "no such chat", 422: "invalid limit or cursor"})
async def list_messages(request: web.Request) -> web.Response:
    db, user_id = request.app[appkeys.DB], current_user_id(request)
    query = read_query(request, MessagesPage)
    before = None
    if query.cursor:
        (position,) = decode_cursor(query.cursor, 1)
        if not position.isdigit():
            raise bad_cursor()
        before = int(position)
    # messages carry their owner, so the common case needs one query; an
    # empty page still has to tell "your empty chat" from "not your chat"
    chat = request.match_info["chat_id"]
    rows = []
    with contextlib.suppress(ValueError):
        rows = await messages.page(db, uuid.UUID(chat), user_id, before, query.limit + 1)
    if not rows:
        await owned_chat(request)
    more = len(rows) > query.limit
    rows = rows[: query.limit][::-1]
    cursor = encode_cursor(rows[0]["position"]) if more else None
    items = await request.app[STREAMS].live_content(rows)
    return json_response(MessagePage(items=[Message(**r) for r in items], next_cursor=cursor))


@endpoint("Read a message", tag="messages", responses={200: Message, 404: "no such message"})
async def get_message(request: web.Request) -> web.Response:
    (row,) = await request.app[STREAMS].live_content([await owned_message(request)])
    return json_response(Message(**row))


def already_finished() -> ApiError:
    return ApiError(409, "the message is already finished", "message_finished")


@endpoint("Cancel an answer; the text received so far is kept", tag="messages",
          responses={200: Message, 404: "no such message", 409: "the message is already finished"})
async def cancel_message(request: web.Request) -> web.Response:
    row = await owned_message(request)
    try:
        return json_response(Message(**await request.app[STREAMS].cancel(row)))
    except AlreadyFinished:
        raise already_finished() from None


@endpoint("Answer the same user message again; the old answer stays but leaves the AI history",
          tag="messages",
          responses={201: Message, 404: "no such message", 422: "not an assistant message",
                     429: TOO_MANY_REQUESTS})
async def regenerate_message(request: web.Request) -> web.Response:
    app, user_id = request.app, current_user_id(request)
    old = await owned_message(request)
    if old["role"] != "assistant" or old["reply_to"] is None:
        raise ApiError(422, "only an assistant message can be regenerated", "not_an_answer")
    await check_message_limit(request)
    with contextlib.suppress(AlreadyFinished):
        await app[STREAMS].cancel(old, "regenerated")
    async with app[appkeys.DB].transaction() as cur:
        await messages.supersede(cur, old["id"])
        answer = await messages.insert_answer(cur, old["chat_id"], user_id, old["reply_to"])
        await chats.touch(cur, old["chat_id"])
    await queue_answer(app, answer["id"])
    return json_response(Message(**answer), 201)

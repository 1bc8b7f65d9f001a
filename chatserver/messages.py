"""Messages: posting (which queues an answer), listing and reading."""

from __future__ import annotations

import datetime as dt
import logging
import uuid
from typing import Annotated, Literal

import pydantic
from aiohttp import web

from . import appkeys
from .auth import current_user_id
from .chats import get_owned_chat
from .db import Database
from .endpoint import endpoint, json_response, read_json, read_query
from .errors import ApiError, not_found
from .pagination import bad_cursor, decode_cursor, encode_cursor, page_query

log = logging.getLogger(__name__)

MAX_CONTENT = 100_000
MAX_FILES_PER_MESSAGE = 20
GENERATE_TASK = "ai.generate"


class Source(pydantic.BaseModel):
    title: str = ""
    url: str = ""
    content: str = ""


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
MESSAGE_COLUMNS = "id, chat_id, role, content, status, sources, file_ids, error, created_at, completed_at"


def parse_id(raw: str, what: str) -> uuid.UUID:
    try:
        return uuid.UUID(raw)
    except ValueError:
        raise not_found(what) from None


async def get_owned_message(db: Database, message_id: str, user_id: uuid.UUID) -> dict:
    row = await db.fetchrow(
        f"SELECT {MESSAGE_COLUMNS}, reply_to FROM messages WHERE id = %s AND user_id = %s",
        (parse_id(message_id, "message"), user_id),
    )
    if row is None:
        raise not_found("message")
    return row


async def insert_answer(cur, chat_id: uuid.UUID, user_id: uuid.UUID, reply_to: uuid.UUID) -> dict:
    """A new pending assistant message answering `reply_to`, inside the caller's transaction."""
    await cur.execute(
        f"""
        INSERT INTO messages (chat_id, user_id, role, status, reply_to)
        VALUES (%s, %s, 'assistant', 'pending', %s)
        RETURNING {MESSAGE_COLUMNS}
        """,
        (chat_id, user_id, reply_to),
    )
    return dict(await cur.fetchone())


async def touch_chat(cur, chat_id: uuid.UUID) -> None:
    await cur.execute("UPDATE chats SET updated_at = clock_timestamp() WHERE id = %s", (chat_id,))


async def queue_answer(app: web.Application, message_id: uuid.UUID) -> None:
    """Queue the generation of an answer. If Redis is down the message stays
    pending and the stuck-message sweep queues it again."""
    try:
        await app[appkeys.QUEUE].enqueue(GENERATE_TASK, {"message_id": str(message_id)})
    except Exception:
        log.exception("could not queue the answer %s; the sweep will retry", message_id)


async def _check_files(db: Database, user_id: uuid.UUID, file_ids: list[uuid.UUID]) -> None:
    if not file_ids:
        return
    owned = await db.fetch("SELECT id FROM files WHERE user_id = %s AND id = ANY(%s)", (user_id, file_ids))
    missing = set(file_ids) - {r["id"] for r in owned}
    if missing:
        raise ApiError(422, "file_ids: not your files: " + ", ".join(sorted(map(str, missing))),
                       "unknown_files", [{"loc": ["file_ids"], "msg": f"unknown file {m}"} for m in sorted(map(str, missing))])


@endpoint("Post a message; the answer is queued as a pending assistant message", tag="messages",
          body=MessageIn, responses={201: PostedMessages, 404: "no such chat", 422: "invalid input or files"})
async def post_message(request: web.Request) -> web.Response:
    db, user_id = request.app[appkeys.DB], current_user_id(request)
    chat = await get_owned_chat(db, request.match_info["chat_id"], user_id)
    body = await read_json(request, MessageIn)
    file_ids = list(dict.fromkeys(body.file_ids))
    await _check_files(db, user_id, file_ids)
    async with db.transaction() as cur:
        await cur.execute(
            f"""
            INSERT INTO messages (chat_id, user_id, role, content, status, file_ids, completed_at)
            VALUES (%s, %s, 'user', %s, 'complete', %s::uuid[], clock_timestamp())
            RETURNING {MESSAGE_COLUMNS}
            """,
            (chat["id"], user_id, body.content, file_ids),
        )
        user_message = dict(await cur.fetchone())
        answer = await insert_answer(cur, chat["id"], user_id, user_message["id"])
        await touch_chat(cur, chat["id"])
    await queue_answer(request.app, answer["id"])
    return json_response(PostedMessages(user_message=Message(**user_message), assistant_message=Message(**answer)), 201)


@endpoint("List a chat's messages; oldest first within a page, the cursor walks back in time",
          tag="messages", query=MessagesPage,
          responses={200: MessagePage, 404: "no such chat", 422: "invalid limit or cursor"})
async def list_messages(request: web.Request) -> web.Response:
    db, user_id = request.app[appkeys.DB], current_user_id(request)
    chat_id = parse_id(request.match_info["chat_id"], "chat")
    query = read_query(request, MessagesPage)
    before = None
    if query.cursor:
        (position,) = decode_cursor(query.cursor, 1)
        if not position.isdigit():
            raise bad_cursor()
        before = int(position)
    # messages carry their owner, so the common case needs one query; an
    # empty page still has to tell "your empty chat" from "not your chat"
    rows = await db.fetch(
        f"""
        SELECT {MESSAGE_COLUMNS}, position FROM messages
        WHERE chat_id = %(chat)s AND user_id = %(user)s
          AND (%(before)s::bigint IS NULL OR position < %(before)s)
        ORDER BY position DESC
        LIMIT %(limit)s
        """,
        {"chat": chat_id, "user": user_id, "before": before, "limit": query.limit + 1},
    )
    if not rows:
        await get_owned_chat(db, str(chat_id), user_id)
    more = len(rows) > query.limit
    rows = rows[: query.limit][::-1]
    cursor = encode_cursor(rows[0]["position"]) if more else None
    items = await request.app[LIVE_CONTENT](request.app, rows)
    return json_response(MessagePage(items=[Message(**r) for r in items], next_cursor=cursor))


@endpoint("Read a message", tag="messages", responses={200: Message, 404: "no such message"})
async def get_message(request: web.Request) -> web.Response:
    row = await get_owned_message(request.app[appkeys.DB], request.match_info["message_id"], current_user_id(request))
    (row,) = await request.app[LIVE_CONTENT](request.app, [row])
    return json_response(Message(**row))


async def stored_content(app: web.Application, rows: list[dict]) -> list[dict]:
    return rows


# `await app[LIVE_CONTENT](app, rows)` returns the rows with the content of
# streaming answers brought up to date; the streams module replaces the
# default, which trusts the stored (checkpointed) content.
LIVE_CONTENT = web.AppKey("live_content", object)


def setup_routes(app: web.Application) -> None:
    app.setdefault(LIVE_CONTENT, stored_content)
    app.router.add_post("/api/chats/{chat_id}/messages", post_message)
    app.router.add_get("/api/chats/{chat_id}/messages", list_messages)
    app.router.add_get("/api/messages/{message_id}", get_message)

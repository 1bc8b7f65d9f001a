"""Chats: create, list, read, rename, delete; and search over messages."""

from __future__ import annotations

import datetime as dt
import uuid
from typing import Annotated

import pydantic
from aiohttp import web

from . import appkeys
from .auth import current_user_id
from .db import Database
from .endpoint import endpoint, json_response, read_json, read_query
from .errors import not_found
from .pagination import bad_cursor, decode_cursor, encode_cursor, page_query

Title = Annotated[str, pydantic.StringConstraints(strip_whitespace=True, min_length=1, max_length=200)]
DEFAULT_TITLE = "New chat"


class ChatIn(pydantic.BaseModel):
    model_config = pydantic.ConfigDict(extra="ignore", strict=True)
    title: Title | None = None


class ChatPatch(pydantic.BaseModel):
    model_config = pydantic.ConfigDict(extra="ignore", strict=True)
    title: Title


class Chat(pydantic.BaseModel):
    id: uuid.UUID
    title: str
    created_at: dt.datetime
    updated_at: dt.datetime


class ChatPage(pydantic.BaseModel):
    items: list[Chat]
    next_cursor: str | None


class SearchQuery(pydantic.BaseModel):
    model_config = pydantic.ConfigDict(extra="ignore")
    q: Annotated[str, pydantic.StringConstraints(strip_whitespace=True, min_length=1, max_length=500)]
    limit: Annotated[int, pydantic.Field(ge=1, le=100)] = 20


class SearchHit(pydantic.BaseModel):
    chat_id: uuid.UUID
    message_id: uuid.UUID
    snippet: str
    created_at: dt.datetime


class SearchResults(pydantic.BaseModel):
    items: list[SearchHit]


ChatsPage = page_query(20)
CHAT_COLUMNS = "id, title, created_at, updated_at"


async def get_owned_chat(db: Database, chat_id: str, user_id: uuid.UUID) -> dict:
    """The chat if it exists and is the user's; 404 otherwise (also for a malformed id)."""
    try:
        chat_uuid = uuid.UUID(chat_id)
    except ValueError:
        raise not_found("chat") from None
    row = await db.fetchrow(
        f"SELECT {CHAT_COLUMNS} FROM chats WHERE id = %s AND user_id = %s", (chat_uuid, user_id)
    )
    if row is None:
        raise not_found("chat")
    return row


@endpoint("Create a chat", tag="chats", body=ChatIn, responses={201: Chat, 422: "invalid input"})
async def create_chat(request: web.Request) -> web.Response:
    body = await read_json(request, ChatIn)
    row = await request.app[appkeys.DB].fetchrow(
        f"INSERT INTO chats (user_id, title) VALUES (%s, %s) RETURNING {CHAT_COLUMNS}",
        (current_user_id(request), body.title or DEFAULT_TITLE),
    )
    return json_response(Chat(**row), 201)


@endpoint("List chats, most recently active first", tag="chats", query=ChatsPage,
          responses={200: ChatPage, 422: "invalid limit or cursor"})
async def list_chats(request: web.Request) -> web.Response:
    query = read_query(request, ChatsPage)
    after = None
    if query.cursor:
        stamp, chat_id = decode_cursor(query.cursor, 2)
        try:
            after = (dt.datetime.fromisoformat(stamp), uuid.UUID(chat_id))
        except ValueError:
            raise bad_cursor() from None
    rows = await request.app[appkeys.DB].fetch(
        f"""
        SELECT {CHAT_COLUMNS} FROM chats
        WHERE user_id = %(user)s
          AND (%(stamp)s::timestamptz IS NULL OR (updated_at, id) < (%(stamp)s, %(id)s))
        ORDER BY updated_at DESC, id DESC
        LIMIT %(limit)s
        """,
        {"user": current_user_id(request), "stamp": after and after[0], "id": after and after[1],
         "limit": query.limit + 1},
    )
    more = len(rows) > query.limit
    rows = rows[: query.limit]
    cursor = encode_cursor(rows[-1]["updated_at"].isoformat(), rows[-1]["id"]) if more else None
    return json_response(ChatPage(items=[Chat(**r) for r in rows], next_cursor=cursor))


@endpoint("Read a chat", tag="chats", responses={200: Chat, 404: "no such chat"})
async def get_chat(request: web.Request) -> web.Response:
    row = await get_owned_chat(request.app[appkeys.DB], request.match_info["chat_id"], current_user_id(request))
    return json_response(Chat(**row))


@endpoint("Rename a chat", tag="chats", body=ChatPatch,
          responses={200: Chat, 404: "no such chat", 422: "invalid input"})
async def rename_chat(request: web.Request) -> web.Response:
    db = request.app[appkeys.DB]
    chat = await get_owned_chat(db, request.match_info["chat_id"], current_user_id(request))
    body = await read_json(request, ChatPatch)
    row = await db.fetchrow(
        f"UPDATE chats SET title = %s WHERE id = %s RETURNING {CHAT_COLUMNS}", (body.title, chat["id"])
    )
    if row is None:
        raise not_found("chat")
    return json_response(Chat(**row))


@endpoint("Delete a chat with its messages and files; running answers are cancelled", tag="chats",
          responses={204: None, 404: "no such chat"})
async def delete_chat(request: web.Request) -> web.Response:
    app = request.app
    chat = await get_owned_chat(app[appkeys.DB], request.match_info["chat_id"], current_user_id(request))
    for hook in app[CHAT_DELETED]:
        await hook(app, chat["id"])
    await app[appkeys.DB].execute("DELETE FROM chats WHERE id = %s", (chat["id"],))
    return web.Response(status=204)


@endpoint("Full-text search over the user's messages", tag="chats", query=SearchQuery,
          responses={200: SearchResults, 422: "missing or invalid q"})
async def search(request: web.Request) -> web.Response:
    query = read_query(request, SearchQuery)
    rows = await request.app[appkeys.DB].fetch(
        """
        SELECT m.chat_id, m.id AS message_id, m.created_at,
               ts_headline('english', m.content, q,
                           'MaxWords=35, MinWords=12, MaxFragments=2, StartSel="", StopSel=""') AS snippet
        FROM messages m, websearch_to_tsquery('english', %(q)s) q
        WHERE m.user_id = %(user)s AND m.search @@ q
        ORDER BY ts_rank(m.search, q) DESC, m.created_at DESC
        LIMIT %(limit)s
        """,
        {"q": query.q, "user": current_user_id(request), "limit": query.limit},
    )
    return json_response(SearchResults(items=[SearchHit(**r) for r in rows]))


# Coroutines `hook(app, chat_id)` run before a chat is deleted: the streams
# module cancels its generations, the files module removes its bytes.
CHAT_DELETED = web.AppKey("chat_deleted_hooks", list)


def setup_routes(app: web.Application) -> None:
    app.setdefault(CHAT_DELETED, [])
    app.router.add_post("/api/chats", create_chat)
    app.router.add_get("/api/chats", list_chats)
    app.router.add_get("/api/chats/{chat_id}", get_chat)
    app.router.add_patch("/api/chats/{chat_id}", rename_chat)
    app.router.add_delete("/api/chats/{chat_id}", delete_chat)
    app.router.add_get("/api/search", search)

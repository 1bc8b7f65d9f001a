"""The chat list: archived chats or the others, optionally of one folder or
only (un)pinned ones; pinned chats first, then the most recently active.

Pages are walked by keyset on (pinned, updated_at, id), the order of the
list, so a page costs the same however deep it is, and pinning or
archiving elsewhere never repeats or skips a chat that did not move."""

from __future__ import annotations

import datetime as dt
import uuid
from typing import Annotated, Literal

import pydantic
from aiohttp import web

from chatserver import appkeys
from chatserver.api.access import account_check
from chatserver.api.chat_shapes import Chat, ChatPage
from chatserver.api.endpoint import current_user_id, endpoint, json_response, read_query, shaped
from chatserver.api.pagination import PageQuery, decode_cursor, encode_cursor
from chatserver.data import chats
from chatserver.errors import InvalidCursor


class ChatListQuery(PageQuery):
    limit: Annotated[int, pydantic.Field(ge=1, le=100)] = 20
    folder_id: Annotated[uuid.UUID | Literal["none"] | None, pydantic.Field(
        description="a folder's id, or `none` for chats in no folder; left out: any folder")] = None
    pinned: Annotated[bool | None, pydantic.Field(description="only pinned (true) or unpinned (false) chats")] = None
    archived: Annotated[bool, pydantic.Field(description="archived chats instead of the others")] = False


def _after(cursor: str) -> tuple[bool, dt.datetime, uuid.UUID]:
    pinned, stamp, chat_id = decode_cursor(cursor, 3)
    if pinned not in ("0", "1"):
        raise InvalidCursor()
    try:
        return pinned == "1", dt.datetime.fromisoformat(stamp), uuid.UUID(chat_id)
    except ValueError:
        raise InvalidCursor() from None


@endpoint("List chats: pinned first, then most recently active; archived ones only when asked for",
          tag="chats", query=ChatListQuery, responses={200: ChatPage, 422: "invalid limit, cursor or filter"},
          checks_account=True)
async def list_chats(request: web.Request) -> web.Response:
    query = read_query(request, ChatListQuery)
    folder: uuid.UUID | None | bool = True if query.folder_id is None else (
        None if query.folder_id == "none" else query.folder_id)
    rows = await chats.listing(request.app[appkeys.DB], current_user_id(request), archived=query.archived,
                               pinned=query.pinned, folder=folder,
                               after=_after(query.cursor) if query.cursor else None, limit=query.limit + 1)
    if not rows:
        await account_check(request)
    more = len(rows) > query.limit
    rows = rows[: query.limit]
    last = rows[-1] if rows else None
    cursor = encode_cursor("1" if last["pinned"] else "0", last["updated_at"].isoformat(), last["id"]) \
        if more and last else None
    return json_response({"items": [shaped(Chat, r) for r in rows], "next_cursor": cursor})

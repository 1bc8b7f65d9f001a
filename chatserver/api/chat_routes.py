"""Chats: create, list, read, rename, delete; and search over messages."""

from __future__ import annotations

import datetime as dt
import uuid
from typing import Annotated

import pydantic
from aiohttp import web

from chatserver import appkeys
from chatserver.ai.models import is_known_model
from chatserver.api.access import account_check, owned_chat
from chatserver.api.chat_shapes import DEFAULT_TITLE, Chat, chat_updated
from chatserver.api.endpoint import current_user_id, endpoint, json_response, read_json, read_query, shaped
from chatserver.api.pagination import decode_cursor, encode_cursor, page_query
from chatserver.data import chats
from chatserver.data import messages as message_rows
from chatserver.errors import InvalidCursor, NotFound, UnknownModel, ValidationFailed
from chatserver.files.storage import remove_chat_files
from chatserver.live.answers import ANSWERS
from chatserver.live.chat_events import CHAT_EVENTS
from chatserver.tools.toolbox import TOOLBOX

Title = Annotated[str, pydantic.StringConstraints(strip_whitespace=True, min_length=1, max_length=200)]


ModelId = Annotated[str, pydantic.StringConstraints(strip_whitespace=True, min_length=1, max_length=200)]
SystemPrompt = Annotated[str, pydantic.StringConstraints(max_length=20_000)]
Temperature = Annotated[float, pydantic.Field(ge=0, le=2, allow_inf_nan=False)]
MaxTokens = Annotated[int, pydantic.Field(ge=1, le=2**31 - 1)]
ToolId = Annotated[str, pydantic.StringConstraints(min_length=1, max_length=200)]


class ChatSettings(pydantic.BaseModel):
    """What a chat may set for its answers; null leaves it to the server's default."""
    model_config = pydantic.ConfigDict(extra="ignore", strict=True)
    model: ModelId | None = None
    system_prompt: SystemPrompt | None = None
    temperature: Annotated[Temperature, pydantic.Strict(False)] | None = None
    max_tokens: MaxTokens | None = None
    tools: Annotated[list[ToolId], pydantic.Field(max_length=100)] | None = None


class ChatIn(ChatSettings):
    title: Title | None = None


class ChatPatch(ChatSettings):
    """Only the fields present change; a setting sent as null goes back to the default."""
    title: Title | None = None

    @pydantic.field_validator("title")
    @classmethod
    def title_not_null(cls, value: str | None) -> str:
        if value is None:
            raise ValueError("a chat's title cannot be null")
        return value


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


async def _check_model(request: web.Request, body: ChatSettings) -> None:
    if body.model is not None and not await is_known_model(request.app, body.model):
        raise UnknownModel(body.model)
    if body.tools:
        request.app[TOOLBOX].check(body.tools)


@endpoint("Create a chat, optionally with its model settings", tag="chats", body=ChatIn,
          responses={201: Chat, 422: "invalid input or unknown model"})
async def create_chat(request: web.Request) -> web.Response:
    body = await read_json(request, ChatIn)
    await _check_model(request, body)
    row = await chats.insert(request.app[appkeys.DB], current_user_id(request), body.title or DEFAULT_TITLE,
                             body.model_dump(include=set(chats.SETTINGS)), auto_title=body.title is None)
    return json_response(shaped(Chat, row), 201)


@endpoint("List chats, most recently active first", tag="chats", query=ChatsPage,
          responses={200: ChatPage, 422: "invalid limit or cursor"}, checks_account=True)
async def list_chats(request: web.Request) -> web.Response:
    query = read_query(request, ChatsPage)
    after = None
    if query.cursor:
        stamp, chat_id = decode_cursor(query.cursor, 2)
        try:
            after = (dt.datetime.fromisoformat(stamp), uuid.UUID(chat_id))
        except ValueError:
            raise InvalidCursor() from None
    rows = await chats.page(request.app[appkeys.DB], current_user_id(request), after, query.limit + 1)
    if not rows:
        await account_check(request)
    more = len(rows) > query.limit
    rows = rows[: query.limit]
    cursor = encode_cursor(rows[-1]["updated_at"].isoformat(), rows[-1]["id"]) if more else None
    return json_response({"items": [shaped(Chat, r) for r in rows], "next_cursor": cursor})


@endpoint("Read a chat", tag="chats", responses={200: Chat, 404: "no such chat"}, checks_account=True)
async def get_chat(request: web.Request) -> web.Response:
    return json_response(shaped(Chat, await owned_chat(request)))


@endpoint("Rename a chat or change its model settings", tag="chats", body=ChatPatch,
          responses={200: Chat, 404: "no such chat", 422: "invalid input or unknown model"})
async def rename_chat(request: web.Request) -> web.Response:
    chat = await owned_chat(request)
    body = await read_json(request, ChatPatch)
    if not body.model_fields_set:
        raise ValidationFailed("nothing to change: send a title or a setting")
    await _check_model(request, body)
    row = await chats.update(request.app[appkeys.DB], chat["id"], body.model_dump(include=body.model_fields_set))
    if row is None:
        raise NotFound("chat")
    return json_response(shaped(Chat, await chat_updated(request, row)))


@endpoint("Delete a chat with its messages and files; running answers are cancelled", tag="chats",
          responses={204: None, 404: "no such chat"})
async def delete_chat(request: web.Request) -> web.Response:
    app = request.app
    chat = await owned_chat(request)
    await app[ANSWERS].cancel_chat(chat["id"], "the chat was deleted")
    await remove_chat_files(app, chat["id"])
    await chats.delete(app[appkeys.DB], chat["id"])
    await app[CHAT_EVENTS].publish(chat["id"], {"type": "chat_deleted", "chat_id": str(chat["id"])})
    return web.Response(status=204)


@endpoint("Full-text search over the user's messages", tag="chats", query=SearchQuery,
          responses={200: SearchResults, 422: "missing or invalid q"}, checks_account=True)
async def search(request: web.Request) -> web.Response:
    query = read_query(request, SearchQuery)
    rows = await message_rows.search(request.app[appkeys.DB], current_user_id(request), query.q, query.limit)
    if not rows:
        await account_check(request)
    return json_response({"items": [shaped(SearchHit, r) for r in rows]})

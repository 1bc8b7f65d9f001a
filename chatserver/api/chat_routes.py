"""Chats: create (also from a preset), read, change (title, settings, folder, pin,
archive), delete; and search over messages. The list is in chat_list_routes.py."""

from __future__ import annotations

import datetime as dt
import uuid
from typing import Annotated

import pydantic
from aiohttp import web

from chatserver import appkeys
from chatserver.ai.models import is_known_model
from chatserver.api.access import account_check, owned_chat
from chatserver.api.chat_shapes import DEFAULT_TITLE, Chat, ChatSettings, chat_updated
from chatserver.api.endpoint import NOT_BLANK, current_user_id, endpoint, json_response, read_json, read_query, shaped
from chatserver.data import chats, files, folders, presets
from chatserver.data import messages as message_rows
from chatserver.errors import NotFound, UnknownFiles, UnknownFolder, UnknownModel, UnknownPreset, ValidationFailed
from chatserver.files.storage import remove_chat_files
from chatserver.live.answers import ANSWERS
from chatserver.live.chat_events import CHAT_EVENTS
from chatserver.tools.toolbox import TOOLBOX

Title = Annotated[str, pydantic.StringConstraints(min_length=1, max_length=200), NOT_BLANK]


MAX_KNOWLEDGE_FILES = 100
Knowledge = Annotated[list[Annotated[uuid.UUID, pydantic.Strict(False)]], pydantic.Field(
    max_length=MAX_KNOWLEDGE_FILES, description="files searched for every answer of the chat (docs/knowledge.md)")]


class ChatIn(ChatSettings):
    title: Title | None = None
    folder_id: Annotated[uuid.UUID, pydantic.Strict(False)] | None = None
    pinned: bool = False
    # the settings the body leaves out are copied from this preset
    preset_id: Annotated[uuid.UUID, pydantic.Strict(False)] | None = None
    knowledge: Knowledge | None = None


def _without_default(schema: dict) -> None:
    schema.pop("default", None)


class ChatPatch(ChatSettings):
    """Only the fields present change; a setting sent as null goes back to the default."""
    # absent is no change, null is refused: the schema says string (with no null default), as the validator does
    title: Annotated[Title | None, pydantic.WithJsonSchema(
        {"type": "string", "minLength": 1, "maxLength": 200})] = pydantic.Field(
        default=None, json_schema_extra=_without_default)
    folder_id: Annotated[uuid.UUID, pydantic.Strict(False)] | None = None
    pinned: bool = False
    archived: bool = False
    knowledge: Knowledge | None = None

    @pydantic.field_validator("title")
    @classmethod
    def title_not_null(cls, value: str | None) -> str:
        if value is None:
            raise ValueError("a chat's title cannot be null")
        return value


class SearchQuery(pydantic.BaseModel):
    model_config = pydantic.ConfigDict(extra="ignore")
    q: Annotated[str, pydantic.StringConstraints(min_length=1, max_length=500), NOT_BLANK]
    limit: Annotated[int, pydantic.Field(ge=1, le=100)] = 20


class SearchHit(pydantic.BaseModel):
    chat_id: uuid.UUID
    message_id: uuid.UUID
    snippet: str
    created_at: dt.datetime


class SearchResults(pydantic.BaseModel):
    items: list[SearchHit]




async def _check_model(request: web.Request, body: ChatSettings) -> None:
    if body.model is not None and not await is_known_model(request.app, body.model):
        raise UnknownModel(body.model)
    if body.tools:
        request.app[TOOLBOX].check(body.tools)


async def _check_folder(request: web.Request, folder_id: uuid.UUID | None) -> None:
    if folder_id is not None and await folders.get_owned(request.app[appkeys.DB], folder_id,
                                                         current_user_id(request)) is None:
        raise UnknownFolder(folder_id)


async def _preset_settings(request: web.Request, preset_id: uuid.UUID, given: set[str]) -> dict:
    """The preset's settings that the request did not give itself; 422 unless the preset is the user's."""
    preset = await presets.get_owned(request.app[appkeys.DB], preset_id, current_user_id(request))
    if preset is None:
        raise UnknownPreset(preset_id)
    taken = {k: preset[k] for k in chats.SETTINGS if k not in given}
    if "knowledge" not in given:
        # the preset's files that are still the user's
        wanted = [uuid.UUID(str(i)) for i in preset["knowledge"] or []]
        owned = await files.owned_ids(request.app[appkeys.DB], current_user_id(request), wanted)
        taken["knowledge"] = [i for i in wanted if i in owned]
    return taken


async def _check_knowledge(request: web.Request, knowledge: list[uuid.UUID] | None) -> list[uuid.UUID]:
    """The ids once each, all the user's files; 422 naming any other."""
    wanted = list(dict.fromkeys(knowledge or []))
    missing = set(wanted) - await files.owned_ids(request.app[appkeys.DB], current_user_id(request), wanted)
    if missing:
        names = sorted(map(str, missing))
        raise UnknownFiles(names, "knowledge")
    return wanted


@endpoint("Create a chat, optionally with its model settings", tag="chats", body=ChatIn,
          responses={201: Chat, 422: "invalid input or unknown model"})
async def create_chat(request: web.Request) -> web.Response:
    body = await read_json(request, ChatIn)
    await _check_model(request, body)
    await _check_folder(request, body.folder_id)
    knowledge = await _check_knowledge(request, body.knowledge)
    settings = body.model_dump(include={*chats.SETTINGS, "folder_id", "pinned"})
    if body.preset_id is not None:
        settings |= await _preset_settings(request, body.preset_id, body.model_fields_set)
        knowledge = settings.pop("knowledge", knowledge)
    try:
        row = await chats.insert(request.app[appkeys.DB], current_user_id(request), body.title or DEFAULT_TITLE,
                                 settings, auto_title=body.title is None, knowledge=knowledge)
    except chats.FolderGone:
        raise UnknownFolder(body.folder_id) from None
    return json_response(shaped(Chat, row), 201)




@endpoint("Read a chat", tag="chats", responses={200: Chat, 404: "no such chat"}, checks_account=True)
async def get_chat(request: web.Request) -> web.Response:
    return json_response(shaped(Chat, await owned_chat(request)))


@endpoint("Rename a chat, change its model settings, move it to a folder, pin or archive it", tag="chats",
          body=ChatPatch,
          responses={200: Chat, 404: "no such chat", 422: "invalid input or unknown model"})
async def rename_chat(request: web.Request) -> web.Response:
    chat = await owned_chat(request)
    body = await read_json(request, ChatPatch)
    if not body.model_fields_set:
        raise ValidationFailed("nothing to change: send a title or a setting")
    await _check_model(request, body)
    await _check_folder(request, body.folder_id)
    changes = body.model_dump(include=body.model_fields_set)
    if "knowledge" in changes:
        changes["knowledge"] = await _check_knowledge(request, body.knowledge)
    try:
        row = await chats.update(request.app[appkeys.DB], chat["id"], changes)
    except chats.FolderGone:
        raise UnknownFolder(body.folder_id) from None
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
    event = {"type": "chat_deleted", "chat_id": str(chat["id"])}
    await app[CHAT_EVENTS].publish(chat["id"], event)
    await app[CHAT_EVENTS].publish_to_user(current_user_id(request), event)
    return web.Response(status=204)


@endpoint("Full-text search over the user's messages", tag="chats", query=SearchQuery,
          responses={200: SearchResults, 422: "missing or invalid q"}, checks_account=True)
async def search(request: web.Request) -> web.Response:
    query = read_query(request, SearchQuery)
    rows = await message_rows.search(request.app[appkeys.DB], current_user_id(request), query.q, query.limit)
    if not rows:
        await account_check(request)
    return json_response({"items": [shaped(SearchHit, r) for r in rows]})

"""Presets: a user's named sets of answer settings (model, system prompt,
temperature, max tokens, tools, knowledge): create, list, change, delete.
`POST /api/chats` with `preset_id` copies one into the new chat (chat_routes.py).

`tools` are ids of GET /api/tools, `knowledge` ids of the user's files; a
chat made from a preset takes both (its knowledge files still the user's)."""

from __future__ import annotations

import contextlib
import datetime as dt
import uuid
from typing import Annotated

import pydantic
from aiohttp import web

from chatserver import appkeys
from chatserver.ai.models import is_known_model
from chatserver.api.access import parse_id
from chatserver.api.chat_shapes import ChatSettings
from chatserver.api.endpoint import NOT_BLANK, current_user_id, endpoint, json_response, read_json, shaped
from chatserver.data import files, presets
from chatserver.errors import NotFound, PresetExists, UnknownKnowledge, UnknownModel, ValidationFailed
from chatserver.tools.toolbox import TOOLBOX

PresetName = Annotated[str, pydantic.StringConstraints(min_length=1, max_length=100), NOT_BLANK]
Ids = Annotated[list[Annotated[str, pydantic.StringConstraints(min_length=1, max_length=200)]],
                pydantic.Field(max_length=100)]


class PresetIn(ChatSettings):
    name: PresetName
    tools: Ids = []
    knowledge: Ids = []


class PresetPatch(ChatSettings):
    """Only the fields present change; a setting sent as null goes back to the server's default."""
    name: PresetName | None = None
    tools: Ids = []
    knowledge: Ids = []

    @pydantic.field_validator("name", "tools", "knowledge", mode="before")
    @classmethod
    def not_null(cls, value: object) -> object:
        if value is None:
            raise ValueError("cannot be null")
        return value


class Preset(pydantic.BaseModel):
    id: uuid.UUID
    name: str
    model: str | None
    system_prompt: str | None
    temperature: float | None
    max_tokens: int | None
    tools: list[str]
    knowledge: list[str]
    created_at: dt.datetime
    updated_at: dt.datetime


class PresetList(pydantic.BaseModel):
    items: list[Preset]


async def _check(request: web.Request, body: ChatSettings, fields: set[str]) -> None:
    if "model" in fields and body.model is not None and not await is_known_model(request.app, body.model):
        raise UnknownModel(body.model)
    if "tools" in fields and body.tools:
        request.app[TOOLBOX].check(body.tools)
    knowledge = getattr(body, "knowledge", [])
    if "knowledge" in fields and knowledge:
        ids = {}
        for raw in knowledge:
            with contextlib.suppress(ValueError):
                ids[raw] = uuid.UUID(raw)
        owned = await files.owned_ids(request.app[appkeys.DB], current_user_id(request), list(ids.values()))
        unknown = [raw for raw in knowledge if ids.get(raw) not in owned]
        if unknown:
            raise UnknownKnowledge(unknown)


def _name_taken(name: str) -> PresetExists:
    return PresetExists(f"you have a preset named {name!r} already")


@endpoint("Create a preset", tag="presets", body=PresetIn,
          responses={201: Preset, 409: "a preset of that name exists",
                     422: "invalid input, unknown model, tools or knowledge"})
async def create_preset(request: web.Request) -> web.Response:
    body = await read_json(request, PresetIn)
    await _check(request, body, set(presets.FIELDS))
    try:
        row = await presets.insert(request.app[appkeys.DB], current_user_id(request), body.name,
                                   body.model_dump(include=set(presets.FIELDS)))
    except presets.NameTaken:
        raise _name_taken(body.name) from None
    return json_response(shaped(Preset, row), 201)


@endpoint("List your presets by name", tag="presets", responses={200: PresetList})
async def list_presets(request: web.Request) -> web.Response:
    rows = await presets.of_user(request.app[appkeys.DB], current_user_id(request))
    return json_response({"items": [shaped(Preset, r) for r in rows]})


@endpoint("Change a preset", tag="presets", body=PresetPatch,
          responses={200: Preset, 404: "no such preset", 409: "a preset of that name exists",
                     422: "invalid input, unknown model, tools or knowledge"})
async def update_preset(request: web.Request) -> web.Response:
    preset_id = parse_id(request.match_info["preset_id"], "preset")
    body = await read_json(request, PresetPatch)
    if not body.model_fields_set:
        raise ValidationFailed("nothing to change: send a name or a setting")
    await _check(request, body, body.model_fields_set)
    try:
        row = await presets.update(request.app[appkeys.DB], preset_id, current_user_id(request),
                                   body.model_dump(include=body.model_fields_set))
    except presets.NameTaken:
        raise _name_taken(body.name or "") from None
    if row is None:
        raise NotFound("preset")
    return json_response(shaped(Preset, row))


@endpoint("Delete a preset; chats made from it keep their settings", tag="presets",
          responses={204: None, 404: "no such preset"})
async def delete_preset(request: web.Request) -> web.Response:
    preset_id = parse_id(request.match_info["preset_id"], "preset")
    if not await presets.delete(request.app[appkeys.DB], preset_id, current_user_id(request)):
        raise NotFound("preset")
    return web.Response(status=204)

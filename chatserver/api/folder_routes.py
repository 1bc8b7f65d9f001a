"""Folders of a user's chats: create, list, rename, delete (its chats move
out of it, and each sends chat_updated to the sockets watching it). Each
change is a chat-list event on the user's list sockets, so every tab's list follows."""

from __future__ import annotations

import datetime as dt
import uuid
from typing import Annotated

import pydantic
from aiohttp import web

from chatserver import appkeys
from chatserver.api.access import parse_id
from chatserver.api.chat_shapes import chat_updated
from chatserver.api.endpoint import NOT_BLANK, current_user_id, endpoint, json_response, read_json, shaped
from chatserver.data import chats, folders
from chatserver.errors import FolderExists, NotFound
from chatserver.live.chat_events import CHAT_EVENTS

FolderName = Annotated[str, pydantic.StringConstraints(min_length=1, max_length=100), NOT_BLANK]


class FolderIn(pydantic.BaseModel):
    model_config = pydantic.ConfigDict(extra="ignore", strict=True)
    name: FolderName


class Folder(pydantic.BaseModel):
    id: uuid.UUID
    name: str
    created_at: dt.datetime
    updated_at: dt.datetime


class FolderList(pydantic.BaseModel):
    items: list[Folder]


def _name_taken(name: str) -> FolderExists:
    return FolderExists(f"you have a folder named {name!r} already")


@endpoint("Create a folder for chats", tag="folders", body=FolderIn,
          responses={201: Folder, 409: "a folder of that name exists", 422: "invalid input"})
async def create_folder(request: web.Request) -> web.Response:
    body = await read_json(request, FolderIn)
    try:
        row = await folders.insert(request.app[appkeys.DB], current_user_id(request), body.name)
    except folders.NameTaken:
        raise _name_taken(body.name) from None
    folder = shaped(Folder, row)
    await _tell_lists(request, {"type": "folder_created", "folder": folder})
    return json_response(folder, 201)


@endpoint("List your folders by name", tag="folders", responses={200: FolderList})
async def list_folders(request: web.Request) -> web.Response:
    rows = await folders.of_user(request.app[appkeys.DB], current_user_id(request))
    return json_response({"items": [shaped(Folder, r) for r in rows]})


@endpoint("Rename a folder", tag="folders", body=FolderIn,
          responses={200: Folder, 404: "no such folder", 409: "a folder of that name exists",
                     422: "invalid input"})
async def rename_folder(request: web.Request) -> web.Response:
    folder_id = parse_id(request.match_info["folder_id"], "folder")
    body = await read_json(request, FolderIn)
    try:
        row = await folders.rename(request.app[appkeys.DB], folder_id, current_user_id(request), body.name)
    except folders.NameTaken:
        raise _name_taken(body.name) from None
    if row is None:
        raise NotFound("folder")
    folder = shaped(Folder, row)
    await _tell_lists(request, {"type": "folder_updated", "folder": folder})
    return json_response(folder)


@endpoint("Delete a folder; its chats move out of it (they are not deleted)", tag="folders",
          responses={204: None, 404: "no such folder"})
async def delete_folder(request: web.Request) -> web.Response:
    folder_id = parse_id(request.match_info["folder_id"], "folder")
    user_id = current_user_id(request)
    async with request.app[appkeys.DB].transaction() as cur:
        moved = await chats.leave_folder(cur, folder_id, user_id)
        if not await folders.delete(cur, folder_id, user_id):
            raise NotFound("folder")
    await _tell_lists(request, {"type": "folder_deleted", "folder_id": str(folder_id)})
    for row in moved:
        await chat_updated(request, row)
    return web.Response(status=204)


async def _tell_lists(request: web.Request, event: dict) -> None:
    await request.app[CHAT_EVENTS].publish_to_user(current_user_id(request), event)

"""Files (docs/rest.md, Files): upload, list, read, download, preview, delete."""

from __future__ import annotations

import asyncio
import datetime as dt
import functools
import uuid
from typing import Literal

import aiofiles.os
import pydantic
from aiohttp import hdrs, web

from chatserver import appkeys
from chatserver.api.access import owned, owned_chat
from chatserver.api.endpoint import current_user_id, endpoint, json_response, read_query
from chatserver.api.ratelimit import TOO_MANY_REQUESTS, check_upload_limit
from chatserver.data import files
from chatserver.errors import NoPreview, NotFound
from chatserver.files.filenames import content_disposition
from chatserver.files.preview import queue_preview
from chatserver.files.sniff import is_text, refine_zip, sniff
from chatserver.files.upload import receive_upload


class File(pydantic.BaseModel):
    id: uuid.UUID
    name: str
    size: int
    content_type: str
    status: Literal["pending", "processing", "ready", "failed"]
    chat_id: uuid.UUID | None
    text_content: str | None
    preview_text: str | None
    has_preview_image: bool
    error: str | None
    created_at: dt.datetime
    processed_at: dt.datetime | None


class FileList(pydantic.BaseModel):
    items: list[File]


class FilesQuery(pydantic.BaseModel):
    model_config = pydantic.ConfigDict(extra="ignore")
    chat_id: str | None = None


UPLOAD_FORM = {
    "type": "object",
    "required": ["file"],
    "properties": {
        "file": {"type": "string", "format": "binary", "description": "the file; at most MAX_UPLOAD_SIZE bytes"},
        "chat_id": {"type": "string", "format": "uuid", "description": "one of your chats"},
    },
}
# what a browser must not do with bytes users uploaded: guess another type, run them
SAFE_HEADERS = {"X-Content-Type-Options": "nosniff", "Content-Security-Policy": "sandbox",
                hdrs.CACHE_CONTROL: "private, no-cache"}


async def owned_file(request: web.Request, columns: Literal["row", "download", "preview", "id"] = "row") -> dict:
    return await owned(request, functools.partial(files.get_owned, columns=columns),
                       request.match_info["file_id"], "file")


@endpoint("Upload a file (streamed); its preview is made in the background", tag="files",
          multipart=UPLOAD_FORM,
          description="Poll `GET /api/files/{file_id}` until `status` is `ready` or `failed`.",
          responses={201: File, 404: "chat_id is not one of your chats", 413: "the file is larger than MAX_UPLOAD_SIZE",
                     415: "the body is not multipart/form-data", 422: "no `file` part, or a malformed body",
                     429: TOO_MANY_REQUESTS, 503: "the preview could not be queued; nothing was stored"})
async def upload_file(request: web.Request) -> web.Response:
    app, user_id = request.app, current_user_id(request)
    await check_upload_limit(request)
    db, storage = app[appkeys.DB], app[appkeys.STORAGE]
    async with receive_upload(request, storage, app[appkeys.SETTINGS].MAX_UPLOAD_SIZE) as upload:
        chat_id = upload.fields.get("chat_id")
        # an empty chat_id is a malformed id, not an absent one
        chat = await owned_chat(request, chat_id) if chat_id is not None else None
        content_type = sniff(upload.head, upload.name, upload.claimed_type)
        content_type = await asyncio.to_thread(refine_zip, upload.temp, content_type)
        storage_name = await storage.keep(upload.temp)
    try:
        row = await files.insert(db, user_id, chat["id"] if chat is not None else None, upload.name, storage_name,
                                 upload.size, upload.sha256, content_type)
    except BaseException:
        await storage.remove(storage_name)
        raise
    try:
        await queue_preview(app, row["id"])
    except BaseException:
        # the upload is undone; a Redis outage becomes a 503 in the middleware
        await files.delete(db, row["id"])
        await storage.remove(storage_name)
        raise
    return json_response(File(**row), 201)


@endpoint("List your files, newest first", tag="files", query=FilesQuery,
          responses={200: FileList, 404: "chat_id is not one of your chats",
                     422: "chat_id holds a character no id has (NUL)"})
async def list_files(request: web.Request) -> web.Response:
    query = read_query(request, FilesQuery)
    chat = await owned_chat(request, query.chat_id) if query.chat_id is not None else None
    chat_id = chat["id"] if chat is not None else None
    rows = await files.list_owned(request.app[appkeys.DB], current_user_id(request), chat_id)
    return json_response(FileList(items=[File(**r) for r in rows]))


@endpoint("Read a file's metadata, status and extracted text", tag="files",
          responses={200: File, 404: "no such file"})
async def get_file(request: web.Request) -> web.Response:
    return json_response(File(**await owned_file(request)))


@endpoint("Download the original bytes", tag="files",
          responses={200: {"description": "the file, as an attachment, with its content type",
                           "content": {"*/*": {"schema": {"type": "string", "format": "binary"}}}},
                     404: "no such file"})
async def get_content(request: web.Request) -> web.StreamResponse:
    row = await owned_file(request, "download")
    path = request.app[appkeys.STORAGE].path(row["storage_name"])
    if not await aiofiles.os.path.isfile(path):
        raise NotFound("file content")
    return web.FileResponse(path, headers={
        hdrs.CONTENT_TYPE: _with_charset(row["content_type"]),
        hdrs.CONTENT_DISPOSITION: content_disposition(row["name"]),
        **SAFE_HEADERS,
    })


@endpoint("The preview: a thumbnail for images, else the preview text", tag="files",
          responses={200: {"description": "the thumbnail (PNG or JPEG) or the preview text",
                           "content": {"image/png": {}, "image/jpeg": {}, "text/plain": {}}},
                     404: "no such file, or no preview yet"})
async def get_preview(request: web.Request) -> web.StreamResponse:
    row = await owned_file(request, "preview")
    if row["status"] == "ready" and row["preview_image"]:
        path = request.app[appkeys.STORAGE].preview_path(row["preview_image"])
        if await aiofiles.os.path.isfile(path):
            kind = "image/png" if row["preview_image"].endswith(".png") else "image/jpeg"
            return web.FileResponse(path, headers={hdrs.CONTENT_TYPE: kind, **SAFE_HEADERS})
    if row["status"] == "ready" and row["preview_text"] is not None:
        return web.Response(text=row["preview_text"], content_type="text/plain", charset="utf-8",
                            headers=SAFE_HEADERS)
    raise NoPreview()


@endpoint("Delete a file, its stored bytes and its thumbnail", tag="files",
          responses={204: None, 404: "no such file"})
async def delete_file(request: web.Request) -> web.Response:
    row = await owned_file(request, "id")
    deleted = await files.delete(request.app[appkeys.DB], row["id"])
    if deleted is None:
        raise NotFound("file")
    await request.app[appkeys.STORAGE].remove(deleted["storage_name"], deleted["preview_image"])
    return web.Response(status=204)


def _with_charset(content_type: str) -> str:
    return f"{content_type}; charset=utf-8" if is_text(content_type) else content_type

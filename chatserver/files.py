"""Files (API.md "Files"): upload, list, read, download, preview, delete."""

from __future__ import annotations

import asyncio
import datetime as dt
import logging
import uuid
from typing import Literal

import aiofiles.os
import pydantic
from aiohttp import hdrs, web

from . import appkeys
from .auth import current_user_id
from .chats import CHAT_DELETED, get_owned_chat
from .db import Database
from .endpoint import endpoint, json_response, read_query
from .errors import ApiError, not_found
from .filenames import content_disposition
from .preview.job import queue_preview
from .sniff import is_text, refine_zip, sniff
from .upload import receive_upload

log = logging.getLogger(__name__)


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
FILE_COLUMNS = """id, name, size, content_type, status, chat_id, text_content, preview_text,
                  preview_image IS NOT NULL AS has_preview_image, error, created_at, processed_at"""
# what a browser must not do with bytes users uploaded: guess another type, run them
SAFE_HEADERS = {"X-Content-Type-Options": "nosniff", "Content-Security-Policy": "sandbox",
                hdrs.CACHE_CONTROL: "private, no-cache"}


async def get_owned_file(db: Database, file_id: str, user_id: uuid.UUID, columns: str = FILE_COLUMNS) -> dict:
    """The file if it exists and is the user's; 404 otherwise (also for a malformed id)."""
    try:
        file_uuid = uuid.UUID(file_id)
    except ValueError:
        raise not_found("file") from None
    row = await db.fetchrow(f"SELECT {columns} FROM files WHERE id = %s AND user_id = %s", (file_uuid, user_id))
    if row is None:
        raise not_found("file")
    return row


@endpoint("Upload a file (streamed); its preview is made in the background", tag="files",
          multipart=UPLOAD_FORM,
          description="Poll `GET /api/files/{file_id}` until `status` is `ready` or `failed`.",
          responses={201: File, 404: "chat_id is not one of your chats", 413: "the file is larger than MAX_UPLOAD_SIZE",
                     415: "the body is not multipart/form-data", 422: "no `file` part, or a malformed body",
                     503: "the preview could not be queued; nothing was stored"})
async def upload_file(request: web.Request) -> web.Response:
    app, user_id = request.app, current_user_id(request)
    db, storage = app[appkeys.DB], app[appkeys.STORAGE]
    async with receive_upload(request, storage, app[appkeys.SETTINGS].MAX_UPLOAD_SIZE) as upload:
        chat_id = upload.fields.get("chat_id")
        chat = await get_owned_chat(db, chat_id, user_id) if chat_id else None
        content_type = sniff(upload.head, upload.name, upload.claimed_type)
        content_type = await asyncio.to_thread(refine_zip, upload.temp, content_type)
        storage_name = await storage.keep(upload.temp)
    try:
        row = await db.fetchrow(
            f"""
            INSERT INTO files (user_id, chat_id, name, storage_name, size, sha256, content_type)
            VALUES (%s, %s, %s, %s, %s, %s, %s)
            RETURNING {FILE_COLUMNS}
            """,
            (user_id, chat and chat["id"], upload.name, storage_name, upload.size, upload.sha256, content_type),
        )
    except BaseException:
        await storage.remove(storage_name)
        raise
    try:
        await queue_preview(app, row["id"])
    except Exception:
        log.exception("could not queue the preview of file %s; the upload is undone", row["id"])
        await db.execute("DELETE FROM files WHERE id = %s", (row["id"],))
        await storage.remove(storage_name)
        raise ApiError(503, "the preview queue is unavailable; try again", "unavailable") from None
    return json_response(File(**row), 201)


@endpoint("List your files, newest first", tag="files", query=FilesQuery,
          responses={200: FileList, 404: "chat_id is not one of your chats"})
async def list_files(request: web.Request) -> web.Response:
    db, user_id = request.app[appkeys.DB], current_user_id(request)
    query = read_query(request, FilesQuery)
    chat = await get_owned_chat(db, query.chat_id, user_id) if query.chat_id is not None else None
    rows = await db.fetch(
        f"""
        SELECT {FILE_COLUMNS} FROM files
        WHERE user_id = %(user)s AND (%(chat)s::uuid IS NULL OR chat_id = %(chat)s)
        ORDER BY created_at DESC, id DESC
        """,
        {"user": user_id, "chat": chat and chat["id"]},
    )
    return json_response(FileList(items=[File(**r) for r in rows]))


@endpoint("Read a file's metadata, status and extracted text", tag="files",
          responses={200: File, 404: "no such file"})
async def get_file(request: web.Request) -> web.Response:
    row = await get_owned_file(request.app[appkeys.DB], request.match_info["file_id"], current_user_id(request))
    return json_response(File(**row))


@endpoint("Download the original bytes", tag="files",
          responses={200: {"description": "the file, as an attachment, with its content type",
                           "content": {"*/*": {"schema": {"type": "string", "format": "binary"}}}},
                     404: "no such file"})
async def get_content(request: web.Request) -> web.StreamResponse:
    row = await get_owned_file(request.app[appkeys.DB], request.match_info["file_id"], current_user_id(request),
                               "name, storage_name, content_type")
    path = request.app[appkeys.STORAGE].path(row["storage_name"])
    if not await aiofiles.os.path.isfile(path):
        raise not_found("file content")
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
    row = await get_owned_file(request.app[appkeys.DB], request.match_info["file_id"], current_user_id(request),
                               "status, preview_text, preview_image")
    if row["status"] == "ready" and row["preview_image"]:
        path = request.app[appkeys.STORAGE].preview_path(row["preview_image"])
        if await aiofiles.os.path.isfile(path):
            kind = "image/png" if row["preview_image"].endswith(".png") else "image/jpeg"
            return web.FileResponse(path, headers={hdrs.CONTENT_TYPE: kind, **SAFE_HEADERS})
    if row["status"] == "ready" and row["preview_text"] is not None:
        return web.Response(text=row["preview_text"], content_type="text/plain", charset="utf-8",
                            headers=SAFE_HEADERS)
    raise ApiError(404, "this file has no preview (yet)", "not_found")


@endpoint("Delete a file, its stored bytes and its thumbnail", tag="files",
          responses={204: None, 404: "no such file"})
async def delete_file(request: web.Request) -> web.Response:
    row = await get_owned_file(request.app[appkeys.DB], request.match_info["file_id"], current_user_id(request),
                               "id")
    deleted = await request.app[appkeys.DB].fetchrow(
        "DELETE FROM files WHERE id = %s RETURNING storage_name, preview_image", (row["id"],))
    if deleted is None:
        raise not_found("file")
    await request.app[appkeys.STORAGE].remove(deleted["storage_name"], deleted["preview_image"])
    return web.Response(status=204)


async def remove_chat_files(app: web.Application, chat_id: uuid.UUID) -> None:
    """Chat deletion hook: rows first, then their bytes, so no row outlives its bytes."""
    rows = await app[appkeys.DB].fetch(
        "DELETE FROM files WHERE chat_id = %s RETURNING storage_name, preview_image", (chat_id,))
    for row in rows:
        await app[appkeys.STORAGE].remove(row["storage_name"], row["preview_image"])


def _with_charset(content_type: str) -> str:
    return f"{content_type}; charset=utf-8" if is_text(content_type) else content_type


def setup_routes(app: web.Application) -> None:
    app.setdefault(CHAT_DELETED, []).append(remove_chat_files)
    app.router.add_post("/api/files", upload_file)
    app.router.add_get("/api/files", list_files)
    app.router.add_get("/api/files/{file_id}", get_file)
    app.router.add_get("/api/files/{file_id}/content", get_content)
    app.router.add_get("/api/files/{file_id}/preview", get_preview)
    app.router.add_delete("/api/files/{file_id}", delete_file)

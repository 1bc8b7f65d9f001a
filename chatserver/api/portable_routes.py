"""Export and import (docs/rest.md, Export and import): a chat as Markdown or as
one conversation of ChatGPT's `conversations.json`; all of a user's chats
streamed as that file; import of such a file or a ChatGPT export ZIP."""

from __future__ import annotations

import contextlib
import datetime as dt
import re
import uuid
from collections.abc import Iterator
from typing import Literal

import pydantic
from aiohttp import hdrs, web

from chatserver import appkeys
from chatserver.api.access import owned, owned_chat
from chatserver.api.endpoint import current_user_id, endpoint, json_response, read_query
from chatserver.data import chats, imports, messages
from chatserver.errors import TooManyExports, UnreadableImport
from chatserver.files.filenames import content_disposition
from chatserver.files.upload import receive_upload
from chatserver.portable import chatgpt, exporter, import_job, importer

# chats read per query while streaming the export of everything
EXPORT_PAGE = 100
# the longest branch a Markdown export walks
MAX_BRANCH = 1_000_000
# RFC 7240's request and answer headers
PREFER = "Prefer"
PREFERENCE_APPLIED = "Preference-Applied"


IMPORT_FORM = {
    "type": "object",
    "required": ["file"],
    "properties": {"file": {"type": "string", "format": "binary",
                            "description": "conversations.json or a ChatGPT export ZIP; "
                                           "at most MAX_UPLOAD_SIZE bytes"}},
}


class ExportQuery(pydantic.BaseModel):
    model_config = pydantic.ConfigDict(extra="ignore")
    format: Literal["markdown", "json"] = "markdown"


class Imported(pydantic.BaseModel):
    imported: int
    skipped: int


def _file_name(title: str, extension: str) -> str:
    stem = re.sub(r"[^\w\- ]+", "", title).strip()[:80] or "chat"
    return f"{stem}.{extension}"


@endpoint("Export a chat as Markdown (its shown branch) or as one conversation of conversations.json "
          "(every branch)", tag="export", query=ExportQuery,
          responses={200: "an attachment", 404: "no such chat", 422: "unknown format"})
async def export_chat(request: web.Request) -> web.StreamResponse:
    db = request.app[appkeys.DB]
    chat = await owned_chat(request)
    query = read_query(request, ExportQuery)
    if query.format == "json":
        response = _attachment(_file_name(chat["title"], "json"), "application/json")
        await response.prepare(request)
        await response.write(b"[")
        await _write_conversation(response, db, chat)
        await response.write(b"]")
        await response.write_eof()
        return response
    branch = []
    if chat["shown_leaf"] is not None:
        branch = (await messages.branch_page(db, chat["id"], current_user_id(request), chat["shown_leaf"],
                                             MAX_BRANCH))[::-1]
    return web.Response(text=chatgpt.markdown(chat, branch), content_type="text/markdown", charset="utf-8",
                        headers={hdrs.CONTENT_DISPOSITION: content_disposition(_file_name(chat["title"], "md"))})


def _attachment(name: str, content_type: str) -> web.StreamResponse:
    return web.StreamResponse(headers={hdrs.CONTENT_TYPE: f"{content_type}; charset=utf-8",
                                       hdrs.CONTENT_DISPOSITION: content_disposition(name)})


async def _write_conversation(response: web.StreamResponse, db, chat: dict) -> None:
    """Written as read: each write waits until the client has taken enough of
    the last, so a slow client holds back the reading, not the memory."""
    async for piece in exporter.conversation_pieces(db, chat):
        await response.write(piece.encode())


class ExportSlots:
    """The exports of everything running in this process: at most `limit`
    at once, and one per user, so that exports cannot take every database
    connection and the event loop's time from the other requests."""

    def __init__(self, limit: int):
        self.limit = limit
        self.users: set[uuid.UUID] = set()

    @contextlib.contextmanager
    def taken(self, user_id: uuid.UUID) -> Iterator[None]:
        if user_id in self.users:
            raise _busy("an export of yours is running; try again once it has finished")
        if len(self.users) >= self.limit:
            raise _busy("the server is busy with other exports; try again shortly")
        self.users.add(user_id)
        try:
            yield
        finally:
            self.users.discard(user_id)


EXPORTS = web.AppKey("exports", ExportSlots)
# what a refused export is told to wait, in seconds
EXPORT_RETRY_AFTER = 5


def _busy(message: str) -> TooManyExports:
    return TooManyExports(message, EXPORT_RETRY_AFTER)


@endpoint("Export every chat as conversations.json, streamed", tag="export",
          responses={200: "an attachment conversations.json",
                     429: "an export of this user's is running, or EXPORT_CONCURRENCY exports are "
                          "(code too_many_exports, with Retry-After)"})
async def export_all(request: web.Request) -> web.StreamResponse:
    db, user_id = request.app[appkeys.DB], current_user_id(request)
    with request.app[EXPORTS].taken(user_id):
        response = _attachment("conversations.json", "application/json")
        await response.prepare(request)
        await response.write(b"[")
        after, first = None, True
        while True:
            page = await chats.page(db, user_id, after, EXPORT_PAGE)
            for chat in page:
                if not first:
                    await response.write(b",\n")
                await _write_conversation(response, db, chat)
                first = False
            if len(page) < EXPORT_PAGE:
                break
            after = (page[-1]["updated_at"], page[-1]["id"])
        await response.write(b"]\n")
        await response.write_eof()
        return response


ASYNC_PREFERENCE = "respond-async"


class ImportStatus(pydantic.BaseModel):
    """An import running in the background: progress, then its result or its error"""
    id: uuid.UUID
    status: Literal["queued", "running", "done", "failed"]
    total: int | None = pydantic.Field(description="conversations in the file, once it has been read")
    done: int = pydantic.Field(description="conversations stored so far (reported every few)")
    imported: int | None = pydantic.Field(description="when done")
    skipped: int | None = pydantic.Field(description="when done")
    error: str | None = pydantic.Field(description="when failed: why the file could not be imported")
    created_at: dt.datetime
    finished_at: dt.datetime | None


ACCEPTED = {
    "description": "with `Prefer: respond-async`: the import runs in the background; "
                   "`GET /api/imports/{id}` (the Location) reports it",
    "headers": {"Location": {"schema": {"type": "string"}, "description": "/api/imports/{id}"},
                "Preference-Applied": {"schema": {"type": "string", "const": ASYNC_PREFERENCE}}},
    "content": {"application/json": {"schema": {"$ref": "#/components/schemas/ImportStatus"}}},
}


def _prefers_async(request: web.Request) -> bool:
    """RFC 7240: `Prefer: respond-async`, among other preferences and parameters."""
    return any(preference.split(";")[0].split("=")[0].strip().lower() == ASYNC_PREFERENCE
               for header in request.headers.getall(PREFER, []) for preference in header.split(","))


@endpoint("Import a conversations.json (ChatGPT's or ours) or a ChatGPT export ZIP; all or nothing",
          tag="export", multipart=IMPORT_FORM,
          description="With the request header `Prefer: respond-async` the import runs in the background "
                      "and the answer is 202 with the import's state; without it, the answer comes when "
                      "the import is done.",
          responses={200: Imported, 202: ACCEPTED, 413: "larger than MAX_UPLOAD_SIZE",
                     415: "the body is not multipart/form-data", 422: "a file that cannot be read"})
async def import_file(request: web.Request) -> web.Response:
    app, user_id = request.app, current_user_id(request)
    limit = app[appkeys.SETTINGS].MAX_UPLOAD_SIZE
    async with receive_upload(request, app[appkeys.STORAGE], limit) as upload:
        if _prefers_async(request):
            row = await import_job.queue_import(app, user_id, upload.temp)
            response = json_response(ImportStatus(**row), 202)
            response.headers[hdrs.LOCATION] = f"/api/imports/{row['id']}"
            response.headers[PREFERENCE_APPLIED] = ASYNC_PREFERENCE
            return response
        try:
            conversations = await importer.read(upload.temp, limit)
        except chatgpt.Unreadable as exc:
            raise UnreadableImport(f"file: {exc}") from None
    counts = await importer.store(app[appkeys.DB], user_id, conversations)
    return json_response(Imported(imported=counts.imported, skipped=counts.skipped))


@endpoint("An import running in the background: its progress, then its result or error", tag="export",
          responses={200: ImportStatus, 404: "no such import"})
async def get_import(request: web.Request) -> web.Response:
    row = await owned(request, imports.get_owned, request.match_info["import_id"], "import")
    return json_response(ImportStatus(**row))

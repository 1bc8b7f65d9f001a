"""Export and import (docs/rest.md, Export and import): a chat as Markdown or as
one conversation of ChatGPT's `conversations.json`; all of a user's chats
streamed as that file; import of such a file or a ChatGPT export ZIP."""

from __future__ import annotations

import json
import re
import uuid
from typing import Literal

import aiofiles
import pydantic
from aiohttp import hdrs, web

from chatserver import appkeys
from chatserver.api.chats import owned_chat
from chatserver.api.endpoint import current_user_id, endpoint, json_response, read_query
from chatserver.data import chats, messages
from chatserver.errors import ApiError
from chatserver.files.filenames import content_disposition
from chatserver.files.upload import receive_upload
from chatserver.portable import chatgpt

# chats read per query while streaming the export of everything
EXPORT_PAGE = 100
# the longest branch a Markdown export walks
MAX_BRANCH = 1_000_000


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
async def export_chat(request: web.Request) -> web.Response:
    db = request.app[appkeys.DB]
    chat = await owned_chat(request)
    query = read_query(request, ExportQuery)
    if query.format == "json":
        body = json.dumps([chatgpt.conversation(chat, await messages.whole_chat(db, chat["id"]))],
                          ensure_ascii=False)
        name, content_type = _file_name(chat["title"], "json"), "application/json"
    else:
        branch = []
        if chat["shown_leaf"] is not None:
            branch = (await messages.branch_page(db, chat["id"], current_user_id(request), chat["shown_leaf"],
                                                 MAX_BRANCH))[::-1]
        body, name, content_type = chatgpt.markdown(chat, branch), _file_name(chat["title"], "md"), "text/markdown"
    return web.Response(text=body, content_type=content_type, charset="utf-8",
                        headers={hdrs.CONTENT_DISPOSITION: content_disposition(name)})


@endpoint("Export every chat as conversations.json, streamed", tag="export",
          responses={200: "an attachment conversations.json"})
async def export_all(request: web.Request) -> web.StreamResponse:
    db, user_id = request.app[appkeys.DB], current_user_id(request)
    response = web.StreamResponse(headers={hdrs.CONTENT_TYPE: "application/json; charset=utf-8",
                                           hdrs.CONTENT_DISPOSITION: content_disposition("conversations.json")})
    await response.prepare(request)
    await response.write(b"[")
    after, first = None, True
    while True:
        page = await chats.page(db, user_id, after, EXPORT_PAGE)
        for chat in page:
            item = chatgpt.conversation(chat, await messages.whole_chat(db, chat["id"]))
            await response.write((b"" if first else b",\n") + json.dumps(item, ensure_ascii=False).encode())
            first = False
        if len(page) < EXPORT_PAGE:
            break
        after = (page[-1]["updated_at"], page[-1]["id"])
    await response.write(b"]\n")
    await response.write_eof()
    return response


@endpoint("Import a conversations.json (ChatGPT's or ours) or a ChatGPT export ZIP; all or nothing",
          tag="export", multipart=IMPORT_FORM,
          responses={200: Imported, 413: "larger than MAX_UPLOAD_SIZE", 415: "the body is not multipart/form-data",
                     422: "a file that cannot be read"})
async def import_file(request: web.Request) -> web.Response:
    app, user_id = request.app, current_user_id(request)
    limit = app[appkeys.SETTINGS].MAX_UPLOAD_SIZE
    async with receive_upload(request, app[appkeys.STORAGE], limit) as upload, \
            aiofiles.open(upload.temp, "rb") as source:
        data = await source.read()
    try:
        conversations = chatgpt.read_file(data, limit)
    except chatgpt.Unreadable as exc:
        raise ApiError(422, f"file: {exc}", "unreadable_import") from None
    own = await chats.owned_among(app[appkeys.DB], user_id, [u for u in map(_as_id, conversations) if u])
    imported = skipped = 0
    async with app[appkeys.DB].transaction() as cur:
        for conversation in conversations:
            if _as_id(conversation) in own:
                skipped += 1
                continue
            ids = chatgpt.new_ids(conversation.nodes)
            chat_id = await chats.insert_imported(
                cur, user_id, conversation.title, conversation.created, conversation.updated,
                ids.get(conversation.shown) if conversation.shown else _newest(conversation, ids),
                conversation.source)
            if chat_id is None:
                skipped += 1
                continue
            if conversation.nodes:
                await messages.insert_imported(cur, chat_id, user_id, [
                    {"id": ids[n.key], "parent_id": ids[n.parent] if n.parent else None, "role": n.role,
                     "content": n.text, "created_at": n.created} for n in conversation.nodes])
            imported += 1
    return json_response(Imported(imported=imported, skipped=skipped))


def _as_id(conversation: chatgpt.Conversation) -> uuid.UUID | None:
    try:
        return uuid.UUID(conversation.original_id)
    except ValueError:
        return None


def _newest(conversation: chatgpt.Conversation, ids: dict[str, uuid.UUID]) -> uuid.UUID | None:
    """With no readable current_node, the newest message's branch is shown."""
    if not conversation.nodes:
        return None
    return ids[max(conversation.nodes, key=lambda n: n.created).key]

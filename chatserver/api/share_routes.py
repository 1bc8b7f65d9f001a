"""Share links: share a chat's shown branch as a read-only snapshot, list and
revoke one's links; and reading a link, as JSON or as an HTML page, without
an account.

A link's token is 32 random bytes (base64url): it cannot be guessed, and is
the only thing that opens the snapshot. The snapshot is copied at the time
of sharing and holds only text, so later messages, other branches, files and
anything about the owner are never reachable through it. Revoking deletes the
row; nothing is cached, so the link stops working at once on every process.
"""

from __future__ import annotations

import datetime as dt
import secrets
import uuid
from typing import Annotated, Literal

import pydantic
from aiohttp import web

from chatserver import appkeys
from chatserver.api import shared_page
from chatserver.api.access import owned_chat, parse_id
from chatserver.api.endpoint import current_user_id, dumps, endpoint, json_response
from chatserver.api.web_assets import PREFIX, asset_version
from chatserver.data import messages, shares
from chatserver.errors import EmptyChat, NotFound

# a snapshot keeps at most this many of the newest messages of the branch
SHARE_MAX_MESSAGES = 1000
_TOKEN_SHAPE = pydantic.TypeAdapter(
    Annotated[str, pydantic.StringConstraints(min_length=20, max_length=100, pattern=r"^[A-Za-z0-9_-]+$")])


class SharedSource(pydantic.BaseModel):
    title: str
    url: str


class SharedMessage(pydantic.BaseModel):
    role: Literal["user", "assistant"]
    content: str
    sources: list[SharedSource]
    created_at: dt.datetime


class Shared(pydantic.BaseModel):
    """What a link shows: the chat's title and the snapshot of its shown branch"""
    title: str
    created_at: dt.datetime
    messages: list[SharedMessage]


class Share(pydantic.BaseModel):
    id: uuid.UUID
    chat_id: uuid.UUID
    title: str
    token: str
    url: str = pydantic.Field(description="the page of the link, /s/{token}, absolute")
    created_at: dt.datetime
    message_count: int


class ShareList(pydantic.BaseModel):
    items: list[Share]


def _share_out(request: web.Request, row: dict) -> dict:
    base = request.app[appkeys.SETTINGS].PUBLIC_BASE_URL.rstrip("/") or f"{request.scheme}://{request.host}"
    return {"id": row["id"], "chat_id": row["chat_id"], "title": row["title"], "token": row["token"],
            "url": f"{base}/s/{row['token']}", "created_at": row["created_at"],
            "message_count": row["message_count"]}


def _snapshot_message(row: dict) -> dict:
    return {"role": row["role"], "content": row["content"],
            "sources": [{"title": s.get("title", ""), "url": s.get("url", "")} for s in row["sources"]],
            "created_at": row["created_at"]}


@endpoint("Share a chat: a read-only snapshot of its shown branch as it is now, behind a new link",
          tag="sharing", responses={201: Share, 404: "no such chat", 409: "nothing to share yet"})
async def create_share(request: web.Request) -> web.Response:
    db, user_id = request.app[appkeys.DB], current_user_id(request)
    chat = await owned_chat(request)
    branch = await messages.branch_page(db, chat["id"], user_id, None, SHARE_MAX_MESSAGES)
    # answers still being written, failed or cancelled are not part of what is shared
    kept = [_snapshot_message(r) for r in reversed(branch) if r["role"] == "user" or r["status"] == "complete"]
    if not kept:
        raise EmptyChat()
    row = await shares.insert(db, user_id, chat["id"], secrets.token_urlsafe(32), chat["title"],
                              dumps(kept).decode(), len(kept))
    return json_response(_share_out(request, row), 201)


@endpoint("List your share links, newest first", tag="sharing", responses={200: ShareList})
async def list_shares(request: web.Request) -> web.Response:
    rows = await shares.of_user(request.app[appkeys.DB], current_user_id(request))
    return json_response({"items": [_share_out(request, r) for r in rows]})


@endpoint("Revoke a share link; it stops working at once", tag="sharing",
          responses={204: None, 404: "no such share"})
async def delete_share(request: web.Request) -> web.Response:
    share_id = parse_id(request.match_info["share_id"], "share")
    if not await shares.delete(request.app[appkeys.DB], share_id, current_user_id(request)):
        raise NotFound("share")
    return web.Response(status=204)


async def _snapshot(request: web.Request) -> dict:
    token = request.match_info["token"]
    try:
        _TOKEN_SHAPE.validate_python(token)
    except pydantic.ValidationError:
        raise NotFound("shared chat") from None
    row = await shares.by_token(request.app[appkeys.DB], token)
    if row is None:
        raise NotFound("shared chat")
    return row


def _private(response: web.Response) -> web.Response:
    # a revoked link must not live on in a cache, and no search engine may keep it
    response.headers["Cache-Control"] = "no-store"
    response.headers["X-Robots-Tag"] = "noindex, nofollow"
    response.headers["Referrer-Policy"] = "no-referrer"
    response.headers["X-Content-Type-Options"] = "nosniff"
    return response


@endpoint("Read a shared chat (no account needed)", tag="sharing", public=True,
          responses={200: Shared, 404: "unknown or revoked link"})
async def get_shared(request: web.Request) -> web.Response:
    row = await _snapshot(request)
    return _private(json_response({"title": row["title"], "created_at": row["created_at"],
                                   "messages": row["messages"]}))


SHARED_PAGE_POLICY = ("default-src 'none'; style-src 'self'; img-src 'self'; base-uri 'none'; "
                      "form-action 'none'; frame-ancestors 'none'")


async def shared_html(request: web.Request) -> web.Response:
    """GET /s/{token}: the snapshot as a page, with no script at all."""
    row = await _snapshot(request)
    stylesheet = f"{PREFIX}/{asset_version()}/share.css"
    response = web.Response(text=shared_page.page(row, stylesheet), content_type="text/html", charset="utf-8")
    response.headers["Content-Security-Policy"] = SHARED_PAGE_POLICY
    response.headers["X-Frame-Options"] = "DENY"
    return _private(response)

"""Ownership checks: the row a path or query names, if it is the current
user's. A malformed id, a missing row and another user's row are one answer
(404), so that ids cannot be probed."""

from __future__ import annotations

import uuid
from collections.abc import Awaitable, Callable

from aiohttp import web

from chatserver import appkeys
from chatserver.api.endpoint import OWN_QUOTA, current_user_id
from chatserver.data import chats, messages, users
from chatserver.errors import AdminsOnly, NotFound, Unauthorized

ACCOUNT_GONE = "the account of this token does not exist or is disabled"


async def account_check(request: web.Request) -> None:
    """401 when the current user's account is gone or disabled (also for a
    `checks_account` handler whose queries found nothing: is that why?).
    The account's own quotas come with the same read (OWN_QUOTA)."""
    own = await users.active_quota(request.app[appkeys.DB], current_user_id(request))
    if own is None:
        raise Unauthorized(ACCOUNT_GONE)
    request[OWN_QUOTA] = own


async def admin_check(request: web.Request) -> None:
    """403 unless the current user is an administrator (read on every call:
    a role taken away holds at once, in every process)."""
    if await users.role_of(request.app[appkeys.DB], current_user_id(request)) != "admin":
        raise AdminsOnly()


def parse_id(raw: str | None, what: str) -> uuid.UUID:
    """An id from a path or query; a malformed one is answered like a missing one."""
    try:
        return uuid.UUID(raw or "")
    except ValueError:
        raise NotFound(what) from None


async def owned(request: web.Request, lookup: Callable[..., Awaitable[dict | None]], raw: str | None,
                what: str) -> dict:
    """The row `lookup(db, id, user_id)` finds, or 404."""
    row = await lookup(request.app[appkeys.DB], parse_id(raw, what), current_user_id(request))
    if row is None:
        await account_check(request)
        raise NotFound(what)
    return row


async def owned_chat(request: web.Request, raw: str | None = None) -> dict:
    """The chat of the path (or of `raw`) if it is the user's; 404 otherwise."""
    return await owned(request, chats.get_owned, request.match_info["chat_id"] if raw is None else raw, "chat")


async def owned_message(request: web.Request) -> dict:
    return await owned(request, messages.get_owned, request.match_info["message_id"], "message")

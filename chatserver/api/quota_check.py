"""The daily quotas at post time (docs/admin.md, Quotas): the user's own
limits, else the server's, checked and counted in Redis (live/quotas.py)."""

from __future__ import annotations

import uuid

from aiohttp import web

from chatserver import appkeys
from chatserver.api.endpoint import current_user_id
from chatserver.data import users
from chatserver.errors import InsufficientQuota, QuotaExceeded
from chatserver.live.quotas import QUOTAS, Limits, seconds_left_today


async def limits_of(app: web.Application, user_id: uuid.UUID) -> Limits:
    settings = app[appkeys.SETTINGS]
    own = await users.quota_of(app[appkeys.DB], user_id) or {}
    tokens, messages = own.get("quota_tokens_per_day"), own.get("quota_messages_per_day")
    return Limits(tokens=settings.QUOTA_TOKENS_PER_DAY if tokens is None else tokens,
                  messages=settings.QUOTA_MESSAGES_PER_DAY if messages is None else messages)


async def check_quota(request: web.Request, user_id: uuid.UUID | None = None, *, openai: bool = False) -> None:
    """Count one message of the user; 429 (quota_exceeded, or OpenAI's
    insufficient_quota on /v1) until the UTC day ends when a limit is reached."""
    app = request.app
    user_id = user_id or current_user_id(request)
    reached = await app[QUOTAS].take_message(user_id, await limits_of(app, user_id))
    if reached is not None:
        kind = InsufficientQuota if openai else QuotaExceeded
        raise kind("token" if reached == "tokens" else "message", seconds_left_today())

"""The daily quotas at post time (docs/admin.md, Quotas): the user's own
limits, else the server's, checked and counted in Redis (live/quotas.py)."""

from __future__ import annotations

import uuid

from aiohttp import web

from chatserver import appkeys
from chatserver.api.endpoint import OWN_QUOTA, current_user_id
from chatserver.data import users
from chatserver.errors import InsufficientQuota, QuotaExceeded
from chatserver.live.quotas import QUOTAS, Limits, seconds_left_today


def _limits(settings, own: dict | None) -> Limits:
    """The account's own quotas (users.OWN_QUOTA), else the server's."""
    tokens, messages = (own or {}).get("quota_tokens_per_day"), (own or {}).get("quota_messages_per_day")
    return Limits(tokens=settings.QUOTA_TOKENS_PER_DAY if tokens is None else tokens,
                  messages=settings.QUOTA_MESSAGES_PER_DAY if messages is None else messages)


async def limits_of(app: web.Application, user_id: uuid.UUID) -> Limits:
    return _limits(app[appkeys.SETTINGS], await users.quota_of(app[appkeys.DB], user_id))


async def check_quota(request: web.Request, *, openai: bool = False) -> None:
    """Count one message of the current user; 429 (quota_exceeded, or OpenAI's
    insufficient_quota on /v1) until the UTC day ends when a limit is reached.
    The limits are the ones the credential check read with the account (OWN_QUOTA)."""
    app = request.app
    limits = _limits(app[appkeys.SETTINGS], request[OWN_QUOTA])
    reached = await app[QUOTAS].take_message(current_user_id(request), limits)
    if reached is not None:
        kind = InsufficientQuota if openai else QuotaExceeded
        raise kind("token" if reached == "tokens" else "message", seconds_left_today())

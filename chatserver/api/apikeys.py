"""API keys: create (the key is shown once), list, revoke; and finding the
user of a key for the credential check (auth.py) and /v1. Deleting a key
also closes what is open with it, in every process (live/revocation.py).

A key is 32 random bytes behind a recognisable `cs-` prefix. The server keeps
only HMAC-SHA256 of it under a key derived from JWT_SECRET: a long random key
needs no slow hash, so checking one costs a single indexed query. Nothing
about a key is cached in a process, so a deleted key fails at once everywhere.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import hmac
import secrets
import uuid
from typing import Annotated

import pydantic
from aiohttp import web

from chatserver import appkeys, outage
from chatserver.api.endpoint import (
    current_user_id,
    endpoint,
    json_response,
    parse_id,
    read_json,
)
from chatserver.data import api_keys
from chatserver.errors import not_found
from chatserver.live.revocation import announce
from chatserver.secret import derived_key

KEY_PREFIX = "cs-"
# how much of a key lists show: the marker and a few random characters
SHOWN_CHARACTERS = len(KEY_PREFIX) + 8


class KeyIn(pydantic.BaseModel):
    model_config = pydantic.ConfigDict(extra="ignore", strict=True)
    name: Annotated[str, pydantic.StringConstraints(strip_whitespace=True, min_length=1, max_length=100)]


class ApiKey(pydantic.BaseModel):
    id: uuid.UUID
    name: str
    prefix: str
    created_at: dt.datetime
    last_used_at: dt.datetime | None


class NewApiKey(pydantic.BaseModel):
    id: uuid.UUID
    name: str
    key: str
    prefix: str
    created_at: dt.datetime


class ApiKeyList(pydantic.BaseModel):
    items: list[ApiKey]


def is_api_key(token: str) -> bool:
    return token.startswith(KEY_PREFIX)


def key_hash(settings, key: str) -> bytes:
    return hmac.new(derived_key(settings, "API key hashes"), key.encode(), hashlib.sha256).digest()


async def key_of(app: web.Application, key: str) -> dict | None:
    """The key's `id` and `user_id`, or None for an unknown (or deleted) key."""
    db = app[appkeys.DB]
    row = await api_keys.find(db, key_hash(app[appkeys.SETTINGS], key))
    if row is not None and row["stale"]:
        await api_keys.mark_used(db, row["id"])
    return row


@endpoint("Create an API key; the answer is the only time the key is shown", tag="keys", body=KeyIn,
          responses={201: NewApiKey, 422: "invalid input"})
async def create_key(request: web.Request) -> web.Response:
    body = await read_json(request, KeyIn)
    key = KEY_PREFIX + secrets.token_urlsafe(32)
    row = await api_keys.insert(request.app[appkeys.DB], current_user_id(request), body.name,
                                key[:SHOWN_CHARACTERS], key_hash(request.app[appkeys.SETTINGS], key))
    return json_response(NewApiKey(key=key, **{k: row[k] for k in ("id", "name", "prefix", "created_at")}), 201)


@endpoint("List your API keys (never the keys themselves)", tag="keys", responses={200: ApiKeyList})
async def list_keys(request: web.Request) -> web.Response:
    rows = await api_keys.of_user(request.app[appkeys.DB], current_user_id(request))
    return json_response(ApiKeyList(items=[ApiKey(**r) for r in rows]))


@endpoint("Delete an API key; it stops working at once", tag="keys",
          responses={204: None, 404: "no such key"})
async def delete_key(request: web.Request) -> web.Response:
    key_id = parse_id(request.match_info["key_id"], "API key")
    app = request.app
    if not await api_keys.delete(app[appkeys.DB], key_id, current_user_id(request)):
        raise not_found("API key")
    try:
        await announce(app[appkeys.REDIS], app[appkeys.KEYS], "key", key_id)
    except Exception as exc:
        # the key is gone; sockets that missed this are found when their process is back on Redis
        if not outage.report(app, exc):
            raise
    return web.Response(status=204)

"""API keys: create (the key is shown once), list, revoke. What a key is
and how it is checked: authentication.py. Deleting a key also closes what is
open with it, in every process (live/revocation.py)."""

from __future__ import annotations

import datetime as dt
import secrets
import uuid
from typing import Annotated

import pydantic
from aiohttp import web

from chatserver import appkeys, outage
from chatserver.api.access import parse_id
from chatserver.api.authentication import KEY_PREFIX, key_hash
from chatserver.api.endpoint import NOT_BLANK, current_user_id, endpoint, json_response, read_json, read_query
from chatserver.api.pagination import decode_cursor, encode_cursor, page_query
from chatserver.data import api_keys
from chatserver.errors import InvalidCursor, NotFound, TooManyKeys
from chatserver.live.revocation import announce

# keys manage nothing: a leaked key must not be able to make its own replacement
FORBIDDEN_TO_KEYS = "an API key cannot manage API keys: use an access token (code forbidden)"
# how much of a key lists show: the marker and a few random characters
SHOWN_CHARACTERS = len(KEY_PREFIX) + 8


class KeyIn(pydantic.BaseModel):
    model_config = pydantic.ConfigDict(extra="ignore", strict=True)
    name: Annotated[str, pydantic.StringConstraints(min_length=1, max_length=100), NOT_BLANK]


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
    next_cursor: str | None


KeysPage = page_query(20)


@endpoint("Create an API key; the answer is the only time the key is shown", tag="keys", body=KeyIn,
          tokens_only=True,
          responses={201: NewApiKey, 403: FORBIDDEN_TO_KEYS,
                     409: "the user holds MAX_API_KEYS_PER_USER keys already (code too_many_keys)",
                     422: "invalid input"})
async def create_key(request: web.Request) -> web.Response:
    body = await read_json(request, KeyIn)
    cap = request.app[appkeys.SETTINGS].MAX_API_KEYS_PER_USER
    key = KEY_PREFIX + secrets.token_urlsafe(32)
    row = await api_keys.insert(request.app[appkeys.DB], current_user_id(request), body.name,
                                key[:SHOWN_CHARACTERS], key_hash(request.app[appkeys.SETTINGS], key), cap)
    if row is None:
        raise TooManyKeys(cap)
    return json_response(NewApiKey(key=key, **{k: row[k] for k in ("id", "name", "prefix", "created_at")}), 201)


@endpoint("List your API keys, newest first (never the keys themselves)", tag="keys", query=KeysPage,
          tokens_only=True,
          responses={200: ApiKeyList, 403: FORBIDDEN_TO_KEYS, 422: "invalid limit or cursor"})
async def list_keys(request: web.Request) -> web.Response:
    query = read_query(request, KeysPage)
    after = None
    if query.cursor:
        stamp, key_id = decode_cursor(query.cursor, 2)
        try:
            after = (dt.datetime.fromisoformat(stamp), uuid.UUID(key_id))
        except ValueError:
            raise InvalidCursor() from None
    rows = await api_keys.page(request.app[appkeys.DB], current_user_id(request), after, query.limit + 1)
    more = len(rows) > query.limit
    rows = rows[: query.limit]
    cursor = encode_cursor(rows[-1]["created_at"].isoformat(), rows[-1]["id"]) if more else None
    return json_response(ApiKeyList(items=[ApiKey(**r) for r in rows], next_cursor=cursor))


@endpoint("Delete an API key; it stops working at once", tag="keys", tokens_only=True,
          responses={204: None, 403: FORBIDDEN_TO_KEYS, 404: "no such key"})
async def delete_key(request: web.Request) -> web.Response:
    key_id = parse_id(request.match_info["key_id"], "API key")
    app = request.app
    if not await api_keys.delete(app[appkeys.DB], key_id, current_user_id(request)):
        raise NotFound("API key")
    try:
        await announce(app[appkeys.REDIS], app[appkeys.KEYS], "key", key_id)
    except Exception as exc:
        # the key is gone; sockets that missed this are found when their process is back on Redis
        if not outage.report(app, exc):
            raise
    return web.Response(status=204)

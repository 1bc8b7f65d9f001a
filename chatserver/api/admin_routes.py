"""Administration (docs/admin.md): the accounts, with their role, state and
quotas, everyone's API keys (to revoke), and everyone's usage. Only administrators, and only with an access
token: an API key manages nothing."""

from __future__ import annotations

import datetime as dt
import uuid
from typing import Annotated, Literal

import pydantic
from aiohttp import web

from chatserver import appkeys, outage
from chatserver.api.access import admin_check, parse_id
from chatserver.api.endpoint import STRIPPED, current_user_id, endpoint, json_response, read_json, read_query
from chatserver.api.pagination import Cursor, decode_cursor, encode_cursor
from chatserver.api.user_shapes import AdminUser, admin_user_of
from chatserver.data import api_keys, messages, users
from chatserver.errors import InvalidCursor, NotFound, OwnAccount
from chatserver.live.revocation import announce

ADMINS_ONLY = ("not an administrator, or an API key (code forbidden); an administrator taking their own "
               "role away or disabling themselves (code forbidden)")
QuotaValue = Annotated[int, pydantic.Field(ge=0, le=10**12)]


class UsersQuery(pydantic.BaseModel):
    model_config = pydantic.ConfigDict(extra="ignore")
    q: Annotated[str, pydantic.StringConstraints(max_length=254), STRIPPED] = ""
    limit: Annotated[int, pydantic.Field(ge=1, le=100)] = 50
    cursor: Cursor | None = None


class AdminUserList(pydantic.BaseModel):
    items: list[AdminUser]
    next_cursor: str | None


class QuotaIn(pydantic.BaseModel):
    """A user's own limits; a field left out is kept, null is the server's default."""
    model_config = pydantic.ConfigDict(extra="forbid", strict=True)
    tokens_per_day: QuotaValue | None = None
    messages_per_day: QuotaValue | None = None


class AdminUserIn(pydantic.BaseModel):
    model_config = pydantic.ConfigDict(extra="ignore", strict=True)
    role: Literal["admin", "user"] | None = None
    disabled: bool | None = None
    quota: QuotaIn | None = None


class KeysQuery(pydantic.BaseModel):
    model_config = pydantic.ConfigDict(extra="ignore")
    user_id: uuid.UUID | None = None
    limit: Annotated[int, pydantic.Field(ge=1, le=100)] = 50
    cursor: Cursor | None = None


class AdminApiKey(pydantic.BaseModel):
    id: uuid.UUID
    user_id: uuid.UUID
    user_email: str = pydantic.Field(description="the email of the key's owner")
    name: str
    prefix: str
    created_at: dt.datetime
    last_used_at: dt.datetime | None


class AdminApiKeyList(pydantic.BaseModel):
    items: list[AdminApiKey]
    next_cursor: str | None


class AdminUsageQuery(pydantic.BaseModel):
    model_config = pydantic.ConfigDict(extra="ignore")
    days: Annotated[int, pydantic.Field(ge=1, le=366)] = 30
    by: Literal["user", "model", "day"] = "user"


class AdminUsageRow(pydantic.BaseModel):
    key: str = pydantic.Field(description="the user's id, the model, or the UTC day (YYYY-MM-DD)")
    messages: int
    prompt_tokens: int
    completion_tokens: int
    thumbs_up: int
    thumbs_down: int


class AdminUsageReport(pydantic.BaseModel):
    items: list[AdminUsageRow]


@endpoint("Accounts whose email or name holds `q`, oldest first", tag="admin", query=UsersQuery,
          tokens_only=True,
          responses={200: AdminUserList, 403: ADMINS_ONLY, 422: "invalid limit or cursor"})
async def list_accounts(request: web.Request) -> web.Response:
    await admin_check(request)
    query = read_query(request, UsersQuery)
    rows = await users.admin_page(request.app[appkeys.DB], query.q, _after(query.cursor), query.limit + 1)
    more = len(rows) > query.limit
    rows = rows[: query.limit]
    cursor = encode_cursor(rows[-1]["created_at"].isoformat(), rows[-1]["id"]) if more else None
    active = await messages.last_posted(request.app[appkeys.DB], [r["id"] for r in rows])
    return json_response(AdminUserList(items=[admin_user_of(r, active.get(r["id"])) for r in rows],
                                       next_cursor=cursor))


@endpoint("Change an account's role, state or quotas; disabling closes its sockets and streams everywhere",
          tag="admin", body=AdminUserIn, tokens_only=True,
          responses={200: AdminUser, 403: ADMINS_ONLY, 404: "no such account", 422: "invalid input"})
async def update_user(request: web.Request) -> web.Response:
    await admin_check(request)
    user_id = parse_id(request.match_info["user_id"], "user")
    body = await read_json(request, AdminUserIn)
    fields = body.model_fields_set
    if user_id == current_user_id(request) and (body.role == "user" or body.disabled):
        raise OwnAccount()
    changes: dict = {name: getattr(body, name) for name in ("role", "disabled") if name in fields
                     and getattr(body, name) is not None}
    if body.quota is not None:
        for name in body.quota.model_fields_set:
            changes[f"quota_{name}"] = getattr(body.quota, name)
    app = request.app
    row = await users.admin_update(app[appkeys.DB], user_id, changes)
    if row is None:
        raise NotFound("user")
    if changes.get("disabled"):
        await _announce(app, "user", user_id)
    active = await messages.last_posted(app[appkeys.DB], [user_id])
    return json_response(admin_user_of(row, active.get(user_id)))


async def _announce(app: web.Application, kind: str, ident: uuid.UUID) -> None:
    try:
        await announce(app[appkeys.REDIS], app[appkeys.KEYS], kind, ident)
    except Exception as exc:
        # done in PostgreSQL; sockets that missed this are found when their process is back on Redis
        if not outage.report(app, exc):
            raise


def _after(cursor: str | None) -> tuple[dt.datetime, uuid.UUID] | None:
    if not cursor:
        return None
    stamp, ident = decode_cursor(cursor, 2)
    try:
        return dt.datetime.fromisoformat(stamp), uuid.UUID(ident)
    except ValueError:
        raise InvalidCursor() from None


@endpoint("Everyone's API keys (or one user's), newest first; never the keys themselves", tag="admin",
          query=KeysQuery, tokens_only=True,
          responses={200: AdminApiKeyList, 403: ADMINS_ONLY, 422: "invalid user_id, limit or cursor"})
async def list_everyones_keys(request: web.Request) -> web.Response:
    await admin_check(request)
    query = read_query(request, KeysQuery)
    rows = await api_keys.page_of_everyone(request.app[appkeys.DB], query.user_id, _after(query.cursor),
                                           query.limit + 1)
    more = len(rows) > query.limit
    rows = rows[: query.limit]
    cursor = encode_cursor(rows[-1]["created_at"].isoformat(), rows[-1]["id"]) if more else None
    emails = await users.emails_of(request.app[appkeys.DB], list({r["user_id"] for r in rows}))
    # an account deleted in between took its keys with it
    return json_response(AdminApiKeyList(
        items=[AdminApiKey(**r, user_email=emails[r["user_id"]]) for r in rows if r["user_id"] in emails],
        next_cursor=cursor))


@endpoint("Revoke anyone's API key: it stops working at once, and what is open with it closes, everywhere",
          tag="admin", tokens_only=True, responses={204: None, 403: ADMINS_ONLY, 404: "no such key"})
async def revoke_anyones_key(request: web.Request) -> web.Response:
    await admin_check(request)
    key_id = parse_id(request.match_info["key_id"], "API key")
    if not await api_keys.delete_any(request.app[appkeys.DB], key_id):
        raise NotFound("API key")
    await _announce(request.app, "key", key_id)
    return web.Response(status=204)


@endpoint("Everyone's answers, tokens and thumbs of the last `days` days, by user, model or UTC day",
          tag="admin", query=AdminUsageQuery, tokens_only=True,
          responses={200: AdminUsageReport, 403: ADMINS_ONLY, 422: "invalid days or by"})
async def admin_usage(request: web.Request) -> web.Response:
    await admin_check(request)
    query = read_query(request, AdminUsageQuery)
    rows = await messages.usage_of_everyone(request.app[appkeys.DB], query.days, query.by)
    return json_response(AdminUsageReport(items=[AdminUsageRow(**r) for r in rows]))

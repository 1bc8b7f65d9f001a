"""Accounts and tokens: register, login (which issues the access token),
/api/users/me. The check of tokens is authentication.py's."""

from __future__ import annotations

import asyncio
import logging
from typing import Annotated

import pydantic
from aiohttp import web

from chatserver import appkeys
from chatserver.api.authentication import credential_of, issue_token, revoke_token
from chatserver.api.endpoint import NOT_BLANK, STRIPPED, current_user_id, endpoint, json_response, read_json, validate
from chatserver.api.quota_check import limits_of
from chatserver.api.ratelimit import TOO_MANY_REQUESTS, check_login_limit, check_register_limit, count_failed_login
from chatserver.api.user_shapes import Me, QuotaToday, User, allowance
from chatserver.credentials import DUMMY_HASH, Email, Password, hash_password, verify_password
from chatserver.data import users
from chatserver.errors import EmailTaken, InvalidCredentials, InvalidInput, RegistrationClosed, Unauthorized
from chatserver.live.quotas import QUOTAS, day_ends_at

log = logging.getLogger(__name__)



class RegisterIn(pydantic.BaseModel):
    model_config = pydantic.ConfigDict(extra="ignore", strict=True)
    email: Email
    password: Password
    display_name: Annotated[str, pydantic.StringConstraints(max_length=100), STRIPPED] | None = None


class LoginIn(pydantic.BaseModel):
    model_config = pydantic.ConfigDict(extra="ignore", strict=True)
    email: Annotated[str, pydantic.StringConstraints(min_length=1, max_length=254), NOT_BLANK]
    password: Annotated[str, pydantic.StringConstraints(min_length=1, max_length=1024)]


class LoginForm(pydantic.BaseModel):
    """The OAuth2 password form Swagger UI's Authorize button sends."""
    username: str
    password: str


class TokenOut(pydantic.BaseModel):
    user: User
    access_token: str
    token_type: str = "bearer"
    expires_in: int


def _token_answer(request: web.Request, row: dict, status: int) -> web.Response:
    token, lifetime = issue_token(request.app[appkeys.SETTINGS], row["id"])
    return json_response(TokenOut(user=User(**row), access_token=token, expires_in=lifetime), status)


@endpoint("Create an account", tag="auth", body=RegisterIn, public=True,
          responses={201: TokenOut, 403: "registration is closed (code `registration_closed`)",
                     409: "email already registered", 422: "invalid input", 429: TOO_MANY_REQUESTS})
async def register(request: web.Request) -> web.Response:
    if request.app[appkeys.SETTINGS].REGISTRATION in ("closed", "oidc"):
        raise RegistrationClosed()
    body = await read_json(request, RegisterIn)
    await check_register_limit(request)
    password_hash = await asyncio.to_thread(hash_password, body.password)
    try:
        row = await users.insert(request.app[appkeys.DB], body.email, password_hash,
                                 body.display_name or body.email.split("@")[0])
    except users.EmailTaken:
        raise EmailTaken() from None
    return _token_answer(request, row, 201)


@endpoint("Log in (JSON, or the OAuth2 password form)", tag="auth", body=LoginIn, form=LoginForm,
          public=True, responses={200: TokenOut, 401: "wrong email or password", 422: "invalid input",
                                  429: TOO_MANY_REQUESTS})
async def login(request: web.Request) -> web.Response:
    if request.content_type == "application/x-www-form-urlencoded":
        try:
            fields = await request.post()
        except (UnicodeDecodeError, LookupError):
            raise InvalidInput("the form is not valid UTF-8 or names an unknown charset") from None
        form = validate(LoginForm, dict(fields))
        creds = validate(LoginIn, {"email": form.username, "password": form.password})
    else:
        creds = await read_json(request, LoginIn)
    await check_login_limit(request, creds.email)
    row = await users.get_with_hash(request.app[appkeys.DB], creds.email)
    ok = await asyncio.to_thread(verify_password, row["password_hash"] if row else DUMMY_HASH, creds.password)
    if not (row and ok):
        await count_failed_login(request, creds.email)
        raise InvalidCredentials()
    row.pop("password_hash")
    return _token_answer(request, row, 200)


@endpoint("Log out: the token stops working at once, everywhere, and its sockets and streams close",
          tag="auth", tokens_only=True,
          responses={204: None, 401: "missing or invalid token",
                     403: "an API key (code forbidden): delete the key instead"})
async def logout(request: web.Request) -> web.Response:
    await revoke_token(request.app, credential_of(request))
    return web.Response(status=204)


@endpoint("The current user, and what they used and have left of their quotas today (UTC)", tag="auth",
          responses={200: Me, 401: "missing or invalid token"})
async def me(request: web.Request) -> web.Response:
    app, user_id = request.app, current_user_id(request)
    row = await users.get(app[appkeys.DB], user_id)
    if row is None:
        raise Unauthorized("the account of this token no longer exists")
    limits = await limits_of(app, user_id)
    tokens, messages = await app[QUOTAS].used_today(user_id)
    quota = QuotaToday(tokens=allowance(limits.tokens, tokens), messages=allowance(limits.messages, messages),
                       resets_at=day_ends_at())
    return json_response(Me(**row, quota=quota))

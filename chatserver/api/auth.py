"""Accounts and tokens: register, login, /api/users/me, and the JWT check
that guards every non-public route."""

from __future__ import annotations

import asyncio
import datetime as dt
import functools
import logging
import time
import uuid
from typing import Annotated
from urllib.parse import parse_qsl

import jwt
import pydantic
from aiohttp import web

from chatserver import appkeys
from chatserver.api.apikeys import is_api_key, user_of_key
from chatserver.api.endpoint import (
    USER_ID,
    account_check,
    current_user_id,
    endpoint,
    handler_endpoint,
    json_response,
    read_json,
    validate,
)
from chatserver.api.ratelimit import TOO_MANY_REQUESTS, check_login_limit, check_register_limit, count_failed_login
from chatserver.credentials import DUMMY_HASH, Email, Password, hash_password, verify_password
from chatserver.data import users
from chatserver.errors import ApiError

log = logging.getLogger(__name__)


class RegisterIn(pydantic.BaseModel):
    model_config = pydantic.ConfigDict(extra="ignore", strict=True)
    email: Email
    password: Password
    display_name: Annotated[str, pydantic.StringConstraints(strip_whitespace=True, max_length=100)] | None = None


class LoginIn(pydantic.BaseModel):
    model_config = pydantic.ConfigDict(extra="ignore", strict=True)
    email: Annotated[str, pydantic.StringConstraints(strip_whitespace=True, min_length=1, max_length=254)]
    password: Annotated[str, pydantic.StringConstraints(min_length=1, max_length=1024)]


class LoginForm(pydantic.BaseModel):
    """The OAuth2 password form Swagger UI's Authorize button sends."""
    username: str
    password: str


class User(pydantic.BaseModel):
    id: uuid.UUID
    email: str
    display_name: str
    created_at: dt.datetime


class TokenOut(pydantic.BaseModel):
    user: User
    access_token: str
    token_type: str = "bearer"
    expires_in: int



def issue_token(settings, user_id: uuid.UUID) -> tuple[str, int]:
    lifetime = settings.JWT_ACCESS_TOKEN_EXPIRE_MINUTES * 60
    now = dt.datetime.now(dt.UTC)
    claims = {"sub": str(user_id), "iat": now, "exp": now + dt.timedelta(seconds=lifetime)}
    return jwt.encode(claims, settings.JWT_SECRET, algorithm=settings.JWT_ALGORITHM), lifetime


def _token_answer(request: web.Request, row: dict, status: int) -> web.Response:
    token, lifetime = issue_token(request.app[appkeys.SETTINGS], row["id"])
    return json_response(TokenOut(user=User(**row), access_token=token, expires_in=lifetime), status)


@endpoint("Create an account", tag="auth", body=RegisterIn, public=True,
          responses={201: TokenOut, 403: "registration is closed (code `registration_closed`)",
                     409: "email already registered", 422: "invalid input", 429: TOO_MANY_REQUESTS})
async def register(request: web.Request) -> web.Response:
    if request.app[appkeys.SETTINGS].REGISTRATION == "closed":
        raise ApiError(403, "registration is closed; ask the server's operator for an account",
                       "registration_closed")
    body = await read_json(request, RegisterIn)
    await check_register_limit(request)
    password_hash = await asyncio.to_thread(hash_password, body.password)
    try:
        row = await users.insert(request.app[appkeys.DB], body.email, password_hash,
                                 body.display_name or body.email.split("@")[0])
    except users.EmailTaken:
        raise ApiError(409, "an account with this email already exists", "email_taken") from None
    return _token_answer(request, row, 201)


@endpoint("Log in (JSON, or the OAuth2 password form)", tag="auth", body=LoginIn, form=LoginForm,
          public=True, responses={200: TokenOut, 401: "wrong email or password", 422: "invalid input",
                                  429: TOO_MANY_REQUESTS})
async def login(request: web.Request) -> web.Response:
    if request.content_type == "application/x-www-form-urlencoded":
        try:
            fields = await request.post()
        except (UnicodeDecodeError, LookupError):
            raise ApiError(422, "the form is not valid UTF-8 or names an unknown charset", "invalid_input") from None
        form = validate(LoginForm, dict(fields))
        creds = validate(LoginIn, {"email": form.username, "password": form.password})
    else:
        creds = await read_json(request, LoginIn)
    await check_login_limit(request, creds.email)
    row = await users.get_with_hash(request.app[appkeys.DB], creds.email)
    ok = await asyncio.to_thread(verify_password, row["password_hash"] if row else DUMMY_HASH, creds.password)
    if not (row and ok):
        await count_failed_login(request, creds.email)
        raise ApiError(401, "wrong email or password", "invalid_credentials")
    row.pop("password_hash")
    return _token_answer(request, row, 200)


@endpoint("The current user", tag="auth", responses={200: User, 401: "missing or invalid token"})
async def me(request: web.Request) -> web.Response:
    row = await users.get(request.app[appkeys.DB], current_user_id(request))
    if row is None:
        raise ApiError(401, "the account of this token no longer exists", "unauthorized")
    return json_response(User(**row))




@functools.lru_cache(maxsize=4096)
def _verified(secret: str, algorithm: str, token: str) -> tuple[uuid.UUID, float]:
    """A token's user and expiry once its signature and claims check out.
    Only successes are kept: a client sends the same token with every
    request, and checking its signature was a tenth of a read's cost."""
    claims = jwt.decode(token, secret, algorithms=[algorithm], options={"require": ["exp", "sub"]})
    return uuid.UUID(str(claims["sub"])), float(claims["exp"])


def decode_token(settings, token: str) -> uuid.UUID:
    """The user id of a valid token; 401 for a bad signature, an expired
    token, or one without `exp` (it would never expire) or `sub`."""
    try:
        user_id, expires = _verified(settings.JWT_SECRET, settings.JWT_ALGORITHM, token)
    except (jwt.InvalidTokenError, ValueError, TypeError):
        raise ApiError(401, "invalid or expired token", "unauthorized") from None
    if expires <= time.time():
        raise ApiError(401, "invalid or expired token", "unauthorized")
    return user_id


async def authenticate(request: web.Request, user_id: uuid.UUID) -> None:
    """The check every credential (token, API key) ends in: the account must
    exist and not be disabled, read on every request so that disabling (or
    deleting) an account stops its credentials at once in every process. It is
    one primary-key lookup (or part of the handler's own query, see
    `checks_account`); a cache would have to be invalidated in every
    process and would cost about as much as the lookup it saves."""
    request[USER_ID] = user_id
    await account_check(request)


async def user_of_credential(request: web.Request, credential: str) -> uuid.UUID:
    """The user a token or an API key stands for; 401 for neither."""
    if not is_api_key(credential):
        return decode_token(request.app[appkeys.SETTINGS], credential)
    user_id = await user_of_key(request.app, credential)
    if user_id is None:
        raise ApiError(401, "invalid or revoked API key", "unauthorized")
    return user_id


def _token_from(request: web.Request) -> str:
    if request.path.startswith("/ws/"):
        # not request.query: an open socket's request would keep the parsed query all its life
        token = next((value for name, value in parse_qsl(request.query_string) if name == "token"), "")
        if not token:
            raise ApiError(401, "missing token (?token=)", "unauthorized")
        return token
    header = request.headers.get("Authorization")
    if header is None:
        raise ApiError(401, "missing Authorization header", "unauthorized")
    scheme, _, token = header.strip().partition(" ")
    if scheme.lower() != "bearer" or not token.strip():
        raise ApiError(401, "the Authorization header must be 'Bearer <token>'", "unauthorized")
    return token.strip()


async def authenticate_request(request: web.Request) -> None:
    """Every /api/ and /ws/ route not marked public needs a valid token (or
    API key, apikeys.py) of an active account; its user becomes
    request[USER_ID]. Other paths (operations, docs, the web client, and /v1,
    which checks keys itself to answer in OpenAI's shape) are public. The
    secret is read per request because it may be generated at start-up
    (chatserver/secret.py)."""
    match = request.match_info
    if match.http_exception is not None or not request.path.startswith(("/api/", "/ws/")):
        return
    info = handler_endpoint(match.handler)
    if info is not None and info.public:
        return
    credential = _token_from(request)
    user_id = await user_of_credential(request, credential)
    if info is not None and info.tokens_only and is_api_key(credential):
        raise ApiError(403, "an API key cannot be used here: use an access token", "forbidden")
    if info is not None and info.checks_account:
        request[USER_ID] = user_id
    else:
        await authenticate(request, user_id)

"""Accounts and tokens: register, login, /api/users/me, and the JWT check
that guards every non-public route."""

from __future__ import annotations

import asyncio
import datetime as dt
import logging
import re
import uuid
from typing import Annotated

import jwt
import pydantic
from aiohttp import web
from aiohttp_jwt import JWTMiddleware
from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError

from chatserver import appkeys
from chatserver.api.apikeys import is_api_key, user_of_key
from chatserver.api.endpoint import (USER_ID, current_user_id, endpoint, handler_endpoint, json_response,
                                     read_json, validate)
from chatserver.data import users
from chatserver.errors import ApiError

log = logging.getLogger(__name__)
# aiohttp-jwt logs every rejected token with a traceback; a bad token is routine
logging.getLogger("aiohttp_jwt.middleware").setLevel(logging.CRITICAL + 1)

_hasher = PasswordHasher()
# verified against when the email is unknown, so both failures cost the same
_DUMMY_HASH = _hasher.hash("not-a-real-password")
_EMAIL = re.compile(r"^[^@\s]+@[^@\s]+\.[^@\s]+$")

Email = Annotated[str, pydantic.StringConstraints(strip_whitespace=True, max_length=254, pattern=_EMAIL.pattern)]
Password = Annotated[str, pydantic.StringConstraints(min_length=8, max_length=1024)]


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
    now = dt.datetime.now(dt.timezone.utc)
    claims = {"sub": str(user_id), "iat": now, "exp": now + dt.timedelta(seconds=lifetime)}
    return jwt.encode(claims, settings.JWT_SECRET, algorithm=settings.JWT_ALGORITHM), lifetime


def _token_answer(request: web.Request, row: dict, status: int) -> web.Response:
    token, lifetime = issue_token(request.app[appkeys.SETTINGS], row["id"])
    return json_response(TokenOut(user=User(**row), access_token=token, expires_in=lifetime), status)


@endpoint("Create an account", tag="auth", body=RegisterIn, public=True,
          responses={201: TokenOut, 409: "email already registered", 422: "invalid input"})
async def register(request: web.Request) -> web.Response:
    body = await read_json(request, RegisterIn)
    password_hash = await asyncio.to_thread(_hasher.hash, body.password)
    try:
        row = await users.insert(request.app[appkeys.DB], body.email, password_hash,
                                 body.display_name or body.email.split("@")[0])
    except users.EmailTaken:
        raise ApiError(409, "an account with this email already exists", "email_taken") from None
    return _token_answer(request, row, 201)


@endpoint("Log in (JSON, or the OAuth2 password form)", tag="auth", body=LoginIn, form=LoginForm,
          public=True, responses={200: TokenOut, 401: "wrong email or password", 422: "invalid input"})
async def login(request: web.Request) -> web.Response:
    if request.content_type == "application/x-www-form-urlencoded":
        form = validate(LoginForm, dict(await request.post()))
        creds = validate(LoginIn, {"email": form.username, "password": form.password})
    else:
        creds = await read_json(request, LoginIn)
    row = await users.get_with_hash(request.app[appkeys.DB], creds.email)
    ok = await asyncio.to_thread(_verify, row["password_hash"] if row else _DUMMY_HASH, creds.password)
    if not (row and ok):
        raise ApiError(401, "wrong email or password", "invalid_credentials")
    row.pop("password_hash")
    return _token_answer(request, row, 200)


def _verify(password_hash: str, password: str) -> bool:
    try:
        return _hasher.verify(password_hash, password)
    except (VerificationError, InvalidHashError):
        return False


@endpoint("The current user", tag="auth", responses={200: User, 401: "missing or invalid token"})
async def me(request: web.Request) -> web.Response:
    row = await users.get(request.app[appkeys.DB], current_user_id(request))
    if row is None:
        raise ApiError(401, "the account of this token no longer exists", "unauthorized")
    return json_response(User(**row))




def decode_token(settings, token: str) -> uuid.UUID | None:
    """The user id in a valid token, else None (for sockets that read ?token=)."""
    try:
        claims = jwt.decode(token, settings.JWT_SECRET, algorithms=[settings.JWT_ALGORITHM])
        return uuid.UUID(str(claims["sub"]))
    except (jwt.InvalidTokenError, KeyError, ValueError):
        return None


def _token_from(request: web.Request) -> str | None:
    if request.path.startswith("/ws/"):
        return request.query.get("token") or None
    header = request.headers.get("Authorization")
    if header is None:
        return None
    scheme, _, token = header.strip().partition(" ")
    if scheme.lower() != "bearer" or not token.strip():
        raise ApiError(401, "the Authorization header must be 'Bearer <token>'", "unauthorized")
    return token.strip()


def auth_middleware(settings):
    """aiohttp-jwt checks the token of every /api/ and /ws/ route not marked
    public; the token's subject becomes request[USER_ID]. A bearer value that
    is an API key (apikeys.py) stands for its user instead. Other paths
    (operations, docs, the web client, /v1 which checks its own) are public."""
    checker = JWTMiddleware(
        settings.JWT_SECRET,
        request_property="jwt",
        token_getter=_token_from,
        algorithms=[settings.JWT_ALGORITHM],
    )

    async def with_user(request: web.Request, handler):
        try:
            request[USER_ID] = uuid.UUID(str(request["jwt"]["sub"]))
        except (KeyError, ValueError):
            raise ApiError(401, "invalid or expired token", "unauthorized") from None
        return await handler(request)

    @web.middleware
    async def middleware(request: web.Request, handler):
        match = request.match_info
        if match.http_exception is not None or not request.path.startswith(("/api/", "/ws/")):
            return await handler(request)
        info = handler_endpoint(match.handler)
        if info is not None and info.public:
            return await handler(request)
        token = _token_from(request)
        if token is not None and is_api_key(token):
            user_id = await user_of_key(request.app, token)
            if user_id is None:
                raise ApiError(401, "invalid or revoked API key", "unauthorized")
            request[USER_ID] = user_id
            return await handler(request)
        return await checker(request, lambda req: with_user(req, handler))

    return middleware

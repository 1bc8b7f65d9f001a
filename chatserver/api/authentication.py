"""The credential check that guards every non-public route: which user an
access token (a JWT) or an API key stands for, and that the account is
active.

An API key is 32 random bytes behind a recognisable `cs-` prefix. The server
keeps only HMAC-SHA256 of it under a key derived from JWT_SECRET: a long
random key needs no slow hash, so checking one costs a single indexed query.
Nothing about a key is cached in a process, so a deleted key fails at once
everywhere.

A token carries an id (`jti`); logging out puts it on a deny-list in Redis
that lasts as long as the token would have, read with every request that
brings a token, so it fails at once in every process.
"""

from __future__ import annotations

import datetime as dt
import functools
import hashlib
import hmac
import math
import time
import uuid
from urllib.parse import parse_qsl

import jwt
from aiohttp import web

from chatserver import appkeys
from chatserver.api.access import ACCOUNT_GONE, account_check
from chatserver.api.endpoint import OWN_QUOTA, USER_ID, handler_endpoint
from chatserver.data import api_keys
from chatserver.errors import KeyCannotManageKeys, Unauthorized
from chatserver.live.revocation import Credential, announce
from chatserver.secret import derived_key

KEY_PREFIX = "cs-"
CREDENTIAL = web.RequestKey("credential", Credential)


def is_api_key(token: str) -> bool:
    return token.startswith(KEY_PREFIX)


def key_hash(settings, key: str) -> bytes:
    return hmac.new(derived_key(settings, "API key hashes"), key.encode(), hashlib.sha256).digest()


async def key_of(app: web.Application, key: str) -> dict | None:
    """The key's `id` and `user_id`, with its user's account (`active` and
    the own quotas), or None for an unknown (or deleted) key."""
    db = app[appkeys.DB]
    row = await api_keys.find(db, key_hash(app[appkeys.SETTINGS], key))
    if row is not None and row["stale"]:
        await api_keys.mark_used(db, row["id"])
    return row


@functools.lru_cache(maxsize=4096)
def _verified(secret: str, algorithm: str, token: str) -> tuple[uuid.UUID, float, uuid.UUID | None]:
    """A token's user, expiry and id once its signature and claims check out.
    Only successes are kept: a client sends the same token with every
    request, and checking its signature was a tenth of a read's cost."""
    claims = jwt.decode(token, secret, algorithms=[algorithm], options={"require": ["exp", "sub"]})
    token_id = claims.get("jti")
    return (uuid.UUID(str(claims["sub"])), float(claims["exp"]),
            None if token_id is None else uuid.UUID(str(token_id)))


def issue_token(settings, user_id: uuid.UUID) -> tuple[str, int]:
    lifetime = settings.JWT_ACCESS_TOKEN_EXPIRE_MINUTES * 60
    now = dt.datetime.now(dt.UTC)
    # jti: what logout revokes (authentication.py)
    claims = {"sub": str(user_id), "iat": now, "exp": now + dt.timedelta(seconds=lifetime), "jti": str(uuid.uuid4())}
    return jwt.encode(claims, settings.JWT_SECRET, algorithm=settings.JWT_ALGORITHM), lifetime


def token_credential(settings, token: str) -> Credential:
    """The user and expiry of a valid token; 401 for a bad signature, an
    expired token, or one without `exp` (it would never expire) or `sub`."""
    try:
        user_id, expires, token_id = _verified(settings.JWT_SECRET, settings.JWT_ALGORITHM, token)
    except (jwt.InvalidTokenError, ValueError, TypeError):
        raise Unauthorized() from None
    if expires <= time.time():
        raise Unauthorized()
    return Credential(user_id, expires=expires, token_id=token_id)


async def revoke_token(app: web.Application, credential: Credential) -> None:
    """Log a token out: denied until it would have expired, in every process, and its sockets closed."""
    if credential.token_id is None or credential.expires is None:
        return  # a token without an id cannot be told apart from its siblings; it expires as it is
    redis, keys = app[appkeys.REDIS], app[appkeys.KEYS]
    lifetime = max(1, math.ceil(credential.expires - time.time()))
    await redis.set(keys.revoked_token(credential.token_id), b"1", ex=lifetime)
    await announce(redis, keys, "token", credential.token_id)


async def authenticate(request: web.Request, user_id: uuid.UUID) -> None:
    """The check every credential (token, API key) ends in: the account must
    exist and not be disabled, read on every request so that disabling (or
    deleting) an account stops its credentials at once in every process. It is
    one primary-key lookup (part of an API key's lookup, or of the handler's
    own query, see `checks_account`); a cache would have to be invalidated in
    every process and would cost about as much as the lookup it saves."""
    request[USER_ID] = user_id
    if OWN_QUOTA not in request:  # an API key's lookup read the account already
        await account_check(request)


async def user_of_credential(request: web.Request, credential: str) -> uuid.UUID:
    """The user a token or an API key stands for; 401 for neither. What it
    was stays on the request for sockets and streams (credential_of)."""
    if not is_api_key(credential):
        found = token_credential(request.app[appkeys.SETTINGS], credential)
        if found.token_id is not None and await request.app[appkeys.REDIS].exists(
                request.app[appkeys.KEYS].revoked_token(found.token_id)):
            raise Unauthorized("this token was logged out")
    else:
        row = await key_of(request.app, credential)
        if row is None:
            raise Unauthorized("invalid or revoked API key")
        if not row["active"]:
            raise Unauthorized(ACCOUNT_GONE)
        request[OWN_QUOTA] = {"quota_tokens_per_day": row["quota_tokens_per_day"],
                              "quota_messages_per_day": row["quota_messages_per_day"]}
        found = Credential(row["user_id"], key_id=row["id"])
    request[CREDENTIAL] = found
    return found.user_id


def credential_of(request: web.Request) -> Credential:
    """The credential the request was let in with, for holding it while a socket or stream is open."""
    return request[CREDENTIAL]


def _token_from(request: web.Request) -> str:
    if request.path.startswith("/ws/"):
        # not request.query: an open socket's request would keep the parsed query all its life
        token = next((value for name, value in parse_qsl(request.query_string) if name == "token"), "")
        if not token:
            raise Unauthorized("missing token (?token=)")
        return token
    header = request.headers.get("Authorization")
    if header is None:
        raise Unauthorized("missing Authorization header")
    scheme, _, token = header.strip().partition(" ")
    if scheme.lower() != "bearer" or not token.strip():
        raise Unauthorized("the Authorization header must be 'Bearer <token>'")
    return token.strip()


async def authenticate_request(request: web.Request) -> None:
    """Every /api/ and /ws/ route not marked public needs a valid token (or
    API key) of an active account; its user becomes request[USER_ID]. Other
    paths (operations, docs, the web client, and /v1, which checks keys
    itself to answer in OpenAI's shape) are public. The secret is read per
    request because it may be generated at start-up (chatserver/secret.py)."""
    match = request.match_info
    if match.http_exception is not None or not request.path.startswith(("/api/", "/ws/")):
        return
    info = handler_endpoint(match.handler)
    if info is not None and info.public:
        return
    credential = _token_from(request)
    user_id = await user_of_credential(request, credential)
    if info is not None and info.tokens_only and is_api_key(credential):
        raise KeyCannotManageKeys()
    if info is not None and info.checks_account:
        request[USER_ID] = user_id
    else:
        await authenticate(request, user_id)

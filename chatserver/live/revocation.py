"""Credentials withdrawn while a WebSocket or a stream holds them open.

A request checks its credential once, when it starts; a socket or an SSE
stream lives on long after. Each of them holds its credential here while it
is open, and is told (`on_revoked`) when the credential stops being good:

- its account is disabled, its API key deleted, or its token logged out, in
  any process: whoever does it publishes `user:<id>`, `key:<id>` or
  `token:<jti>` on one Redis channel, which every process's listener hears;
- its token expires (a sweep of this process, once a second: a timer per
  socket would cost each idle socket memory, the sweep a few milliseconds);
- the process's listener (fanout.py) that lost Redis may have missed
  messages: once subscribed again, it says so (RESYNC) and this asks
  PostgreSQL (and Redis's deny-list of logged-out tokens) about every
  credential it holds.
"""

from __future__ import annotations

import asyncio
import dataclasses
import logging
import time
import uuid
from collections.abc import AsyncIterator, Callable
from typing import Any

import redis.asyncio as redis_async
from aiohttp import web

from chatserver.data import api_keys, users
from chatserver.db import Database
from chatserver.live.fanout import RESYNC
from chatserver.redis_keys import Keys

log = logging.getLogger(__name__)

DISABLED, DELETED, EXPIRED = "the account was disabled", "the API key was deleted", "the token expired"
LOGGED_OUT = "the token was logged out"
EXPIRY_SWEEP_SECONDS = 1.0


@dataclasses.dataclass(frozen=True, slots=True)
class Credential:
    """Who a request is, by what: a token (with its expiry and id) or an API key."""
    user_id: uuid.UUID
    key_id: uuid.UUID | None = None
    expires: float | None = None
    token_id: uuid.UUID | None = None


class Hold:
    """One open socket or stream's claim on its credential. Kept small: an
    idle socket holds one all its life (module-level callbacks, no closures)."""
    __slots__ = ("credential", "on_revoked", "target")

    def __init__(self, credential: Credential, on_revoked: Callable[[Any, str], None], target: Any):
        self.credential = credential
        self.on_revoked = on_revoked
        self.target = target


def settle(future: asyncio.Future, reason: str) -> None:
    """An `on_revoked` for a stream that waits on `future` beside its answer."""
    if not future.done():
        future.set_result(reason)


async def announce(client: redis_async.Redis, keys: Keys, kind: str, ident: uuid.UUID) -> None:
    """Tell every process that a user (`kind` "user"), API key ("key") or token ("token") is no longer good."""
    await client.publish(keys.revocations, f"{kind}:{ident}")


class Revocations:
    def __init__(self, db: Database, redis: redis_async.Redis, keys: Keys):
        self.db = db
        self.redis = redis
        self.keys = keys
        self.by_user: dict[uuid.UUID, set[Hold]] = {}
        self.by_key: dict[uuid.UUID, set[Hold]] = {}
        self.by_token: dict[uuid.UUID, set[Hold]] = {}

    def hold(self, credential: Credential, on_revoked: Callable[[Any, str], None], target: Any) -> Hold:
        """Until `release`, `on_revoked(target, reason)` is called (once) when `credential` stops being good."""
        hold = Hold(credential, on_revoked, target)
        self.by_user.setdefault(credential.user_id, set()).add(hold)
        if credential.key_id is not None:
            self.by_key.setdefault(credential.key_id, set()).add(hold)
        if credential.token_id is not None:
            self.by_token.setdefault(credential.token_id, set()).add(hold)
        return hold

    def release(self, hold: Hold) -> None:
        credential = hold.credential
        _discard(self.by_user, credential.user_id, hold)
        if credential.key_id is not None:
            _discard(self.by_key, credential.key_id, hold)
        if credential.token_id is not None:
            _discard(self.by_token, credential.token_id, hold)

    def _revoke(self, hold: Hold, reason: str) -> None:
        self.release(hold)
        hold.on_revoked(hold.target, reason)

    def expire(self, now: float) -> None:
        """Revoke every hold whose token has expired by `now`."""
        expired = [hold for holds in self.by_user.values() for hold in holds
                   if hold.credential.expires is not None and hold.credential.expires <= now]
        for hold in expired:
            self._revoke(hold, EXPIRED)

    async def sweep(self) -> None:
        while True:
            await asyncio.sleep(EXPIRY_SWEEP_SECONDS)
            self.expire(time.time())

    def revoke_user(self, user_id: uuid.UUID) -> None:
        for hold in list(self.by_user.get(user_id, ())):
            self._revoke(hold, DISABLED)

    def revoke_key(self, key_id: uuid.UUID) -> None:
        for hold in list(self.by_key.get(key_id, ())):
            self._revoke(hold, DELETED)

    def revoke_token(self, token_id: uuid.UUID) -> None:
        for hold in list(self.by_token.get(token_id, ())):
            self._revoke(hold, LOGGED_OUT)

    def dispatch(self, data: str) -> None:
        kind, _, raw = data.partition(":")
        ident = uuid.UUID(raw)
        if kind == "user":
            self.revoke_user(ident)
        elif kind == "key":
            self.revoke_key(ident)
        elif kind == "token":
            self.revoke_token(ident)
        else:
            raise ValueError(f"unknown kind {kind!r}")

    async def recheck(self) -> None:
        """What the channel may have said while the listener was away, from PostgreSQL."""
        for user_id in await users.inactive_among(self.db, list(self.by_user)):
            self.revoke_user(user_id)
        for key_id in await api_keys.missing_among(self.db, list(self.by_key)):
            self.revoke_key(key_id)
        token_ids = list(self.by_token)
        if token_ids:
            denied = await self.redis.mget([self.keys.revoked_token(t) for t in token_ids])
            for token_id, mark in zip(token_ids, denied, strict=True):
                if mark is not None:
                    self.revoke_token(token_id)

    async def listen(self, subscription: AsyncIterator[Any]) -> None:
        """Act on what reaches the revocation channel (through the process's one listener)."""
        async for item in subscription:
            if item is RESYNC:
                await self._recheck_until_done()
                continue
            try:
                self.dispatch(item)
            except ValueError:
                log.error("ignoring a malformed revocation %r", item[:100])

    async def _recheck_until_done(self) -> None:
        while True:
            try:
                await self.recheck()
                return
            except Exception:  # noqa: BLE001 - PostgreSQL still away: try again
                await asyncio.sleep(1)


def _discard(table: dict[uuid.UUID, set[Hold]], ident: uuid.UUID, hold: Hold) -> None:
    holds = table.get(ident)
    if holds is not None:
        holds.discard(hold)
        if not holds:
            del table[ident]


REVOCATIONS = web.AppKey("revocations", Revocations)

"""Rate limits (docs/limits.md): moving windows in Redis, so they hold
across every process, kept by the `limits` library; a request past one gets
`429 rate_limited` with `Retry-After`.

Handlers call `check_message_limit`, `check_upload_limit`, ... ; a new
endpoint that posts messages (edit, /v1) calls `check_message_limit` too.
"""

from __future__ import annotations

import ipaddress
import math
import time

import redis.asyncio as redis_async
from aiohttp import web
from limits import RateLimitItemPerSecond
from limits.aio.storage import RedisStorage
from limits.aio.strategies import MovingWindowRateLimiter

from chatserver import appkeys
from chatserver.api.endpoint import current_user_id
from chatserver.config import parse_rate_limit
from chatserver.errors import RateLimited

# limit name -> its setting
SETTINGS = {
    "login": "RATE_LIMIT_LOGIN",
    "login_address": "RATE_LIMIT_LOGIN_ADDRESS",
    "register": "RATE_LIMIT_REGISTER",
    "messages": "RATE_LIMIT_MESSAGES",
    "uploads": "RATE_LIMIT_UPLOADS",
}

# the OpenAPI answer of every limited endpoint
TOO_MANY_REQUESTS = {
    "description": "rate limited (code `rate_limited`); retry after `Retry-After` seconds",
    "headers": {"Retry-After": {"description": "seconds to wait before retrying",
                                "schema": {"type": "integer", "minimum": 1}}},
    "content": {"application/json": {"schema": {"$ref": "#/components/schemas/Error"}}},
}


class RateLimits:
    def __init__(self, settings, redis_url: str, prefix: str, metrics) -> None:
        self.items = {}
        for name, key in SETTINGS.items():
            parsed = parse_rate_limit(key, getattr(settings, key))
            if parsed is not None:
                self.items[name] = RateLimitItemPerSecond(parsed[0], parsed[1], namespace=name)
        # a pool of its own: the library's Lua scripts expect undecoded replies
        self.pool = redis_async.ConnectionPool.from_url(redis_url)
        # limits documents connection_pool among **options but types those as float | str | bool
        self.storage = RedisStorage("async+redis://", implementation="redispy", key_prefix=prefix,
                                    connection_pool=self.pool)  # type: ignore[arg-type]
        self.limiter = MovingWindowRateLimiter(self.storage)
        self.trusted = tuple(ipaddress.ip_network(n, strict=False) for n in settings.TRUSTED_PROXIES)
        self.metrics = metrics

    async def hit(self, name: str, *identity: str) -> None:
        """Count one event; refuse it (429) when the window is full."""
        item = self.items.get(name)
        if item is not None and not await self.limiter.hit(item, *identity):
            await self._refuse(name, item, identity)

    async def check(self, name: str, *identity: str) -> None:
        """Refuse (429) when the window is full, without counting."""
        item = self.items.get(name)
        if item is not None and not await self.limiter.test(item, *identity):
            await self._refuse(name, item, identity)

    async def count(self, name: str, *identity: str) -> None:
        """Count one event that has already been answered (a failed login)."""
        item = self.items.get(name)
        if item is not None:
            await self.limiter.hit(item, *identity)

    async def _refuse(self, name: str, item, identity: tuple[str, ...]) -> None:
        stats = await self.limiter.get_window_stats(item, *identity)
        retry_after = max(1, math.ceil(stats.reset_time - time.time()))
        self.metrics.rate_limited.labels(name).inc()
        raise RateLimited(retry_after)

    def client_address(self, request: web.Request) -> str:
        """The TCP peer; behind a trusted proxy, the right-most address in
        X-Forwarded-For that is not a trusted proxy itself (entries further left
        are whatever the client claimed)."""
        address = request.remote or ""
        if not self._trusted(address):
            return address
        hops = [hop.strip() for header in request.headers.getall("X-Forwarded-For", ())
                for hop in header.split(",")]
        for hop in reversed(hops):
            if not self._trusted(hop):
                try:
                    return str(ipaddress.ip_address(hop))
                except ValueError:
                    # not an address: nothing a trusted proxy wrote; the chain ends at the last proxy
                    return address
            address = hop
        return address

    def _trusted(self, address: str) -> bool:
        try:
            ip = ipaddress.ip_address(address)
        except ValueError:
            return False
        return any(ip in network for network in self.trusted)

    async def close(self) -> None:
        await self.pool.aclose()


RATE_LIMITS = web.AppKey("rate_limits", RateLimits)


async def rate_limits_ctx(app: web.Application):
    limits = RateLimits(app[appkeys.SETTINGS], app[appkeys.REDIS_URL], app[appkeys.KEYS].rate_limits,
                        app[appkeys.METRICS])
    app[RATE_LIMITS] = limits
    yield
    await limits.close()


def client_address(request: web.Request) -> str:
    return request.app[RATE_LIMITS].client_address(request)


async def check_message_limit(request: web.Request) -> None:
    """One message posted by the current user (a post, edit, regeneration or /v1 call)."""
    await request.app[RATE_LIMITS].hit("messages", str(current_user_id(request)))


async def check_upload_limit(request: web.Request) -> None:
    await request.app[RATE_LIMITS].hit("uploads", str(current_user_id(request)))


async def check_register_limit(request: web.Request) -> None:
    await request.app[RATE_LIMITS].hit("register", client_address(request))


def _login_identities(request: web.Request, email: str) -> list[tuple[str, tuple[str, ...]]]:
    address = client_address(request)
    return [("login", (address, email.strip().lower())), ("login_address", (address,))]


async def check_login_limit(request: web.Request, email: str) -> None:
    """Before checking a password: refuse when this address (and email) failed too often.
    Logins checked at the same moment may pass together before their failures
    are counted; the password hashing pool bounds how many that can be."""
    for name, identity in _login_identities(request, email):
        await request.app[RATE_LIMITS].check(name, *identity)


async def count_failed_login(request: web.Request, email: str) -> None:
    for name, identity in _login_identities(request, email):
        await request.app[RATE_LIMITS].count(name, *identity)

"""Daily quotas: what each user used today (UTC), counted in Redis so that
every process sees the same counts. A post takes one message (refused past
either limit); an answer's tokens are counted when it ends, so an answer
already running finishes and counts even past the limit."""

from __future__ import annotations

import dataclasses
import datetime as dt
import uuid

import redis.asyncio as redis_async
from aiohttp import web

from chatserver.redis_keys import Keys

# a day's counts outlive the day by one, for a request that read the clock just before midnight
KEPT_SECONDS = 2 * 86400
TOKENS, MESSAGES = "tokens", "messages"

# KEYS: tokens, messages; ARGV: token limit, message limit (0 = none), lifetime.
# 0 when the message is taken, else the name of the limit reached.
_TAKE = """
local limit_tokens, limit_messages = tonumber(ARGV[1]), tonumber(ARGV[2])
if limit_tokens > 0 and tonumber(redis.call('GET', KEYS[1]) or '0') >= limit_tokens then return 'tokens' end
local taken = redis.call('INCR', KEYS[2])
redis.call('EXPIRE', KEYS[2], ARGV[3])
if limit_messages > 0 and taken > limit_messages then
    redis.call('DECR', KEYS[2])
    return 'messages'
end
return 0
"""


@dataclasses.dataclass(frozen=True)
class Limits:
    """Per UTC day; 0 = no limit."""
    tokens: int
    messages: int


def today(now: dt.datetime | None = None) -> str:
    return (now or dt.datetime.now(dt.UTC)).strftime("%Y-%m-%d")


def day_ends_at(now: dt.datetime | None = None) -> dt.datetime:
    now = now or dt.datetime.now(dt.UTC)
    return dt.datetime.combine(now.date() + dt.timedelta(days=1), dt.time(), dt.UTC)


def seconds_left_today(now: dt.datetime | None = None) -> int:
    """Until the UTC day ends (at least 1: a Retry-After of 0 would invite a retry at once)."""
    now = now or dt.datetime.now(dt.UTC)
    return max(1, int((day_ends_at(now) - now).total_seconds() + 0.999))


class Quotas:
    def __init__(self, client: redis_async.Redis, keys: Keys):
        self.client = client
        self.keys = keys
        self._take = client.register_script(_TAKE)

    def _keys(self, user_id: uuid.UUID) -> list[str]:
        day = today()
        return [self.keys.quota(user_id, day, TOKENS), self.keys.quota(user_id, day, MESSAGES)]

    async def take_message(self, user_id: uuid.UUID, limits: Limits) -> str | None:
        """Count one message; None when it is within the limits, else the limit
        (TOKENS or MESSAGES) already reached, and nothing is counted."""
        reached = await self._take(keys=self._keys(user_id), args=[limits.tokens, limits.messages, KEPT_SECONDS])
        return None if reached == 0 else (reached.decode() if isinstance(reached, bytes) else str(reached))

    async def count_tokens(self, user_id: uuid.UUID, tokens: int) -> None:
        key = self._keys(user_id)[0]
        async with self.client.pipeline(transaction=True) as pipe:
            pipe.incrby(key, tokens)
            pipe.expire(key, KEPT_SECONDS)
            await pipe.execute()

    async def used_today(self, user_id: uuid.UUID) -> tuple[int, int]:
        """(tokens, messages) used today."""
        tokens, messages = await self.client.mget(self._keys(user_id))
        return int(tokens or 0), int(messages or 0)


QUOTAS = web.AppKey("quotas", Quotas)

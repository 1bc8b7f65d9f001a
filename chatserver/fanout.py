"""Cross-process fan-out of live answers.

Each process holds one pub/sub connection, subscribed to every chat channel
before the app serves its first request, so a socket that registers here is
already listening when it reads its snapshot. Pieces go to the local
watchers of their message; a finished answer also stops a generation this
process may still be driving (cancel, time-out or chat deletion elsewhere).
"""

from __future__ import annotations

import asyncio
import dataclasses
import logging

import redis.asyncio as redis_async
from aiohttp import web

from . import appkeys

log = logging.getLogger(__name__)

# put in every watcher's queue after the subscription was lost: pieces may be missing
RESYNC = "resync"


@dataclasses.dataclass(frozen=True)
class Piece:
    n: int
    kind: str  # "c" chunk, "f" final
    body: str  # the chunk's text, or the final event's JSON


class Fanout:
    def __init__(self, redis: redis_async.Redis, pattern: str):
        self.redis = redis
        self.pattern = pattern
        self.watchers: dict[str, set[asyncio.Queue]] = {}
        self.running: dict[str, asyncio.Task] = {}
        self._pubsub: redis_async.client.PubSub | None = None

    def watch(self, message_id: str) -> asyncio.Queue:
        queue: asyncio.Queue = asyncio.Queue()
        self.watchers.setdefault(message_id, set()).add(queue)
        return queue

    def unwatch(self, message_id: str, queue: asyncio.Queue) -> None:
        queues = self.watchers.get(message_id)
        if queues is not None:
            queues.discard(queue)
            if not queues:
                del self.watchers[message_id]

    def dispatch(self, data: str) -> None:
        message_id, n, kind, body = data.split("|", 3)
        if kind == "f" and message_id in self.running:
            self.running[message_id].cancel()
        queues = self.watchers.get(message_id)
        if queues:
            piece = Piece(int(n), kind, body)
            for queue in queues:
                queue.put_nowait(piece)

    async def subscribe(self) -> None:
        pubsub = self.redis.pubsub()
        await pubsub.psubscribe(self.pattern)
        while (await pubsub.get_message(timeout=5)) is None:
            pass  # the first message is the subscription's confirmation
        self._pubsub = pubsub

    async def listen(self) -> None:
        while True:
            try:
                async for message in self._pubsub.listen():
                    if message["type"] != "pmessage":
                        continue
                    try:
                        self.dispatch(message["data"])
                    except ValueError:
                        log.error("ignoring a malformed stream piece on %s", message["channel"])
            except (redis_async.ConnectionError, redis_async.TimeoutError, OSError) as exc:
                log.warning("stream fan-out lost Redis (%s); resubscribing", exc)
            await self._resubscribe()

    async def _resubscribe(self) -> None:
        await self.close()
        while True:
            try:
                await self.subscribe()
                break
            except (redis_async.ConnectionError, redis_async.TimeoutError, OSError):
                await asyncio.sleep(1)
        for queues in self.watchers.values():
            for queue in queues:
                queue.put_nowait(RESYNC)

    async def close(self) -> None:
        if self._pubsub is not None:
            pubsub, self._pubsub = self._pubsub, None
            try:
                await pubsub.aclose()
            except (redis_async.ConnectionError, OSError):
                pass


FANOUT = web.AppKey("fanout", Fanout)


def fanout_client_name(app: web.Application) -> str:
    return f"{app[appkeys.KEYS].prefix}:fanout"


async def fanout_ctx(app: web.Application):
    # a client of its own: a subscribed connection that breaks must never be
    # handed back to the pool that runs ordinary commands
    client = redis_async.Redis.from_url(app[appkeys.REDIS_URL], decode_responses=True,
                                        client_name=fanout_client_name(app))
    fanout = Fanout(client, app[appkeys.KEYS].chat_channel_pattern)
    await fanout.subscribe()
    app[FANOUT] = fanout
    listener = asyncio.create_task(fanout.listen())
    yield
    listener.cancel()
    await asyncio.gather(listener, return_exceptions=True)
    await fanout.close()
    await client.aclose()

"""The process's one pub/sub connection and its fan-out to local subscribers.

The listener is subscribed to every chat channel and to the revocation
channel before the app serves its first request, and hands each published
piece (wire.py) to the subscribers of its channel in this process: an
answer's pieces go to the subscribers of the message id, a chat event
(decoded once) to those of the chat id, a revocation (as it came) to those
of the revocation channel's name. Only `subscribe()` registers, and its
block's end unregisters, whatever ends it.

The pieces this process makes reach its own subscribers without the round
trip through pub/sub: state.py hands them to `dispatch` as the script that
made them replies, and Redis publishes them only while another process may
follow the answer (scripts.WATCH_LUA). A piece may then come twice (by reply
and published) or ahead of one another process made; followers keep them in
order by their numbers (follow.py).

When the connection is lost the listener subscribes again and puts RESYNC
in every subscriber's queue: pieces may be missing. A finished answer also
stops a generation this process may still be driving (`running`: cancel,
time-out or chat deletion elsewhere).
"""

from __future__ import annotations

import asyncio
import collections
import contextlib
import json
import logging
import uuid
from collections.abc import AsyncIterator
from typing import Any

import redis.asyncio as redis_async
from aiohttp import web

from chatserver.live import wire
from chatserver.redis_keys import Keys

log = logging.getLogger(__name__)

# put in every subscriber's queue after the subscription was lost: pieces may be missing
RESYNC = object()


class Subscription:
    """What one subscriber receives, in order: wire.Piece objects for an
    answer, event dicts for a chat, and RESYNC."""
    __slots__ = ("_items", "_waiter")

    def __init__(self) -> None:
        self._items: collections.deque = collections.deque()
        self._waiter: asyncio.Future | None = None

    def put(self, item: object) -> None:
        self._items.append(item)
        if self._waiter is not None and not self._waiter.done():
            self._waiter.set_result(None)

    def __aiter__(self) -> Subscription:
        return self

    async def __anext__(self) -> Any:
        while not self._items:
            self._waiter = asyncio.get_running_loop().create_future()
            try:
                await self._waiter
            finally:
                self._waiter = None
        return self._items.popleft()

    def peek(self) -> Any:
        """The next item if one is already there (None if not), left in place."""
        return self._items[0] if self._items else None

    def skip(self) -> None:
        """Drop the item `peek` gave."""
        self._items.popleft()


class Fanout:
    def __init__(self, keys: Keys):
        self.keys = keys
        self.subscribers: dict[str, set[Subscription]] = {}
        # local generations by message id, stopped when their answer ends elsewhere
        self.running: dict[str, asyncio.Task] = {}
        self._pubsub: redis_async.client.PubSub | None = None
        # this process among the watchers of an answer (scripts.SNAPSHOT)
        self.instance = uuid.uuid4().hex

    @contextlib.asynccontextmanager
    async def subscribe(self, channel: str) -> AsyncIterator[Subscription]:
        """What reaches `channel` (a message or chat id) while the block runs."""
        sub = Subscription()
        self.subscribers.setdefault(channel, set()).add(sub)
        try:
            yield sub
        finally:
            subs = self.subscribers.get(channel)
            if subs is not None:
                subs.discard(sub)
                if not subs:
                    del self.subscribers[channel]

    def dispatch(self, data: str) -> None:
        piece = wire.decode(data)
        if piece.kind == wire.EVENT:
            subs = self.subscribers.get(piece.message_id)
            if subs:
                event = json.loads(piece.body)
                for sub in subs:
                    sub.put(event)
            return
        if piece.kind == wire.FINAL and piece.message_id in self.running:
            self.running[piece.message_id].cancel()
        for sub in self.subscribers.get(piece.message_id, ()):
            sub.put(piece)

    def resync(self, channel: str) -> None:
        """Pieces of `channel` (a message id) may be missing: its subscribers read a snapshot."""
        for sub in self.subscribers.get(channel, ()):
            sub.put(RESYNC)

    async def connect(self, client: redis_async.Redis) -> None:
        pubsub = client.pubsub()
        await pubsub.psubscribe(self.keys.chat_channel_pattern)
        await pubsub.subscribe(self.keys.revocations)
        confirmed = 0
        while confirmed < 2:  # one confirmation per subscription, before anything is published to us
            if (await pubsub.get_message(timeout=5)) is not None:
                confirmed += 1
        self._pubsub = pubsub

    async def listen(self, client: redis_async.Redis) -> None:
        while True:
            try:
                assert self._pubsub is not None
                async for message in self._pubsub.listen():
                    if message["type"] == "message":
                        for sub in self.subscribers.get(message["channel"], ()):
                            sub.put(message["data"])
                        continue
                    if message["type"] != "pmessage":
                        continue
                    try:
                        self.dispatch(message["data"])
                    except ValueError:
                        log.error("ignoring a malformed stream piece on %s", message["channel"])
            except (redis_async.ConnectionError, redis_async.TimeoutError, OSError) as exc:
                log.warning("stream fan-out lost Redis (%s); resubscribing", exc)
            await self._reconnect(client)

    async def _reconnect(self, client: redis_async.Redis) -> None:
        await self.close()
        while True:
            try:
                await self.connect(client)
                break
            except (redis_async.ConnectionError, redis_async.TimeoutError, OSError):
                await asyncio.sleep(1)
        for subs in self.subscribers.values():
            for sub in subs:
                sub.put(RESYNC)

    async def close(self) -> None:
        if self._pubsub is not None:
            pubsub, self._pubsub = self._pubsub, None
            try:
                await pubsub.aclose()
            except (redis_async.ConnectionError, OSError):
                pass


FANOUT = web.AppKey("fanout", Fanout)


def listener_client_name(keys: Keys) -> str:
    return f"{keys.prefix}:fanout"


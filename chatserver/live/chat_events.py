"""The chat-event bus (docs/websocket.md, Chat events): `message_created`,
`message_updated`, `chat_updated`, `chat_deleted`, published on the chat's
channel (wire.encode_event) and heard by every process's subscribed sockets;
and the chat-list events of a user (`chat_updated`, `chat_deleted`, folder
changes) on the user's channel, heard by their list sockets.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import json
import logging
import uuid
from collections.abc import AsyncIterator

import redis.asyncio as redis_async
from aiohttp import web

from chatserver.data import messages
from chatserver.db import Database
from chatserver.live import wire
from chatserver.live.fanout import RESYNC, Fanout
from chatserver.live.reads import live_content
from chatserver.live.state import AnswerState
from chatserver.redis_keys import Keys

log = logging.getLogger(__name__)


class ChatEvents:
    def __init__(self, redis: redis_async.Redis, keys: Keys, db: Database, state: AnswerState, fanout: Fanout):
        self.redis = redis
        self.keys = keys
        self.db = db
        self.state = state
        self.fanout = fanout

    async def publish(self, chat_id: uuid.UUID, event: dict) -> None:
        """Send a chat event to every subscribed socket of the chat, in every process."""
        await self._publish(self.keys.chat_channel(chat_id), str(chat_id), event)

    async def publish_to_user(self, user_id: uuid.UUID, event: dict) -> None:
        """Send a chat-list event to every list socket of the user, in every process."""
        await self._publish(self.keys.user_channel(user_id), _user_route(user_id), event)

    async def _publish(self, channel: str, route: str, event: dict) -> None:
        body = json.dumps(event, default=_json_value, separators=(",", ":"))
        try:
            await self.redis.publish(channel, wire.encode_event(route, body))
        except (redis_async.ConnectionError, redis_async.TimeoutError, OSError) as exc:
            # what was stored stays stored; subscribed tabs catch up when they reload
            log.warning("chat event %s for %s not published: %s", event["type"], route, exc)

    async def message_event(self, kind: str, message_ids: list[uuid.UUID]) -> None:
        """`message_created` or `message_updated` for each message, as stored now."""
        await self.messages_event(kind, await messages.get_many(self.db, message_ids))

    async def messages_event(self, kind: str, rows: list[dict]) -> None:
        """`message_created` or `message_updated` for messages just read (or
        written) as messages.get_many reads them."""
        for row in await live_content(self.state, rows):
            await self.publish(row["chat_id"], {"type": kind, "message": row})

    def watch(self, chat_id: uuid.UUID) -> contextlib.AbstractAsyncContextManager[AsyncIterator[dict]]:
        """The chat's events (dicts) while the block runs."""
        return self._watch(str(chat_id))

    def watch_user(self, user_id: uuid.UUID) -> contextlib.AbstractAsyncContextManager[AsyncIterator[dict]]:
        """The user's chat-list events (dicts) while the block runs."""
        return self._watch(_user_route(user_id))

    @contextlib.asynccontextmanager
    async def _watch(self, route: str) -> AsyncIterator[AsyncIterator[dict]]:
        async with self.fanout.subscribe(route) as sub:
            # events lost with the pub/sub connection stay lost: tabs catch up when they reload
            yield (event async for event in sub if event is not RESYNC)


CHAT_EVENTS = web.AppKey("chat_events", ChatEvents)


def _user_route(user_id: uuid.UUID) -> str:
    """A user's list events are routed apart from any chat's (never a bare id)."""
    return f"user:{user_id}"


def _json_value(value: object) -> object:
    """UUIDs and times in events as REST bodies render them."""
    if isinstance(value, dt.datetime):
        return value.isoformat().replace("+00:00", "Z")
    if isinstance(value, uuid.UUID):
        return str(value)
    raise TypeError(f"{type(value).__name__} is not JSON")

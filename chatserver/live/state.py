"""An answer's live state in Redis, changed only by the scripts of scripts.py.

While an answer streams, Redis holds its text so far (a string grown with
APPEND), the model's reasoning so far (another string, kept apart) and a
small hash: `state`, `next` (the callback `seq` expected next), `n` (how
many pieces were published), `ck` (last checkpoint), `ckc` and `ckr` (how
many bytes of the text and of the reasoning it took), `owner` (the process
driving a local backend), `sent` (a remote service accepted the request)
and, once finished, `final`; and the tool steps (a hash of each step's
latest JSON by id, and a list of the ids in call order). Each change makes
its pieces (wire.py) in the same script, which returns them for this
process's followers (fanout.dispatch) and publishes them on the chat's
channel while the set of processes following the answer holds another. The
state lingers for FINAL_GRACE_SECONDS after the end, so late readers and late
callbacks still find it. Nothing here touches PostgreSQL (answers.py does).
"""

from __future__ import annotations

import asyncio
import dataclasses
import json
import logging
import time
import uuid
from collections.abc import Sequence
from typing import cast

import redis.asyncio as redis_async
from aiohttp import web

from chatserver.config import Settings
from chatserver.data import messages
from chatserver.live import scripts, wire
from chatserver.live.fanout import Fanout
from chatserver.live.wire import Event
from chatserver.redis_keys import Keys
from chatserver.script_pipe import ScriptPipe

log = logging.getLogger(__name__)

FINAL_GRACE_SECONDS = 60
# how far ahead of the expected `seq` an early callback event may be parked
MAX_SEQ_AHEAD = 1000
# answers whose key lists are kept (a callback or a chunk then builds none)
_KEYS_KEPT = 10_000


# the pieces scripts.APPEND adds (anything else goes through APPLY)
_APPENDED = (wire.CHUNK, wire.REASONING)


class _ScriptKeys:
    """An answer's id and keys as its scripts take them, made once."""
    __slots__ = ("id", "apply", "append")

    def __init__(self, message_id: str, apply: list[str]):
        self.id, self.apply = message_id, apply
        # state hash, content, chat channel, active set, reasoning, watchers set
        self.append = [apply[0], apply[1], apply[3], apply[4], apply[5], apply[8]]


@dataclasses.dataclass
class Opened:
    state: str  # "new", "streaming" or a finished status
    pieces: int
    owner: str
    sent: bool


@dataclasses.dataclass
class Snapshot:
    content: str
    pieces: int
    final: dict | None  # the final event's fields (see wire.Event) once finished
    reasoning: str = ""
    steps: list[dict] = dataclasses.field(default_factory=list)  # tool steps, each's latest, in call order


class AnswerState:
    """`fanout` gets the pieces this process makes as they are made; without
    one (tools, tests) they are all published. The scripts run per piece go
    through a pipelined connection of their own (chatserver/script_pipe.py); `close` ends it."""

    def __init__(self, redis: redis_async.Redis, keys: Keys, settings: Settings, fanout: Fanout | None = None):
        self.redis = redis
        self.keys = keys
        self.settings = settings
        self.fanout = fanout
        self.instance = fanout.instance if fanout is not None else ""
        self.pipe = ScriptPipe(redis)
        self._open = redis.register_script(scripts.OPEN)
        self._apply = self.pipe.script(scripts.APPLY, self._delivered if fanout is not None else None)
        self._snapshot = self.pipe.script(scripts.SNAPSHOT)
        self._append = self.pipe.script(scripts.APPEND, self._delivered if fanout is not None else None)
        self._apply_keys: dict[uuid.UUID, _ScriptKeys] = {}
        self._resyncing: set[asyncio.Task] = set()
        self._unsaved = redis.register_script(scripts.UNSAVED)

    async def close(self) -> None:
        await self.pipe.close()

    async def open(self, message_id: uuid.UUID, owner: str = "") -> Opened:
        """Start the live state of an answer, or tell what state it already has."""
        state, pieces, current_owner, sent = await self._open(
            keys=[self.keys.stream(message_id), self.keys.streams_active],
            args=[str(message_id), time.time(), owner])
        return Opened(state, int(pieces), current_owner, bool(sent))

    async def claim(self, message_id: uuid.UUID, owner: str) -> None:
        await self.redis.hset(self.keys.stream(message_id), "owner", owner)

    async def mark_sent(self, message_id: uuid.UUID) -> None:
        """The AI service accepted the request: a re-run of the job must not send it again."""
        await self.redis.hset(self.keys.stream(message_id), "sent", "1")

    async def apply(self, message_id: uuid.UUID, chat_id: uuid.UUID, events: list[Event],
                    create_with: str | None = None, deadline: float | None = None) -> list:
        """Apply events and publish their pieces in one script; its reply:
        ["ok"], ["missing"], ["finished"], ["too_far"], ["too_long"], ["late"],
        ["checkpoint", text at, new text, reasoning at, new reasoning] (what is new since
        the last checkpoint, starting `at` UTF-8 bytes in) or
        ["final", text, final JSON, reasoning, steps JSON].
        `create_with` starts a state holding that text when none exists; past
        `deadline` (Unix seconds, by Redis's clock) nothing is applied."""
        known = self._apply_keys.get(message_id)
        if known is None:
            if len(self._apply_keys) >= _KEYS_KEPT:
                self._apply_keys.clear()
            k = self.keys
            known = self._apply_keys[message_id] = _ScriptKeys(
                str(message_id),
                [k.stream(message_id), k.stream_content(message_id), k.stream_pending(message_id),
                 k.chat_channel(chat_id), k.streams_active, k.stream_reasoning(message_id),
                 k.stream_steps(message_id), k.stream_step_order(message_id), k.stream_watchers(message_id)])
        if len(events) == 1 and create_with is None and deadline is None:
            event = events[0]
            if event.seq is None and event.text and event.kind in _APPENDED:
                args: list = [known.id, time.time(), self.settings.STREAM_CHECKPOINT_SECONDS,
                              self.settings.MAX_ANSWER_BYTES, self.instance, event.kind, event.text]
                return (await self._append(keys=known.append, args=args))[1:]
        args = [known.id, time.time(), self.settings.STREAM_CHECKPOINT_SECONDS, MAX_SEQ_AHEAD,
                FINAL_GRACE_SECONDS, "1" if create_with is not None else "", create_with or "",
                self.settings.MAX_ANSWER_BYTES, "" if deadline is None else repr(deadline), self.instance]
        for event in events:
            args += [event.kind, "" if event.seq is None else event.seq, event.text, event.final]
        keys = known.apply
        return (await self._apply(keys=keys, args=args))[1:]

    def _delivered(self, args: Sequence, reply: object) -> None:
        """An APPLY call replied: its pieces go to this process's followers; a
        call whose reply was lost may have made pieces none of them will hear of."""
        assert self.fanout is not None
        if isinstance(reply, BaseException):
            # once Redis answers again: a follower reading its snapshot now would fail with the outage
            task = asyncio.create_task(self._resync_when_back(args[0]))
            self._resyncing.add(task)
            task.add_done_callback(self._resyncing.discard)
        else:
            for data in cast(list, reply)[0]:
                try:
                    self.fanout.dispatch(data)
                except ValueError:
                    log.error("not handing over a malformed stream piece of %s", args[0])

    async def _resync_when_back(self, message_id: str) -> None:
        assert self.fanout is not None
        while True:
            try:
                await self.redis.ping()
                break
            except (redis_async.ConnectionError, redis_async.TimeoutError, OSError):
                await asyncio.sleep(1)
        self.fanout.resync(message_id)

    async def snapshot(self, message_id: object, *, watch: bool = False) -> Snapshot | None:
        """The answer's live state, or None when Redis holds none. `watch`: this
        process follows the answer, so every later piece made elsewhere is published."""
        k = self.keys
        found = await self._snapshot(keys=[k.stream(message_id), k.stream_content(message_id),
                                           k.stream_reasoning(message_id), k.stream_steps(message_id),
                                           k.stream_step_order(message_id), k.stream_watchers(message_id)],
                                     args=[self.instance if watch else ""])
        if not found:
            return None
        state, pieces, final, content, reasoning, steps = found
        return Snapshot(content, int(pieces), json.loads(final) if state in messages.FINISHED else None, reasoning,
                        json.loads(steps))

    async def status(self, message_id: object) -> str | None:
        """The answer's live status ("streaming" or how it ended), None when
        Redis holds none: what a periodic check needs, without the text a
        snapshot copies (a check every few seconds of a long answer would
        otherwise cost bytes growing with the square of its length)."""
        return cast(str | None, await self.redis.hget(self.keys.stream(message_id), "state"))

    async def unsaved(self, message_id: uuid.UUID, content_at: int, reasoning_at: int) -> tuple[str, str] | None:
        """A streaming answer's text and reasoning from these UTF-8 byte offsets
        on; None once it ended."""
        k = self.keys
        found = await self._unsaved(keys=[k.stream(message_id), k.stream_content(message_id),
                                          k.stream_reasoning(message_id)], args=[content_at, reasoning_at])
        return None if not found else (found[0], found[1])

    async def active(self) -> list[tuple[str, float, str]]:
        """Every live answer: its id, last activity (Unix time) and owner."""
        live = cast(list[tuple[str, float]],
                    await self.redis.zrange(self.keys.streams_active, 0, -1, withscores=True))
        if not live:
            return []
        async with self.redis.pipeline(transaction=False) as pipe:
            for message_id, _ in live:
                pipe.hget(self.keys.stream(message_id), "owner")
            owners = await pipe.execute()
        return [(message_id, last, owner or "") for (message_id, last), owner in zip(live, owners, strict=True)]

    async def forget(self, message_id: str) -> None:
        """Drop an answer from the active set (it ended without a live state)."""
        await self.redis.zrem(self.keys.streams_active, message_id)


ANSWER_STATE = web.AppKey("answer_state", AnswerState)

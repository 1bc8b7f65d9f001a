"""Live answers, from the backend's pieces to every process's followers.

While an answer streams, Redis holds its text so far (a string grown with
APPEND), the model's reasoning so far (another string, kept apart) and a
small hash: `state`, `next` (the callback `seq` expected next),
`n` (how many pieces were published), `ck` (last checkpoint), `owner` (the
process driving a local backend), `sent` (a remote service accepted the
request) and, once finished, `final`. The scripts in scripts.py change it and
publish each piece (wire.py) on the chat's channel.

Each process holds one pub/sub connection, subscribed to every chat channel
before the app serves its first request. `follow(message_id)` registers with
it first, then reads the snapshot (text so far and its piece number), then
yields only the pieces numbered above it (text, reasoning and passing statuses
such as "retrying"); a gap in the numbers (the pub/sub
connection was lost) is filled from a fresh snapshot. A finished answer also
stops a generation this process may still be driving (cancel, time-out or
chat deletion elsewhere).

PostgreSQL sees a partial answer at most once per STREAM_CHECKPOINT_SECONDS
and the final one once; the Redis state then lingers for FINAL_GRACE_SECONDS
so late readers and late callbacks still find it. Watchers hear of the end
from Redis a moment before PostgreSQL stores it, so REST reads go through
`live_content`, which shows an answer Redis holds as finished as finished.
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import datetime as dt
import json
import logging
import time
import uuid
from collections.abc import AsyncGenerator, Iterable, Iterator
from typing import Literal, cast

import redis.asyncio as redis_async
from aiohttp import web

from chatserver import appkeys
from chatserver.config import Settings
from chatserver.data import messages
from chatserver.db import Database
from chatserver.keys import Keys
from chatserver.live import scripts, wire
from chatserver.live.coalesce import CoalescedScript

log = logging.getLogger(__name__)

FINAL_GRACE_SECONDS = 60
# how far ahead of the expected `seq` an early callback event may be parked
MAX_SEQ_AHEAD = 1000
# put in every follower's queue after the subscription was lost: pieces may be missing
_RESYNC = object()


class AlreadyFinished(Exception):
    """The answer had already ended (complete, failed or cancelled)."""


@dataclasses.dataclass
class Event:
    """One step of an answer: a chunk of text, or its end."""
    kind: str  # "c" chunk, "r" reasoning, "s" status, "f" final, "F" final whose text replaces the streamed one
    text: str = ""
    seq: int | None = None
    final: str = ""  # JSON {"status", "sources", "error", "finish_reason", "usage", "model", "at"} of a final event

    @classmethod
    def chunk(cls, text: str, seq: int | None = None) -> Event:
        return cls("c", text, seq)

    @classmethod
    def reasoning(cls, text: str) -> Event:
        return cls("r", text)

    @classmethod
    def status(cls, status: str, attempt: int) -> Event:
        return cls("s", json.dumps({"status": status, "attempt": attempt}, separators=(",", ":")))

    @classmethod
    def end(cls, status: str, *, sources: Iterable[dict] = (), error: str | None = None,
            content: str | None = None, seq: int | None = None, finish_reason: str | None = None,
            usage: dict | None = None, model: str | None = None) -> Event:
        final = json.dumps({"status": status, "sources": list(sources), "error": error,
                            "finish_reason": finish_reason, "usage": usage, "model": model, "at": time.time()},
                           separators=(",", ":"))
        return cls("F" if content is not None else "f", content or "", seq, final)


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
    final: dict | None  # the final event's fields (see Event) once finished
    reasoning: str = ""


@dataclasses.dataclass(frozen=True)
class Text:
    """What `follow` yields before the end: first the whole text so far
    ("content", with the reasoning so far), then each later piece of the
    answer ("chunk") or of the model's reasoning ("reasoning")."""
    kind: Literal["content", "chunk", "reasoning"]
    text: str
    reasoning: str = ""


@dataclasses.dataclass(frozen=True)
class Status:
    """A passing state of the answer, e.g. "retrying" while the model server asks to wait."""
    status: str
    attempt: int


@dataclasses.dataclass(frozen=True)
class End:
    """The last thing `follow` yields. `content` is set only when the final
    text is not the concatenation of what was yielded (an authoritative
    `complete.content` that differs from the stream)."""
    status: str
    sources: list
    error: str | None
    content: str | None = None
    finish_reason: str | None = None
    usage: dict | None = None
    model: str | None = None


class _Sent:
    """What one follower has yielded of an answer so far."""

    def __init__(self, text: str):
        self.parts = [text]

    def add(self, text: str) -> None:
        self.parts.append(text)

    def value(self) -> str:
        joined = "".join(self.parts)
        self.parts = [joined]
        return joined


class Streams:
    def __init__(self, redis: redis_async.Redis, keys: Keys, settings: Settings, db: Database):
        self.redis = redis
        self.keys = keys
        self.settings = settings
        self.db = db
        self._open = redis.register_script(scripts.OPEN)
        self._apply = CoalescedScript(redis, scripts.APPLY)
        self._snapshot = CoalescedScript(redis, scripts.SNAPSHOT)
        self.followers: dict[str, set[asyncio.Queue]] = {}
        # sockets subscribed to chat events, by chat id
        self.watchers: dict[str, set[asyncio.Queue]] = {}
        # local generations by message id, stopped when their answer ends elsewhere
        self.running: dict[str, asyncio.Task] = {}
        self._pubsub: redis_async.client.PubSub | None = None

    # ---- state

    async def open(self, message_id: uuid.UUID, owner: str = "") -> Opened:
        """Start the live state of an answer, or tell what state it already has."""
        state, pieces, current_owner, sent = await self._open(
            keys=[self.keys.stream(message_id), self.keys.streams_active],
            args=[str(message_id), time.time(), owner])
        return Opened(state, int(pieces), current_owner, bool(sent))

    async def claim(self, message_id: uuid.UUID, owner: str) -> None:
        await self.redis.hset(self.keys.stream(message_id), "owner", owner)

    async def owner(self, message_id: object) -> str:
        # the client decodes replies (decode_responses=True)
        return cast(str | None, await self.redis.hget(self.keys.stream(message_id), "owner")) or ""

    async def mark_sent(self, message_id: uuid.UUID) -> None:
        """The AI service accepted the request: a re-run of the job must not send it again."""
        await self.redis.hset(self.keys.stream(message_id), "sent", "1")

    async def apply(self, message_id: uuid.UUID, chat_id: uuid.UUID, events: list[Event],
                    *, create_with: str | None = None, deadline: float | None = None) -> tuple[str, dict | None]:
        """Apply events in one script; returns the outcome ("ok", "missing",
        "finished", "too_far", "final" or "late") and, for "final", the stored message.
        `create_with` starts a state holding that text when none exists, so an
        answer that never streamed can still be finished for its followers.
        Past `deadline` (Unix seconds, by Redis's clock) nothing is applied: "late"."""
        args: list = [str(message_id), time.time(), self.settings.STREAM_CHECKPOINT_SECONDS, MAX_SEQ_AHEAD,
                      FINAL_GRACE_SECONDS, "1" if create_with is not None else "", create_with or "",
                      self.settings.MAX_ANSWER_BYTES, "" if deadline is None else repr(deadline)]
        for event in events:
            args += [event.kind, "" if event.seq is None else event.seq, event.text, event.final]
        k = self.keys
        result = await self._apply(keys=[k.stream(message_id), k.stream_content(message_id),
                                         k.stream_pending(message_id), k.chat_channel(chat_id), k.streams_active,
                                         k.stream_reasoning(message_id)],
                                   args=args)
        outcome = result[0]
        if outcome == "too_long":
            # a runaway backend must not fill Redis and PostgreSQL: the answer
            # fails with what it had, and the sender is told to stop
            await self.finish(message_id, chat_id, "failed", create_with=None,
                              error=f"the answer exceeded {self.settings.MAX_ANSWER_BYTES} bytes")
            return "finished", None
        if outcome == "checkpoint":
            await messages.checkpoint(self.db, message_id, result[1], result[2])
            return "ok", None
        if outcome == "final":
            row = await _store_final(self.db, message_id, json.loads(result[2]), result[1], result[3])
            if row is not None:
                await self.message_event("message_updated", [row["id"]])
            return "final", row
        return outcome, None

    async def append(self, message_id: uuid.UUID, chat_id: uuid.UUID, text: str) -> bool:
        """Add text from a local backend; False once the answer was finished elsewhere."""
        outcome, _ = await self.apply(message_id, chat_id, [Event.chunk(text)])
        return outcome == "ok"

    async def append_reasoning(self, message_id: uuid.UUID, chat_id: uuid.UUID, text: str) -> bool:
        """Add reasoning text from a local backend; False once the answer was finished elsewhere."""
        outcome, _ = await self.apply(message_id, chat_id, [Event.reasoning(text)])
        return outcome == "ok"

    async def set_status(self, message_id: uuid.UUID, chat_id: uuid.UUID, status: str, attempt: int) -> bool:
        """Tell the answer's watchers it waits (e.g. to retry); also counts as activity."""
        outcome, _ = await self.apply(message_id, chat_id, [Event.status(status, attempt)])
        return outcome == "ok"

    async def finish(self, message_id: uuid.UUID, chat_id: uuid.UUID, status: str, *,
                     sources: Iterable[dict] = (), error: str | None = None,
                     create_with: str | None = "", finish_reason: str | None = None,
                     usage: dict | None = None, model: str | None = None) -> dict | None:
        """End an answer (also one that never started streaming); the stored
        message, or None when it had already ended."""
        end = Event.end(status, sources=sources, error=error, finish_reason=finish_reason, usage=usage,
                        model=model)
        outcome, row = await self.apply(message_id, chat_id, [end], create_with=create_with)
        return row if outcome == "final" else None

    async def cancel(self, row: dict, reason: str = "cancelled") -> dict:
        """Stop an unfinished answer (a row with id, chat_id, status, content),
        keeping its text so far; the stored message. AlreadyFinished if it had ended."""
        if row["status"] not in messages.UNFINISHED:
            raise AlreadyFinished()
        done = await self.finish(row["id"], row["chat_id"], "cancelled", error=reason, create_with=row["content"])
        if done is None:
            raise AlreadyFinished()
        return done

    async def cancel_chat(self, chat_id: uuid.UUID, reason: str) -> None:
        for row in await messages.unfinished_in_chat(self.db, chat_id):
            await self.finish(row["id"], row["chat_id"], "cancelled", error=reason, create_with=row["content"])

    async def fail(self, message_id: uuid.UUID | str, reason: str) -> bool:
        """Finish an unfinished answer as failed, telling its followers; False if it had ended."""
        row = await messages.get_unfinished(self.db, message_id)
        if row is None:
            return False
        done = await self.finish(row["id"], row["chat_id"], "failed", error=reason, create_with=row["content"])
        return done is not None

    async def snapshot(self, message_id: object) -> Snapshot | None:
        """The answer's live state, or None when Redis holds none."""
        k = self.keys
        found = await self._snapshot(keys=[k.stream(message_id), k.stream_content(message_id),
                                           k.stream_reasoning(message_id)])
        if not found:
            return None
        state, pieces, final, content, reasoning = found
        return Snapshot(content, int(pieces), json.loads(final) if state in messages.FINISHED else None, reasoning)

    async def store_final_from_redis(self, message_id: uuid.UUID) -> None:
        """Write an answer that finished in Redis but not yet in PostgreSQL (a crash in between)."""
        snap = await self.snapshot(message_id)
        if snap is not None and snap.final is not None:
            await _store_final(self.db, message_id, snap.final, snap.content, snap.reasoning)

    async def live_content(self, rows: list[dict]) -> list[dict]:
        """Rows with answers PostgreSQL calls unfinished brought up to date from
        Redis: the text so far of a streaming one, and the whole end of one that
        finished a moment ago (Redis knows before PostgreSQL does)."""
        for row in rows:
            if row["status"] in messages.UNFINISHED:
                snap = await self.snapshot(row["id"])
                if snap is None:
                    continue
                row["content"], row["reasoning"] = snap.content, snap.reasoning
                if snap.final is None:
                    row["status"] = "streaming"
                    continue
                final = snap.final
                row.update(status=final["status"], sources=final["sources"], error=final["error"],
                           finish_reason=final.get("finish_reason"), usage=final.get("usage"),
                           model=final.get("model") or row.get("model"),
                           completed_at=dt.datetime.fromtimestamp(final.get("at") or time.time(), dt.UTC))
        return rows

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

    # ---- following

    async def _current(self, message_id: uuid.UUID) -> Snapshot:
        """The answer's state from Redis, else from PostgreSQL (not started yet, or long finished)."""
        snap = await self.snapshot(message_id)
        if snap is not None:
            return snap
        row = await messages.get_state(self.db, message_id)
        if row is None:
            return Snapshot("", 0, {"status": "failed", "sources": [], "error": "the message was deleted"})
        if row["status"] in messages.FINISHED:
            final = {k: row[k] for k in ("status", "sources", "error", "finish_reason", "usage", "model")}
            return Snapshot(row["content"], 0, final, row["reasoning"])
        # the stream may have opened between the two reads; if not, the stored
        # text is all there is (a pending answer's is empty)
        snap = await self.snapshot(message_id)
        return snap if snap is not None else Snapshot(row["content"], 0, None, row["reasoning"])

    async def follow(self, message_id: uuid.UUID) -> AsyncGenerator[Text | Status | End, None]:
        """The answer exactly: Text("content") with everything so far (and the
        reasoning so far), then each later Text("chunk") or Text("reasoning")
        and any Status, then one End."""
        with _registered(self.followers, str(message_id)) as queue:
            snap = await self._current(message_id)
            yield Text("content", snap.content, snap.reasoning)
            sent, thought = _Sent(snap.content), _Sent(snap.reasoning)
            if snap.final is not None:
                for item in _ending(snap.final, sent, snap.content, thought, snap.reasoning):
                    yield item
                return
            last, pending = snap.pieces, None
            while True:
                piece, pending = pending or await queue.get(), None
                if piece is _RESYNC or piece.n > last + 1:
                    snap = await self._current(message_id)
                    if snap.final is not None:
                        for item in _ending(snap.final, sent, snap.content, thought, snap.reasoning):
                            yield item
                        return
                    kind: Literal["reasoning", "chunk"]
                    for kind, so_far, now in (("reasoning", thought, snap.reasoning), ("chunk", sent, snap.content)):
                        missing = _missing(so_far, now)
                        if missing:
                            yield Text(kind, missing)
                    last = snap.pieces
                    continue
                if piece.n <= last:
                    continue
                last = piece.n
                if piece.kind == wire.CHUNK:
                    # a follower that fell behind takes the chunks waiting for it as one:
                    # with many watchers, frames not sent are how they all keep up
                    parts = [piece.body]
                    while not queue.empty():
                        pending = queue.get_nowait()
                        if pending is _RESYNC or pending.kind != wire.CHUNK or pending.n != last + 1:
                            break
                        parts.append(pending.body)
                        last, pending = pending.n, None
                    body = "".join(parts)
                    sent.add(body)
                    yield Text("chunk", body)
                elif piece.kind == wire.REASONING:
                    thought.add(piece.body)
                    yield Text("reasoning", piece.body)
                elif piece.kind == wire.STATUS:
                    status = json.loads(piece.body)
                    yield Status(status["status"], status["attempt"])
                else:
                    final = json.loads(piece.body)
                    content = final.pop("content")
                    for item in _ending(final, sent, content, thought, None):
                        yield item
                    return

    # ---- chat events

    async def publish_event(self, chat_id: uuid.UUID, event: dict) -> None:
        """Send a chat event to every subscribed socket of the chat, in every process."""
        body = json.dumps(event, default=_json_value, separators=(",", ":"))
        try:
            await self.redis.publish(self.keys.chat_channel(chat_id), wire.encode_event(str(chat_id), body))
        except (redis_async.ConnectionError, redis_async.TimeoutError, OSError) as exc:
            # what was stored stays stored; subscribed tabs catch up when they reload
            log.warning("chat event %s of chat %s not published: %s", event["type"], chat_id, exc)

    async def message_event(self, kind: str, message_ids: list[uuid.UUID]) -> None:
        """`message_created` or `message_updated` for each message, as stored now."""
        for row in await self.live_content(await messages.get_many(self.db, message_ids)):
            await self.publish_event(row["chat_id"], {"type": kind, "message": row})

    def watch(self, chat_id: uuid.UUID) -> contextlib.AbstractContextManager[asyncio.Queue]:
        """A queue receiving the chat's events (dicts) while the block runs."""
        return _registered(self.watchers, str(chat_id))

    def dispatch(self, data: str) -> None:
        piece = wire.decode(data)
        if piece.kind == wire.EVENT:
            queues = self.watchers.get(piece.message_id)
            if queues:
                event = json.loads(piece.body)
                for queue in queues:
                    queue.put_nowait(event)
            return
        if piece.kind == wire.FINAL and piece.message_id in self.running:
            self.running[piece.message_id].cancel()
        for queue in self.followers.get(piece.message_id, ()):
            queue.put_nowait(piece)

    # ---- the pub/sub listener

    async def subscribe(self, client: redis_async.Redis) -> None:
        pubsub = client.pubsub()
        await pubsub.psubscribe(self.keys.chat_channel_pattern)
        while (await pubsub.get_message(timeout=5)) is None:
            pass  # the first message is the subscription's confirmation
        self._pubsub = pubsub

    async def listen(self, client: redis_async.Redis) -> None:
        while True:
            try:
                assert self._pubsub is not None
                async for message in self._pubsub.listen():
                    if message["type"] != "pmessage":
                        continue
                    try:
                        self.dispatch(message["data"])
                    except ValueError:
                        log.error("ignoring a malformed stream piece on %s", message["channel"])
            except (redis_async.ConnectionError, redis_async.TimeoutError, OSError) as exc:
                log.warning("stream fan-out lost Redis (%s); resubscribing", exc)
            await self._resubscribe(client)

    async def _resubscribe(self, client: redis_async.Redis) -> None:
        await self.close()
        while True:
            try:
                await self.subscribe(client)
                break
            except (redis_async.ConnectionError, redis_async.TimeoutError, OSError):
                await asyncio.sleep(1)
        for queues in self.followers.values():
            for queue in queues:
                queue.put_nowait(_RESYNC)

    async def close(self) -> None:
        if self._pubsub is not None:
            pubsub, self._pubsub = self._pubsub, None
            try:
                await pubsub.aclose()
            except (redis_async.ConnectionError, OSError):
                pass


@contextlib.contextmanager
def _registered(table: dict[str, set[asyncio.Queue]], key: str) -> Iterator[asyncio.Queue]:
    """A queue in `table` under `key` while the block runs; the key leaves with its last queue."""
    queue: asyncio.Queue = asyncio.Queue()
    table.setdefault(key, set()).add(queue)
    try:
        yield queue
    finally:
        queues = table.get(key)
        if queues is not None:
            queues.discard(queue)
            if not queues:
                del table[key]


def _json_value(value: object) -> object:
    """UUIDs and times in events as REST bodies render them."""
    if isinstance(value, dt.datetime):
        return value.isoformat().replace("+00:00", "Z")
    if isinstance(value, uuid.UUID):
        return str(value)
    raise TypeError(f"{type(value).__name__} is not JSON")


def _missing(sent: _Sent, now: str) -> str:
    """What `now` adds to the text already sent (recording it as sent)."""
    so_far = sent.value()
    if now.startswith(so_far) and len(now) > len(so_far):
        sent.add(now[len(so_far):])
        return now[len(so_far):]
    return ""


def _ending(final: dict, sent: _Sent, content: str, thought: _Sent, reasoning: str | None) -> list[Text | End]:
    """What follows the text already sent when the answer ends with `content`
    (and `reasoning`, when known: a final piece carries none, as every piece of
    reasoning before it was published)."""
    items: list[Text | End] = []
    if reasoning is not None:
        missing = _missing(thought, reasoning)
        if missing:
            items.append(Text("reasoning", missing))
    so_far = sent.value()
    extends = content.startswith(so_far)
    if extends and len(content) > len(so_far):
        items.append(Text("chunk", content[len(so_far):]))
    items.append(End(final["status"], final["sources"], final["error"], None if extends else content,
                     final.get("finish_reason"), final.get("usage"), final.get("model")))
    return items


async def _store_final(db: Database, message_id: uuid.UUID, final: dict, content: str,
                       reasoning: str) -> dict | None:
    return await messages.finish(db, message_id, final["status"], content, final["sources"], final["error"],
                                 reasoning=reasoning, model=final.get("model"),
                                 finish_reason=final.get("finish_reason"), usage=final.get("usage"))


STREAMS = web.AppKey("streams", Streams)


def listener_client_name(keys: Keys) -> str:
    return f"{keys.prefix}:fanout"


async def streams_ctx(app: web.Application):
    streams = Streams(app[appkeys.REDIS], app[appkeys.KEYS], app[appkeys.SETTINGS], app[appkeys.DB])
    # a client of its own: a subscribed connection that breaks must never be
    # handed back to the pool that runs ordinary commands
    client = redis_async.Redis.from_url(app[appkeys.REDIS_URL], decode_responses=True,
                                        client_name=listener_client_name(app[appkeys.KEYS]))
    await streams.subscribe(client)
    app[STREAMS] = streams
    listener = asyncio.create_task(streams.listen(client))
    yield
    listener.cancel()
    await asyncio.gather(listener, return_exceptions=True)
    await streams.close()
    await client.aclose()

"""`follow(message_id)`: one answer exactly, whenever the follower joins.

It subscribes first (fanout.py), then reads the snapshot (text so far and
its piece number; the read makes later pieces reach this process), then
yields only the pieces numbered above it; a gap in the numbers (the pub/sub
connection was lost, or a piece made here overtook one made elsewhere) is
filled from a fresh snapshot. Every transport (WebSocket, server-sent events, /v1) reads
answers only through it and shapes what it yields (wire.Item) its own way.
"""

from __future__ import annotations

import json
import uuid
from collections.abc import AsyncGenerator
from typing import Literal, TypeGuard

from aiohttp import web

from chatserver.data import messages
from chatserver.db import Database
from chatserver.live import wire
from chatserver.live.fanout import RESYNC, Fanout
from chatserver.live.state import AnswerState, Snapshot
from chatserver.live.wire import End, Text


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


class Followers:
    def __init__(self, state: AnswerState, fanout: Fanout, db: Database):
        self.state = state
        self.fanout = fanout
        self.db = db

    async def _current(self, message_id: uuid.UUID, fresh: bool = False) -> Snapshot:
        """The answer's state from Redis, else from PostgreSQL (not started yet,
        or long finished); `fresh`: see `follow`."""
        snap = await self.state.snapshot(message_id, watch=True)
        if snap is not None:
            return snap
        if fresh:
            return Snapshot("", 0, None)
        row = await messages.get_state(self.db, message_id)
        if row is None:
            return Snapshot("", 0, {"status": "failed", "sources": [], "error": "the message was deleted"})
        if row["status"] in messages.FINISHED:
            final = {k: row[k] for k in ("status", "sources", "error", "finish_reason", "usage", "model",
                                         "tool_calls")}
            return Snapshot(row["content"], 0, final, row["reasoning"], row["steps"])
        # the stream may have opened between the two reads; if not, the stored
        # text is all there is (a pending answer's is empty)
        snap = await self.state.snapshot(message_id, watch=True)
        return snap if snap is not None else Snapshot(row["content"], 0, None, row["reasoning"], row["steps"])

    async def follow(self, message_id: uuid.UUID, *, fresh: bool = False) -> AsyncGenerator[wire.Item, None]:
        """The answer exactly: Text("content") with everything so far (and the
        reasoning and tool steps so far), then each later Text("chunk"),
        Text("reasoning"), Step and passing item (wire.PASSING) as published,
        then one End. Each state of a step (running, then done or failed) is
        yielded once.

        `fresh`: the caller stored the answer as pending a moment ago (an API
        call following its own answer). Until Redis holds a state for it, it
        is then pending with no text, and PostgreSQL need not be asked: every
        change of an answer, its end included, makes its state in Redis
        first, and an ended one's stays there FINAL_GRACE_SECONDS."""
        # the end is yielded after the block: the subscription ends with the
        # answer, even if the caller never reads past the End
        async with self.fanout.subscribe(str(message_id)) as sub:
            snap = await self._current(message_id, fresh)
            yield Text("content", snap.content, snap.reasoning, tuple(snap.steps))
            sent, thought = _Sent(snap.content), _Sent(snap.reasoning)
            steps = {step["id"]: step["status"] for step in snap.steps}
            ending: list[wire.Item] | None = None
            if snap.final is not None:
                ending = _ending(snap.final, sent, snap.content, thought, snap.reasoning)
            else:
                last = snap.pieces
                async for piece in sub:
                    if piece is RESYNC or piece.n > last + 1:
                        snap = await self._current(message_id)
                        for step in _new_steps(snap.steps, steps):
                            yield wire.Step(step)
                        if snap.final is not None:
                            ending = _ending(snap.final, sent, snap.content, thought, snap.reasoning)
                            break
                        for text in _catch_up(snap, sent, thought):
                            yield text
                        last = snap.pieces
                        continue
                    if piece.n <= last:
                        continue
                    last = piece.n
                    if piece.kind == wire.CHUNK:
                        # a follower that fell behind takes the chunks waiting for it as one:
                        # with many watchers, frames not sent are how they all keep up
                        parts = [piece.body]
                        while _follows(early := sub.peek(), last):
                            sub.skip()
                            parts.append(early.body)
                            last = early.n
                        body = "".join(parts)
                        sent.add(body)
                        yield Text("chunk", body)
                    elif piece.kind == wire.REASONING:
                        thought.add(piece.body)
                        yield Text("reasoning", piece.body)
                    elif piece.kind == wire.TOOL_STEP:
                        for step in _new_steps([json.loads(piece.body)], steps):
                            yield wire.Step(step)
                    elif piece.kind == wire.FINAL:
                        final = json.loads(piece.body)
                        content = final.pop("content")
                        ending = _ending(final, sent, content, thought, None)
                        break
                    else:
                        yield wire.passing(piece)
        for item in ending or ():
            yield item


FOLLOWERS = web.AppKey("followers", Followers)


def _follows(early: object, last: int) -> TypeGuard[wire.Piece]:
    """Whether a waiting item is the chunk right after piece `last`."""
    return isinstance(early, wire.Piece) and early.kind == wire.CHUNK and early.n == last + 1


def _catch_up(snap: Snapshot, sent: _Sent, thought: _Sent) -> list[Text]:
    """What a fresh snapshot adds to the reasoning and text already sent."""
    items = []
    kind: Literal["reasoning", "chunk"]
    for kind, so_far, now in (("reasoning", thought, snap.reasoning), ("chunk", sent, snap.content)):
        missing = _missing(so_far, now)
        if missing:
            items.append(Text(kind, missing))
    return items


def _new_steps(found: list[dict], sent: dict[str, str]) -> list[dict]:
    """The steps in a state not yet yielded (recording them as yielded)."""
    new = [step for step in found if sent.get(step["id"]) != step["status"]]
    sent.update((step["id"], step["status"]) for step in new)
    return new


def _missing(sent: _Sent, now: str) -> str:
    """What `now` adds to the text already sent (recording it as sent)."""
    so_far = sent.value()
    if now.startswith(so_far) and len(now) > len(so_far):
        sent.add(now[len(so_far):])
        return now[len(so_far):]
    return ""


def _ending(final: dict, sent: _Sent, content: str, thought: _Sent, reasoning: str | None) -> list[wire.Item]:
    """What follows the text already sent when the answer ends with `content`
    (and `reasoning`, when known: a final piece carries none, as every piece of
    reasoning before it was published)."""
    items: list[wire.Item] = []
    if reasoning is not None:
        missing = _missing(thought, reasoning)
        if missing:
            items.append(Text("reasoning", missing))
    so_far = sent.value()
    extends = content.startswith(so_far)
    if extends and len(content) > len(so_far):
        items.append(Text("chunk", content[len(so_far):]))
    items.append(End(final["status"], final["sources"], final["error"], None if extends else content,
                     final.get("finish_reason"), final.get("usage"), final.get("model"), final.get("tool_calls")))
    return items

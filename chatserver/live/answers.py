"""Writing answers: what producers (the generation job, the AI callback,
cancels, the sweep) call, and the PostgreSQL side of a live answer.

Each call applies events to the live state (state.py), which publishes
them; PostgreSQL gets what a partial answer gained at most once per
STREAM_CHECKPOINT_SECONDS (only the new text, so an answer costs it bytes in
proportion to its length) and the final one once, followed by a
`message_updated` chat event.
"""

from __future__ import annotations

import json
import uuid
from collections.abc import Iterable

from aiohttp import web

from chatserver.config import Settings
from chatserver.data import message_drafts, messages
from chatserver.db import Database
from chatserver.live.chat_events import ChatEvents
from chatserver.live.state import AnswerState
from chatserver.live.wire import Event

STEP_CUT = "the call was cut off as the answer ended"


class AlreadyFinished(Exception):
    """The answer had already ended (complete, failed or cancelled)."""


class Answers:
    def __init__(self, state: AnswerState, db: Database, events: ChatEvents, settings: Settings):
        self.state = state
        self.db = db
        self.events = events
        self.settings = settings

    async def apply(self, message_id: uuid.UUID, chat_id: uuid.UUID, events: list[Event],
                    *, create_with: str | None = None, deadline: float | None = None) -> tuple[str, dict | None]:
        """Apply events in one script; returns the outcome ("ok", "missing",
        "finished", "too_far", "final" or "late") and, for "final", the stored message.
        `create_with` starts a state holding that text when none exists, so an
        answer that never streamed can still be finished for its followers.
        Past `deadline` (Unix seconds, by Redis's clock) nothing is applied: "late"."""
        result = await self.state.apply(message_id, chat_id, events, create_with, deadline)
        outcome = result[0]
        if outcome == "too_long":
            # a runaway backend must not fill Redis and PostgreSQL: the answer
            # fails with what it had, and the sender is told to stop
            await self.finish(message_id, chat_id, "failed", create_with=None,
                              error=f"the answer exceeded {self.settings.MAX_ANSWER_BYTES} bytes")
            return "finished", None
        if outcome == "checkpoint":
            await self._checkpoint(message_id, *result[1:])
            return "ok", None
        if outcome == "final":
            row = await _store_final(self.db, message_id, json.loads(result[2]), result[1], result[3],
                                     json.loads(result[4]))
            if row is not None:
                await self.events.messages_event("message_updated", [row])
            return "final", row
        return outcome, None

    async def _checkpoint(self, message_id: uuid.UUID, content_at: int, content: str, reasoning_at: int,
                          reasoning: str) -> None:
        """Store what the answer gained since the last checkpoint. When the
        stored text ends before this piece (the checkpoint before it never
        reached PostgreSQL: its process died, or it is still on its way), what
        is missing is still in Redis, and goes with the rest."""
        saved = await message_drafts.add(self.db, message_id, content_at, content, reasoning_at, reasoning)
        if saved is None:
            return
        content_upto, reasoning_upto = saved
        if content_upto < content_at + len(content.encode()) or reasoning_upto < reasoning_at + len(reasoning.encode()):
            rest = await self.state.unsaved(message_id, content_upto, reasoning_upto)
            if rest is not None:
                await message_drafts.add(self.db, message_id, content_upto, rest[0], reasoning_upto, rest[1])

    async def add(self, message_id: uuid.UUID, chat_id: uuid.UUID, event: Event) -> bool:
        """Add one piece from a local backend; False once the answer was finished elsewhere."""
        outcome, _ = await self.apply(message_id, chat_id, [event])
        return outcome == "ok"

    async def finish(self, message_id: uuid.UUID, chat_id: uuid.UUID, status: str, *,
                     sources: Iterable[dict] = (), error: str | None = None,
                     create_with: str | None = "", finish_reason: str | None = None,
                     usage: dict | None = None, model: str | None = None,
                     tool_calls: list[dict] | None = None) -> dict | None:
        """End an answer (also one that never started streaming); the stored
        message, or None when it had already ended. A tool call still running
        ends with it, failed, and is never run again."""
        if status != "complete":
            await self._cut_running_steps(message_id, chat_id, f"{STEP_CUT}: {error or status}")
        end = Event.end(status, sources=sources, error=error, finish_reason=finish_reason, usage=usage,
                        model=model, tool_calls=tool_calls)
        outcome, row = await self.apply(message_id, chat_id, [end], create_with=create_with)
        return row if outcome == "final" else None

    async def _cut_running_steps(self, message_id: uuid.UUID, chat_id: uuid.UUID, reason: str) -> None:
        snap = await self.state.snapshot(message_id)
        cut = [Event.tool_step({**step, "status": "failed", "error": reason})
               for step in (snap.steps if snap and snap.final is None else []) if step["status"] == "running"]
        if cut:
            await self.state.apply(message_id, chat_id, cut)

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

    async def store_final_from_redis(self, message_id: uuid.UUID) -> None:
        """Write an answer that finished in Redis but not yet in PostgreSQL (a crash in between)."""
        snap = await self.state.snapshot(message_id)
        if snap is not None and snap.final is not None:
            await _store_final(self.db, message_id, snap.final, snap.content, snap.reasoning, snap.steps)


async def _store_final(db: Database, message_id: uuid.UUID, final: dict, content: str,
                       reasoning: str, steps: list[dict]) -> dict | None:
    return await messages.finish(db, message_id, final["status"], content, final["sources"], final["error"],
                                 reasoning=reasoning, model=final.get("model"),
                                 finish_reason=final.get("finish_reason"), usage=final.get("usage"),
                                 tool_calls=final.get("tool_calls"), steps=steps)


ANSWERS = web.AppKey("answers", Answers)

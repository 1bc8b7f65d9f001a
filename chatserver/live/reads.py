"""Live state merged into REST reads.

Watchers hear of an answer's end from Redis a moment before PostgreSQL
stores it, and PostgreSQL sees a streaming answer's text only at
checkpoints, so every read of messages goes through `live_content`.
"""

from __future__ import annotations

import datetime as dt
import time

from chatserver.data import messages
from chatserver.live.state import AnswerState


async def live_content(state: AnswerState, rows: list[dict]) -> list[dict]:
    """Rows with answers PostgreSQL calls unfinished brought up to date from
    Redis: the text so far of a streaming one, and the whole end of one that
    finished a moment ago (Redis knows before PostgreSQL does)."""
    for row in rows:
        if row["status"] in messages.UNFINISHED:
            snap = await state.snapshot(row["id"])
            if snap is None:
                continue
            row["content"], row["reasoning"], row["steps"] = snap.content, snap.reasoning, snap.steps
            if snap.final is None:
                row["status"] = "streaming"
                continue
            final = snap.final
            row.update(status=final["status"], sources=final["sources"], error=final["error"],
                       finish_reason=final.get("finish_reason"), usage=final.get("usage"),
                       tool_calls=final.get("tool_calls"),
                       model=final.get("model") or row.get("model"),
                       completed_at=dt.datetime.fromtimestamp(final.get("at") or time.time(), dt.UTC))
    return rows

"""The periodic check that no answer hangs.

- a live answer without activity for STREAM_TIMEOUT_SECONDS fails, its text kept;
- a local generation whose process died (heartbeat gone) fails at once;
- an answer finished in Redis but not in PostgreSQL (a crash in between) is stored;
- an answer PostgreSQL calls streaming but Redis has forgotten fails;
- a pending answer whose job is nowhere in the queue is queued again.
"""

from __future__ import annotations

import logging
import time

from aiohttp import web

from chatserver import appkeys
from chatserver.ai.answer_job import GENERATE_TASK, INTERRUPTED, queue_answer
from chatserver.data import messages
from chatserver.live.answers import ANSWERS
from chatserver.live.state import ANSWER_STATE

log = logging.getLogger(__name__)

LOST = "the answer's live state was lost"


async def sweep_answers(app: web.Application, check_rows: bool = True) -> None:
    await _time_out(app)
    if check_rows:
        await _reconcile(app)


async def _time_out(app: web.Application) -> None:
    state, answers, queue = app[ANSWER_STATE], app[ANSWERS], app[appkeys.QUEUE]
    timeout = app[appkeys.SETTINGS].STREAM_TIMEOUT_SECONDS
    now = time.time()
    for message_id, last, owner in await state.active():
        if now - last > timeout:
            reason = f"no activity from the AI backend for {timeout:g} s"
        elif owner and not await queue.is_alive(owner):
            reason = INTERRUPTED
        else:
            continue
        log.warning("answer %s failed: %s", message_id, reason)
        if not await answers.fail(message_id, reason):
            await state.forget(message_id)


async def _reconcile(app: web.Application) -> None:
    state, answers = app[ANSWER_STATE], app[ANSWERS]
    rows = await messages.unfinished_answers(app[appkeys.DB], app[appkeys.SETTINGS].SWEEP_INTERVAL_SECONDS)
    queued = None
    for row in rows:
        status = await state.status(row["id"])
        if status is not None:
            if status in messages.FINISHED:
                await answers.store_final_from_redis(row["id"])
        elif row["status"] == "streaming":
            await answers.fail(row["id"], LOST)
        elif row["old"]:
            if queued is None:
                queued = {str(p.get("message_id")) for p in await app[appkeys.QUEUE].payloads(GENERATE_TASK)}
            if str(row["id"]) not in queued:
                log.warning("answer %s had no job; queued again", row["id"])
                await queue_answer(app, row["id"])

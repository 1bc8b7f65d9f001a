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

from .. import appkeys
from ..messages import GENERATE_TASK, queue_answer
from ..streams import STREAMS
from .job import INTERRUPTED, fail_answer

log = logging.getLogger(__name__)

LOST = "the answer's live state was lost"


async def sweep_answers(app: web.Application, check_rows: bool = True) -> None:
    await _time_out(app)
    if check_rows:
        await _reconcile(app)


async def _time_out(app: web.Application) -> None:
    redis, keys, timeout = app[appkeys.REDIS], app[appkeys.KEYS], app[appkeys.SETTINGS].STREAM_TIMEOUT_SECONDS
    live = await redis.zrange(keys.streams_active, 0, -1, withscores=True)
    if not live:
        return
    async with redis.pipeline(transaction=False) as pipe:
        for message_id, _ in live:
            pipe.hget(keys.stream(message_id), "owner")
        owners = await pipe.execute()
    now = time.time()
    for (message_id, last), owner in zip(live, owners):
        if now - last > timeout:
            reason = f"no activity from the AI backend for {timeout:g} s"
        elif owner and not await redis.exists(keys.heartbeat(owner)):
            reason = INTERRUPTED
        else:
            continue
        log.warning("answer %s failed: %s", message_id, reason)
        if not await fail_answer(app, message_id, reason):
            await redis.zrem(keys.streams_active, message_id)


async def _reconcile(app: web.Application) -> None:
    streams = app[STREAMS]
    rows = await app[appkeys.DB].fetch(
        """
        SELECT id, status, clock_timestamp() - created_at > make_interval(secs => %s) AS old
        FROM messages WHERE status IN ('pending', 'streaming') AND role = 'assistant'
        """,
        (app[appkeys.SETTINGS].SWEEP_INTERVAL_SECONDS,),
    )
    queued = None
    for row in rows:
        snap = await streams.snapshot(row["id"])
        if snap is not None:
            if snap.final is not None:
                await streams.store_final_from_redis(row["id"])
        elif row["status"] == "streaming":
            await fail_answer(app, row["id"], LOST)
        elif row["old"]:
            if queued is None:
                queued = {str(p.get("message_id")) for p in await app[appkeys.QUEUE].payloads(GENERATE_TASK)}
            if str(row["id"]) not in queued:
                log.warning("answer %s had no job; queued again", row["id"])
                await queue_answer(app, row["id"])

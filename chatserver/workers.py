"""Which job runs which code, and the periodic tasks (the old Celery beat)."""

from __future__ import annotations

import logging

from aiohttp import web

from . import appkeys
from .queue import Job, JobQueue
from .messages import GENERATE_TASK

log = logging.getLogger(__name__)


async def _fail_message(app: web.Application, job: Job, reason: str) -> None:
    await app[appkeys.DB].execute(
        """
        UPDATE messages SET status = 'failed', error = %s, completed_at = clock_timestamp()
        WHERE id = %s AND status IN ('pending', 'streaming')
        """,
        (reason, job.payload["message_id"]),
    )


def register_tasks(app: web.Application, queue: JobQueue) -> None:
    settings = app[appkeys.SETTINGS]

    async def generate_stub(job: Job) -> None:
        """STUB until the AI pipeline lands: takes the job and leaves the message pending."""
        log.info("ai.generate stub took message %s", job.payload.get("message_id"))

    async def message_dead(job: Job, reason: str) -> None:
        await _fail_message(app, job, reason)

    queue.task(GENERATE_TASK, "ai", generate_stub, on_dead=message_dead)
    queue.periodic("sweep", settings.SWEEP_INTERVAL_SECONDS, queue.sweep)

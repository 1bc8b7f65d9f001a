"""Which job runs which code, and the periodic tasks (the old Celery beat)."""

from __future__ import annotations

import logging

from aiohttp import web

from . import appkeys
from .queue import Job, JobQueue
from .messages import GENERATE_TASK
from .housekeeping import housekeep
from .preview.job import PREVIEW_TASK, make_preview_job, preview_dead

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

    async def preview(job: Job) -> None:
        await make_preview_job(app, job)

    async def file_dead(job: Job, reason: str) -> None:
        await preview_dead(app, job, reason)

    async def files_housekeeping() -> None:
        await housekeep(app)

    queue.task(PREVIEW_TASK, "preview", preview, on_dead=file_dead)
    queue.periodic("files.housekeeping", settings.FILES_HOUSEKEEPING_INTERVAL_SECONDS, files_housekeeping)

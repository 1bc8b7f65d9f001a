"""Which job runs which code, and the periodic tasks: the wiring between the
queue and the layers whose work it runs (ai, files, knowledge, portable)."""

from __future__ import annotations

from aiohttp import web

from chatserver import appkeys
from chatserver.ai.answer_job import GENERATE_TASK, generate
from chatserver.ai.sweep import sweep_answers
from chatserver.files.housekeeping import housekeep
from chatserver.files.preview import PREVIEW_TASK, make_preview_job, preview_dead
from chatserver.jobs.queue import Job, JobQueue
from chatserver.knowledge.indexing import EMBED_QUEUE, EMBED_TASK, embed_job
from chatserver.live.stream import STREAMS
from chatserver.portable.import_job import IMPORT_QUEUE, IMPORT_TASK, housekeep_imports, import_dead, run_import


def register_tasks(app: web.Application, queue: JobQueue) -> None:
    settings = app[appkeys.SETTINGS]

    async def generate_answer(job: Job) -> None:
        await generate(app, job.payload["message_id"], job.payload.get("options"))

    async def answer_dead(job: Job, reason: str) -> None:
        await app[STREAMS].fail(job.payload["message_id"], reason)

    sweeps = 0

    async def answers_sweep() -> None:
        # Stored rows are checked from the second sweep on, one interval after
        # start: a short-lived process (a test, a one-off command) sharing the
        # database never touches answers it has not seen.
        nonlocal sweeps
        sweeps += 1
        await sweep_answers(app, check_rows=sweeps > 1)

    queue.task(GENERATE_TASK, "ai", generate_answer, on_dead=answer_dead)
    queue.periodic("sweep", settings.SWEEP_INTERVAL_SECONDS, queue.sweep)
    queue.periodic("answers.sweep", settings.SWEEP_INTERVAL_SECONDS, answers_sweep)

    async def preview(job: Job) -> None:
        await make_preview_job(app, job)

    async def file_dead(job: Job, reason: str) -> None:
        await preview_dead(app, job, reason)

    async def files_housekeeping() -> None:
        await housekeep(app)

    # the extraction's own bounds, with room for reading and recording the file
    preview_timeout = max(settings.PREVIEW_TIMEOUT_SECONDS, settings.PREVIEW_SERVICE_TIMEOUT_SECONDS) + 30
    queue.task(PREVIEW_TASK, "preview", preview, on_dead=file_dead, timeout=preview_timeout)
    queue.periodic("files.housekeeping", settings.FILES_HOUSEKEEPING_INTERVAL_SECONDS, files_housekeeping)

    async def embed(job: Job) -> None:
        await embed_job(app, job.payload["file_id"])

    queue.task(EMBED_TASK, EMBED_QUEUE, embed)

    async def run_import_job(job: Job) -> None:
        await run_import(app, job.payload["import_id"])

    async def import_gave_up(job: Job, reason: str) -> None:
        await import_dead(app, job.payload["import_id"], reason)

    queue.task(IMPORT_TASK, IMPORT_QUEUE, run_import_job, on_dead=import_gave_up)

    async def imports_housekeeping() -> None:
        await housekeep_imports(app)

    queue.periodic("imports.housekeeping", settings.FILES_HOUSEKEEPING_INTERVAL_SECONDS, imports_housekeeping)

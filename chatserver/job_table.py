"""The job table: every kind of job and every periodic task of the server,
the function that runs each, and its options where they differ from the
worker's (time limit) — in one place, as app.py holds the routes.

It sits at app.py's level: it names code of the layers the jobs run (ai,
files, live, portable), so that jobs/ itself imports only infrastructure.
"""

from __future__ import annotations

from aiohttp import web

from chatserver.ai.answer_job import GENERATE_TASK, generate
from chatserver.ai.registry import answers_at_once
from chatserver.ai.sweep import sweep_answers
from chatserver.config import Settings
from chatserver.files.housekeeping import housekeep
from chatserver.files.preview import PREVIEW_TASK, make_preview_job, preview_dead
from chatserver.jobs.queue import Job
from chatserver.jobs.tasks import JobTable, Periodic, Task
from chatserver.knowledge.indexing import EMBED_QUEUE, EMBED_TASK, embed_job
from chatserver.live.answers import ANSWERS
from chatserver.portable.import_job import IMPORT_QUEUE, IMPORT_TASK, housekeep_imports, import_dead, run_import


def job_table(settings: Settings) -> JobTable:
    # the extraction's own bounds, with room for reading and recording the file
    preview_timeout = max(settings.PREVIEW_TIMEOUT_SECONDS, settings.PREVIEW_SERVICE_TIMEOUT_SECONDS) + 30
    return JobTable(
        concurrency={"ai": answers_at_once(settings), "preview": settings.QUEUE_PREVIEW_CONCURRENCY,
                     IMPORT_QUEUE: settings.QUEUE_IMPORT_CONCURRENCY},
        tasks=[
            Task(GENERATE_TASK, "ai", generate_answer, on_dead=answer_dead),
            Task(PREVIEW_TASK, "preview", make_preview_job, on_dead=preview_dead, timeout=preview_timeout),
            Task(IMPORT_TASK, IMPORT_QUEUE, run_import_job, on_dead=import_dead_job),
            Task(EMBED_TASK, EMBED_QUEUE, embed_file),
        ],
        periodic=[
            Periodic("answers.sweep", settings.SWEEP_INTERVAL_SECONDS, AnswersSweep()),
            Periodic("files.housekeeping", settings.FILES_HOUSEKEEPING_INTERVAL_SECONDS, housekeep),
            Periodic("imports.housekeeping", settings.FILES_HOUSEKEEPING_INTERVAL_SECONDS, housekeep_imports),
        ],
    )


async def generate_answer(app: web.Application, job: Job) -> None:
    await generate(app, job.payload["message_id"], job.payload.get("options"))


async def answer_dead(app: web.Application, job: Job, reason: str) -> None:
    await app[ANSWERS].fail(job.payload["message_id"], reason)


async def embed_file(app: web.Application, job: Job) -> None:
    await embed_job(app, job.payload["file_id"])


async def run_import_job(app: web.Application, job: Job) -> None:
    await run_import(app, job.payload["import_id"])


async def import_dead_job(app: web.Application, job: Job, reason: str) -> None:
    await import_dead(app, job.payload["import_id"], reason)


class AnswersSweep:
    """The answer sweep of one server. Stored rows are checked from its second
    run on, one interval after start: a short-lived process (a test, a one-off
    command) sharing the database never touches answers it has not seen."""

    def __init__(self) -> None:
        self.runs = 0

    async def __call__(self, app: web.Application) -> None:
        self.runs += 1
        await sweep_answers(app, check_rows=self.runs > 1)

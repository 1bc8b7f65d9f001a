"""The `preview` job: pending -> processing -> ready or failed.

A file that cannot be read is an outcome, not a job failure: it is recorded
as `failed` at once and the job ends. Anything else that goes wrong (the
service down, a time-out, the database) raises, so the queue retries with
backoff; when the attempts run out, `preview_dead` records the reason and
marks it temporary, so housekeeping tries again later, unless runs of the
job died with their process.
"""

from __future__ import annotations

import logging
import uuid
from pathlib import Path

import aiofiles.os
from aiohttp import web

from chatserver import appkeys
from chatserver.data import files
from chatserver.files.result import Preview, UnreadableFile
from chatserver.files.sandbox import extract_isolated
from chatserver.jobs.queue import Job
from chatserver.knowledge.indexing import index_file

log = logging.getLogger(__name__)

PREVIEW_TASK = "preview"


async def queue_preview(app: web.Application, file_id: uuid.UUID) -> None:
    await app[appkeys.QUEUE].enqueue(PREVIEW_TASK, {"file_id": str(file_id)})


async def make_preview_job(app: web.Application, job: Job) -> None:
    db, storage = app[appkeys.DB], app[appkeys.STORAGE]
    file_id = job.payload["file_id"]
    row = await files.start_processing(db, file_id)
    if row is None:
        return  # deleted meanwhile, or a repeated delivery of a finished job
    path = storage.path(row["storage_name"])
    try:
        if not await aiofiles.os.path.exists(path):
            raise UnreadableFile("the stored file is missing")
        preview = await _make(app, path, row["name"], row["content_type"])
    except UnreadableFile as exc:
        await _record_failure(app, file_id, str(exc), temporary=False)
        return
    await _record(app, file_id, row, preview)


async def _make(app: web.Application, path: Path, name: str, content_type: str) -> Preview:
    service = app[appkeys.PREVIEW_SERVICE]
    if service is not None:
        return await service.preview(path, name, content_type)
    settings = app[appkeys.SETTINGS]
    return await extract_isolated(path, content_type, settings.TEXT_EXTRACT_CHAR_BUDGET,
                                  timeout=settings.PREVIEW_TIMEOUT_SECONDS, memory_mb=settings.PREVIEW_MEMORY_MB)


async def _record(app: web.Application, file_id: str, row: dict, preview: Preview) -> None:
    storage = app[appkeys.STORAGE]
    image_name = None
    if preview.image is not None:
        assert preview.image_extension is not None, "a Preview's image always comes with its extension"
        image_name = await storage.write_preview(row["storage_name"], preview.image, preview.image_extension)
    updated = await files.record_ready(app[appkeys.DB], file_id, preview.text, preview.preview_text, image_name)
    if not updated and image_name:
        await storage.remove(None, image_name)
    elif updated and row["preview_image"] not in (None, image_name):
        # an earlier attempt's thumbnail in another format
        await storage.remove(None, row["preview_image"])
    if updated and not row["content_type"].startswith("image/"):
        # an image's text only describes it: nothing to search
        await index_file(app, uuid.UUID(file_id), row["user_id"], preview.text)


async def _record_failure(app: web.Application, file_id: str, reason: str, *, temporary: bool) -> None:
    log.info("preview of file %s failed: %s", file_id, reason)
    await files.record_failure(app[appkeys.DB], file_id, reason, temporary=temporary)


async def preview_dead(app: web.Application, job: Job, reason: str) -> None:
    # a job whose runs killed their processes is the file's doing: trying it
    # again later would only kill more
    await _record_failure(app, job.payload["file_id"], reason, temporary=not job.interrupted)

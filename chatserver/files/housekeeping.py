"""Housekeeping of uploaded files, a periodic task run once across all processes.

It removes temporary files that crashed uploads left behind and stored bytes
or thumbnails that no row points to (after a crash between the disk and the
database, or a failed removal), and gives previews whose failure was
temporary another try. Only files untouched for UPLOAD_ORPHAN_AGE_SECONDS
are considered, so an upload or a preview still being written is never taken.
"""

from __future__ import annotations

import logging

from aiohttp import web

from chatserver import appkeys
from chatserver.data import files
from chatserver.files.preview import PREVIEW_TASK, queue_preview
from chatserver.files.storage import discard

log = logging.getLogger(__name__)


async def housekeep(app: web.Application) -> None:
    settings, storage = app[appkeys.SETTINGS], app[appkeys.STORAGE]
    age = settings.UPLOAD_ORPHAN_AGE_SECONDS
    for name in await storage.stale(storage.tmp, age):
        await discard(storage.tmp / name)
    orphans = await files.unreferenced(app[appkeys.DB], "storage_name", await storage.stale(storage.files, age))
    for name in orphans:
        await discard(storage.path(name))
    thumbnails = await files.unreferenced(app[appkeys.DB], "preview_image", await storage.stale(storage.previews, age))
    for name in thumbnails:
        await discard(storage.preview_path(name))
    if orphans or thumbnails:
        log.info("removed %d stored file(s) and %d thumbnail(s) without a row", len(orphans), len(thumbnails))
    await _retry_temporary_failures(app)
    await _requeue_lost_previews(app)


async def _retry_temporary_failures(app: web.Application) -> None:
    db = app[appkeys.DB]
    rows = await files.reset_retryable(db, app[appkeys.SETTINGS].PREVIEW_RETRY_ROUNDS)
    for row in rows:
        try:
            await queue_preview(app, row["id"])
        except Exception:
            log.exception("could not queue the preview of file %s again", row["id"])
            await files.restore_failure(db, row["id"], row["error"])
    if rows:
        log.info("queued %d failed preview(s) again", len(rows))


async def _requeue_lost_previews(app: web.Application) -> None:
    """A crash between storing an upload and queuing its preview leaves the
    file pending with no job; queue one again."""
    waiting = await files.working_since(app[appkeys.DB], app[appkeys.SETTINGS].UPLOAD_ORPHAN_AGE_SECONDS)
    if not waiting:
        return
    queued = {p.get("file_id") for p in await app[appkeys.QUEUE].payloads(PREVIEW_TASK)}
    for file_id in waiting:
        if str(file_id) not in queued:
            log.warning("file %s had no preview job; queued again", file_id)
            await queue_preview(app, file_id)

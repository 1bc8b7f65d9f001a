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

from . import appkeys
from .preview.job import PREVIEW_TASK, queue_preview
from .storage import discard

log = logging.getLogger(__name__)


async def housekeep(app: web.Application) -> None:
    settings, storage = app[appkeys.SETTINGS], app[appkeys.STORAGE]
    age = settings.UPLOAD_ORPHAN_AGE_SECONDS
    for name in await storage.stale(storage.tmp, age):
        await discard(storage.tmp / name)
    orphans = await _unreferenced(app, "storage_name", await storage.stale(storage.files, age))
    for name in orphans:
        await discard(storage.path(name))
    thumbnails = await _unreferenced(app, "preview_image", await storage.stale(storage.previews, age))
    for name in thumbnails:
        await discard(storage.preview_path(name))
    if orphans or thumbnails:
        log.info("removed %d stored file(s) and %d thumbnail(s) without a row", len(orphans), len(thumbnails))
    await _retry_temporary_failures(app)
    await _requeue_lost_previews(app)


async def _unreferenced(app: web.Application, column: str, names: list[str]) -> set[str]:
    if not names:
        return set()
    # `column` is one of two fixed names chosen above, never input
    rows = await app[appkeys.DB].fetch(f"SELECT {column} AS name FROM files WHERE {column} = ANY(%s)", (names,))
    return set(names) - {r["name"] for r in rows}


async def _retry_temporary_failures(app: web.Application) -> None:
    db = app[appkeys.DB]
    rows = await db.fetch(
        """
        UPDATE files f
        SET status = 'pending', error = NULL, error_temporary = false, preview_retries = f.preview_retries + 1
        FROM (SELECT id, error FROM files
              WHERE status = 'failed' AND error_temporary AND preview_retries < %s FOR UPDATE) old
        WHERE f.id = old.id
        RETURNING f.id, old.error
        """,
        (app[appkeys.SETTINGS].PREVIEW_RETRY_ROUNDS,),
    )
    for row in rows:
        try:
            await queue_preview(app, row["id"])
        except Exception:
            log.exception("could not queue the preview of file %s again", row["id"])
            await db.execute(
                """
                UPDATE files SET status = 'failed', error = %s, error_temporary = true
                WHERE id = %s AND status = 'pending'
                """,
                (row["error"], row["id"]),
            )
    if rows:
        log.info("queued %d failed preview(s) again", len(rows))


async def _requeue_lost_previews(app: web.Application) -> None:
    """A crash between storing an upload and queuing its preview leaves the
    file pending with no job; queue one again."""
    rows = await app[appkeys.DB].fetch(
        """
        SELECT id FROM files
        WHERE status IN ('pending', 'processing')
          AND created_at < clock_timestamp() - make_interval(secs => %s)
        """,
        (app[appkeys.SETTINGS].UPLOAD_ORPHAN_AGE_SECONDS,),
    )
    if not rows:
        return
    queued = {p.get("file_id") for p in await app[appkeys.QUEUE].payloads(PREVIEW_TASK)}
    for row in rows:
        if str(row["id"]) not in queued:
            log.warning("file %s had no preview job; queued again", row["id"])
            await queue_preview(app, row["id"])

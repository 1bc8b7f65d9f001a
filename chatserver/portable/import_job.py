"""The `portable.import` job: an import the client asked to run in the
background (`Prefer: respond-async`), reported by `GET /api/imports/{id}`.

The upload waits in the storage's `imports/` folder under the import's id.
A job may run more than once (at-least-once queue, a process that died): the
import is marked done in the transaction that stores its chats, so a re-run
after that commit finds it done and does nothing, and one before it finds
nothing stored (and the recorded sources would skip anything that were).
"""

from __future__ import annotations

import contextlib
import logging
import uuid
from pathlib import Path

import aiofiles.os
from aiohttp import web

from chatserver import appkeys
from chatserver.data import imports
from chatserver.files.storage import discard
from chatserver.portable import chatgpt, importer

log = logging.getLogger(__name__)

IMPORT_TASK = "portable.import"
IMPORT_QUEUE = "import"
GONE = "the uploaded file is gone; upload it again"
LOST = "the import was interrupted before it started; upload the file again"


async def queue_import(app: web.Application, user_id: uuid.UUID, upload: Path) -> dict:
    """Keep the received upload for the job and queue it; the import's row."""
    db, storage = app[appkeys.DB], app[appkeys.STORAGE]
    row = await imports.insert(db, user_id)
    kept = storage.import_path(row["id"])
    await aiofiles.os.replace(upload, kept)
    try:
        await app[appkeys.QUEUE].enqueue(IMPORT_TASK, {"import_id": str(row["id"])})
    except Exception:
        await imports.fail(db, row["id"], "the import could not be queued; try again")
        await discard(kept)
        raise
    return row


async def run_import(app: web.Application, import_id: str, every: int = importer.PROGRESS_EVERY) -> None:
    db = app[appkeys.DB]
    kept = app[appkeys.STORAGE].import_path(import_id)
    row = await imports.start(db, uuid.UUID(import_id))
    if row is None:
        await discard(kept)  # finished by an earlier run, which may have died before this
        return
    try:
        conversations = await importer.read(kept, app[appkeys.SETTINGS].MAX_UPLOAD_SIZE)
    except chatgpt.Unreadable as exc:
        await imports.fail(db, row["id"], f"file: {exc}")
        await discard(kept)
        return
    except FileNotFoundError:
        await imports.fail(db, row["id"], GONE)
        return
    await imports.progress(db, row["id"], len(conversations), 0)

    async def progress(total: int, done: int) -> None:
        await imports.progress(db, row["id"], total, done)

    async def finish(cur, counts: importer.Counts) -> None:
        await imports.finish(cur, row["id"], counts.imported, counts.skipped)

    counts = await importer.store(db, row["user_id"], conversations, progress=progress, finish=finish, every=every)
    await discard(kept)
    log.info("import %s done: %d imported, %d skipped", import_id, counts.imported, counts.skipped)


async def import_dead(app: web.Application, import_id: str, reason: str) -> None:
    """The job gave up (it kept failing or outliving its time limit): the import failed, nothing was stored."""
    await imports.fail(app[appkeys.DB], uuid.UUID(import_id), f"the import did not complete: {reason}")
    await discard(app[appkeys.STORAGE].import_path(import_id))


async def housekeep_imports(app: web.Application) -> None:
    """Fail imports whose job was lost (the process died between keeping the
    file and queuing the job) and remove kept files no unfinished import
    waits for; only those older than UPLOAD_ORPHAN_AGE_SECONDS."""
    db, storage = app[appkeys.DB], app[appkeys.STORAGE]
    age = app[appkeys.SETTINGS].UPLOAD_ORPHAN_AGE_SECONDS
    waiting = await imports.unfinished_since(db, age)
    if waiting:
        queued = {p.get("import_id") for p in await app[appkeys.QUEUE].payloads(IMPORT_TASK)}
        for import_id in waiting:
            if str(import_id) not in queued:
                log.warning("import %s had no job; failed", import_id)
                await imports.fail(db, import_id, LOST)
                await discard(storage.import_path(import_id))
    kept = {}
    for name in await storage.stale(storage.imports, age):
        with contextlib.suppress(ValueError):
            kept[uuid.UUID(name.removesuffix(".upload"))] = name
    unfinished = await imports.unfinished_among(db, list(kept))
    for import_id, name in kept.items():
        if import_id not in unfinished:
            await discard(storage.imports / name)

"""Keeping passages and their vectors in step with files' text.

A file's passages are written when its text is extracted; where vectors are
on, a `knowledge.embed` job then embeds them in batches of
EMBEDDINGS_BATCH_SIZE on the preview queue (so embedding is bounded like
extraction), retried with backoff by the queue when the model fails.
A job that runs again embeds only what has no vector yet, and a run stops
after EMBED_RUN_SECONDS, queueing the rest of the file as a job of its own.

`python run.py reindex` cuts files extracted before passages existed, drops
the vectors of any other model than the current one and embeds what is left,
in the foreground, saying how far it got.
"""

from __future__ import annotations

import asyncio
import math
import sys
import time
import uuid
from typing import TextIO

import aiohttp
from aiohttp import web

from chatserver import appkeys
from chatserver.config import Settings
from chatserver.data import files, passages
from chatserver.db import Database, create_database_if_missing, open_database
from chatserver.knowledge.splitting import split
from chatserver.knowledge.vectors import VECTORS, Vectors, decide_for
from chatserver.migrate import apply_migrations

EMBED_TASK = "knowledge.embed"
EMBED_QUEUE = "preview"
# How long one run of the embed job embeds (or a quarter of JOB_TIMEOUT_SECONDS,
# when that is less) before it queues the rest of its file as a new job: a
# long file never runs into the job's time limit (a failed attempt, and after
# JOB_MAX_ATTEMPTS a file never embedded whole), and the other files' jobs on
# the queue take their turns between its runs.
EMBED_RUN_SECONDS = 60.0


async def store_passages(db: Database, file_id: uuid.UUID, user_id: uuid.UUID, text: str) -> bool:
    """Cut the text into the file's passages; False when the file is gone."""
    rows = [(p.ordinal, p.page, p.heading, p.text) for p in split(text)]
    return await passages.replace(db, file_id, user_id, rows)


async def index_file(app: web.Application, file_id: uuid.UUID, user_id: uuid.UUID, text: str) -> None:
    if await store_passages(app[appkeys.DB], file_id, user_id, text) and app[VECTORS].embedder is not None:
        await app[appkeys.QUEUE].enqueue(EMBED_TASK, {"file_id": str(file_id)})


async def embed_missing(db: Database, vectors: Vectors, batch: int, file_id: uuid.UUID | None = None,
                        until: float = math.inf) -> int:
    """Embed the passages (of one file, or all) that have no vector of the
    current model, a batch at a time, each stored as it comes, until none is
    left or time.monotonic() passes `until` (at least one batch); how many
    were embedded."""
    embedder = vectors.embedder
    if embedder is None:
        return 0
    done = 0
    while rows := await passages.without_vectors(db, embedder.model, batch, file_id):
        found = await embedder.embed([r["text"] for r in rows])
        await passages.store_vectors(db, embedder.model, {r["id"]: v for r, v in zip(rows, found, strict=True)})
        await vectors.index(db, len(found[0]))
        done += len(rows)
        if time.monotonic() >= until:
            break
    return done


async def embed_job(app: web.Application, file_id: str) -> None:
    settings, db, vectors = app[appkeys.SETTINGS], app[appkeys.DB], app[VECTORS]
    until = time.monotonic() + min(EMBED_RUN_SECONDS, settings.JOB_TIMEOUT_SECONDS / 4)
    await embed_missing(db, vectors, settings.EMBEDDINGS_BATCH_SIZE, uuid.UUID(file_id), until)
    if vectors.embedder is not None and time.monotonic() >= until \
            and await passages.without_vectors(db, vectors.embedder.model, 1, uuid.UUID(file_id)):
        await app[appkeys.QUEUE].enqueue(EMBED_TASK, {"file_id": file_id})


async def reindex(db: Database, settings: Settings, vectors: Vectors, out: TextIO) -> None:
    cut = 0
    for row in await files.ready_texts_without(db, await passages.file_ids(db)):
        cut += await store_passages(db, row["id"], row["user_id"], row["text_content"] or "")
    print(f"passages: {cut} file(s) cut into passages", file=out)
    print(f"vectors: {vectors.status}", file=out)
    if vectors.embedder is None:
        return
    dropped = await passages.drop_other_vectors(db, vectors.embedder.model)
    if dropped:
        print(f"vectors: dropped {dropped} vector(s) of other models", file=out)
    started = time.monotonic()
    done = await embed_missing(db, vectors, settings.EMBEDDINGS_BATCH_SIZE)
    print(f"vectors: embedded {done} passage(s) in {time.monotonic() - started:.1f} s", file=out)


def run_reindex_command(dsn: str, settings: Settings, out: TextIO = sys.stdout) -> None:
    create_database_if_missing(dsn)
    apply_migrations(dsn)

    async def work() -> None:
        db = await open_database(dsn, settings.replace(DB_POOL_MIN=1, DB_POOL_MAX=2))
        try:
            async with aiohttp.ClientSession() as session:
                await reindex(db, settings, await decide_for(settings, db, session), out)
        finally:
            db.pool.close()
            await db.pool.wait_closed()

    asyncio.run(work())

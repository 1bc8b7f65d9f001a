"""Keeping passages and their vectors in step with files' text.

A file's passages are written when its text is extracted; where vectors are
on, a `knowledge.embed` job then embeds them in batches of
EMBEDDINGS_BATCH_SIZE on the preview queue (so embedding is bounded like
extraction), retried with backoff by the queue when the model fails.
A job that runs again embeds only what has no vector yet.

`python run.py reindex` cuts files extracted before passages existed, drops
the vectors of any other model than the current one and embeds what is left,
in the foreground, saying how far it got.
"""

from __future__ import annotations

import asyncio
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


async def store_passages(db: Database, file_id: uuid.UUID, user_id: uuid.UUID, text: str) -> bool:
    """Cut the text into the file's passages; False when the file is gone."""
    rows = [(p.ordinal, p.page, p.heading, p.text) for p in split(text)]
    return await passages.replace(db, file_id, user_id, rows)


async def index_file(app: web.Application, file_id: uuid.UUID, user_id: uuid.UUID, text: str) -> None:
    if await store_passages(app[appkeys.DB], file_id, user_id, text) and app[VECTORS].embedder is not None:
        await app[appkeys.QUEUE].enqueue(EMBED_TASK, {"file_id": str(file_id)})


async def embed_missing(db: Database, vectors: Vectors, batch: int, file_id: uuid.UUID | None = None) -> int:
    """Embed the passages (of one file, or all) that have no vector of the
    current model; how many were embedded."""
    embedder = vectors.embedder
    if embedder is None:
        return 0
    done = 0
    while rows := await passages.without_vectors(db, embedder.model, batch, file_id):
        found = await embedder.embed([r["text"] for r in rows])
        await passages.store_vectors(db, embedder.model, {r["id"]: v for r, v in zip(rows, found, strict=True)})
        done += len(rows)
    return done


async def embed_job(app: web.Application, file_id: str) -> None:
    await embed_missing(app[appkeys.DB], app[VECTORS], app[appkeys.SETTINGS].EMBEDDINGS_BATCH_SIZE,
                        uuid.UUID(file_id))


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

"""The `imports` table: an import run as a job, its progress and its result."""

from __future__ import annotations

import uuid

from chatserver.db import Database

COLUMNS = "id, status, total, done, imported, skipped, error, created_at, finished_at"
STATUSES = ("queued", "running", "done", "failed")
UNFINISHED = ("queued", "running")


async def insert(db: Database, user_id: uuid.UUID) -> dict:
    row = await db.fetchrow(f"INSERT INTO imports (user_id) VALUES (%s) RETURNING {COLUMNS}", (user_id,))
    assert row is not None
    return row


async def get_owned(db: Database, import_id: uuid.UUID, user_id: uuid.UUID) -> dict | None:
    return await db.fetchrow(f"SELECT {COLUMNS} FROM imports WHERE id = %s AND user_id = %s", (import_id, user_id))


async def start(db: Database, import_id: uuid.UUID) -> dict | None:
    """Mark an unfinished import running (again, on a re-run); its row with
    user_id, or None when it is finished or gone."""
    return await db.fetchrow(
        f"""
        UPDATE imports SET status = 'running', done = 0
        WHERE id = %s AND status = ANY(%s)
        RETURNING user_id, {COLUMNS}
        """,
        (import_id, list(UNFINISHED)))


async def progress(db: Database, import_id: uuid.UUID, total: int, done: int) -> None:
    """Outside the import's own transaction, so that it is seen while that runs."""
    await db.execute("UPDATE imports SET total = %s, done = %s WHERE id = %s AND status = 'running'",
                     (total, done, import_id))


async def finish(cur, import_id: uuid.UUID, imported: int, skipped: int) -> None:
    """Inside the transaction that stores the chats, so a re-run after it committed finds the import done."""
    await cur.execute(
        """
        UPDATE imports SET status = 'done', total = %(total)s, done = %(total)s, imported = %(imported)s,
                           skipped = %(skipped)s, finished_at = now()
        WHERE id = %(id)s
        """,
        {"id": import_id, "total": imported + skipped, "imported": imported, "skipped": skipped})


async def fail(db: Database, import_id: uuid.UUID, error: str) -> None:
    await db.execute(
        """
        UPDATE imports SET status = 'failed', error = %s, finished_at = now()
        WHERE id = %s AND status = ANY(%s)
        """,
        (error, import_id, list(UNFINISHED)))


async def unfinished_since(db: Database, seconds: float) -> list[uuid.UUID]:
    """Unfinished imports created at least `seconds` ago."""
    rows = await db.fetch(
        "SELECT id FROM imports WHERE status = ANY(%s) AND created_at < now() - make_interval(secs => %s)",
        (list(UNFINISHED), seconds))
    return [r["id"] for r in rows]


async def unfinished_among(db: Database, import_ids: list[uuid.UUID]) -> set[uuid.UUID]:
    rows = await db.fetch("SELECT id FROM imports WHERE id = ANY(%s::uuid[]) AND status = ANY(%s)",
                          (import_ids, list(UNFINISHED)))
    return {r["id"] for r in rows}

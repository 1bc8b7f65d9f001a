"""The `api_keys` table: a user's keys for programmatic access.

Only a keyed hash of each key is stored; a request's key is found by that
hash in one probe of its unique index.
"""

from __future__ import annotations

import uuid

from chatserver.db import Database

COLUMNS = "id, name, prefix, created_at, last_used_at"
# last_used_at is written at most this often per key, not on every request
LAST_USED_RESOLUTION_SECONDS = 60


async def insert(db: Database, user_id: uuid.UUID, name: str, prefix: str, key_hash: bytes) -> dict:
    row = await db.fetchrow(
        f"""
        INSERT INTO api_keys (user_id, name, prefix, key_hash)
        VALUES (%s, %s, %s, %s)
        RETURNING {COLUMNS}
        """,
        (user_id, name, prefix, key_hash),
    )
    assert row is not None
    return row


async def of_user(db: Database, user_id: uuid.UUID) -> list[dict]:
    return await db.fetch(
        f"SELECT {COLUMNS} FROM api_keys WHERE user_id = %s ORDER BY created_at DESC, id", (user_id,))


async def delete(db: Database, key_id: uuid.UUID, user_id: uuid.UUID) -> bool:
    return await db.execute("DELETE FROM api_keys WHERE id = %s AND user_id = %s", (key_id, user_id)) > 0


async def find(db: Database, key_hash: bytes) -> dict | None:
    """The key's id and user, and whether its last use is older than the
    resolution (then the caller records this use)."""
    return await db.fetchrow(
        """
        SELECT id, user_id,
               last_used_at IS NULL
               OR last_used_at < clock_timestamp() - make_interval(secs => %s) AS stale
        FROM api_keys WHERE key_hash = %s
        """,
        (LAST_USED_RESOLUTION_SECONDS, key_hash),
    )


async def mark_used(db: Database, key_id: uuid.UUID) -> None:
    # the condition makes concurrent requests of one key write once, not each
    await db.execute(
        """
        UPDATE api_keys SET last_used_at = clock_timestamp()
        WHERE id = %s
          AND (last_used_at IS NULL OR last_used_at < clock_timestamp() - make_interval(secs => %s))
        """,
        (key_id, LAST_USED_RESOLUTION_SECONDS),
    )


async def missing_among(db: Database, key_ids: list[uuid.UUID]) -> list[uuid.UUID]:
    """Those of `key_ids` that no longer exist."""
    rows = await db.fetch(
        "SELECT given.id FROM unnest(%s::uuid[]) AS given(id) LEFT JOIN api_keys USING (id) "
        "WHERE api_keys.id IS NULL", (key_ids,))
    return [row["id"] for row in rows]

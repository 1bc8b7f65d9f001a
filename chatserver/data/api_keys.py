"""The `api_keys` table: a user's keys for programmatic access.

Only a keyed hash of each key is stored; a request's key is found by that
hash in one probe of its unique index.
"""

from __future__ import annotations

import datetime as dt
import uuid

from chatserver.db import Database

COLUMNS = "id, name, prefix, created_at, last_used_at"
# last_used_at is written at most this often per key, not on every request
LAST_USED_RESOLUTION_SECONDS = 60


async def insert(db: Database, user_id: uuid.UUID, name: str, prefix: str, key_hash: bytes,
                 cap: int) -> dict | None:
    """The new key, or None when the user holds `cap` keys already. The
    user's keys are counted under a lock of that user's, so concurrent
    creates cannot pass the cap together."""
    async with db.transaction() as cur:
        await cur.execute("SELECT pg_advisory_xact_lock(hashtextextended('api_keys:' || %s::text, 0))",
                          (user_id,))
        await cur.execute(
            f"""
            INSERT INTO api_keys (user_id, name, prefix, key_hash)
            SELECT %(user)s, %(name)s, %(prefix)s, %(hash)s
            WHERE (SELECT count(*) FROM api_keys WHERE user_id = %(user)s) < %(cap)s
            RETURNING {COLUMNS}
            """,
            {"user": user_id, "name": name, "prefix": prefix, "hash": key_hash, "cap": cap},
        )
        row = await cur.fetchone()
        return dict(row) if row is not None else None


async def page(db: Database, user_id: uuid.UUID, after: tuple[dt.datetime, uuid.UUID] | None,
               limit: int) -> list[dict]:
    """Newest first, after the (created_at, id) of the previous page's last row."""
    return await db.fetch(
        f"""
        SELECT {COLUMNS} FROM api_keys
        WHERE user_id = %(user)s
          AND (%(stamp)s::timestamptz IS NULL OR (created_at, id) < (%(stamp)s, %(id)s))
        ORDER BY created_at DESC, id DESC
        LIMIT %(limit)s
        """,
        {"user": user_id, "stamp": after and after[0], "id": after and after[1], "limit": limit},
    )


async def delete(db: Database, key_id: uuid.UUID, user_id: uuid.UUID) -> bool:
    return await db.execute("DELETE FROM api_keys WHERE id = %s AND user_id = %s", (key_id, user_id)) > 0


async def page_of_everyone(db: Database, user_id: uuid.UUID | None, after: tuple[dt.datetime, uuid.UUID] | None,
                           limit: int) -> list[dict]:
    """Everyone's keys (or one user's), newest first, with their user; for administrators."""
    return await db.fetch(
        f"""
        SELECT {COLUMNS}, user_id FROM api_keys
        WHERE (%(user)s::uuid IS NULL OR user_id = %(user)s::uuid)
          AND (%(stamp)s::timestamptz IS NULL OR (created_at, id) < (%(stamp)s, %(id)s))
        ORDER BY created_at DESC, id DESC
        LIMIT %(limit)s
        """,
        {"user": user_id, "stamp": after and after[0], "id": after and after[1], "limit": limit},
    )


async def delete_any(db: Database, key_id: uuid.UUID) -> bool:
    """Delete a key whoever holds it (an administrator's revocation)."""
    return await db.execute("DELETE FROM api_keys WHERE id = %s", (key_id,)) > 0


async def find(db: Database, key_hash: bytes) -> dict | None:
    """The key's id and user, whether its last use is older than the
    resolution (then the caller records this use), and the user's account:
    `active` (not disabled) and its own quotas, so that a request with a key
    reads the account in the same probe."""
    return await db.fetchrow(
        """
        SELECT k.id, k.user_id,
               k.last_used_at IS NULL
               OR k.last_used_at < clock_timestamp() - make_interval(secs => %s) AS stale,
               coalesce(a.active, false) AS active, a.quota_tokens_per_day, a.quota_messages_per_day
        FROM api_keys k, account_of(k.user_id) a
        WHERE k.key_hash = %s
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

"""The `shares` table: read-only snapshots of a chat's shown branch behind a link.

A snapshot holds only text (messages and their sources' titles and URLs), so
reading a shared link touches no other table than this one and `users` (a
disabled account's links stop working).
"""

from __future__ import annotations

import uuid

from chatserver.db import Database

COLUMNS = "id, chat_id, token, title, message_count, created_at"


async def insert(db: Database, user_id: uuid.UUID, chat_id: uuid.UUID, token: str, title: str,
                 messages_json: str, message_count: int) -> dict:
    """A new share; `messages_json` is the snapshot, already JSON."""
    row = await db.fetchrow(
        f"""
        INSERT INTO shares (user_id, chat_id, token, title, messages, message_count)
        VALUES (%s, %s, %s, %s, %s::jsonb, %s)
        RETURNING {COLUMNS}
        """,
        (user_id, chat_id, token, title, messages_json, message_count))
    assert row is not None
    return row


async def of_user(db: Database, user_id: uuid.UUID) -> list[dict]:
    """The user's shares, newest first."""
    return await db.fetch(
        f"SELECT {COLUMNS} FROM shares WHERE user_id = %s ORDER BY created_at DESC, id DESC", (user_id,))


async def delete(db: Database, share_id: uuid.UUID, user_id: uuid.UUID) -> bool:
    return await db.execute("DELETE FROM shares WHERE id = %s AND user_id = %s", (share_id, user_id)) > 0


async def by_token(db: Database, token: str) -> dict | None:
    """The snapshot behind a token: title, created_at, messages; None when
    unknown, revoked, or its owner's account is not active."""
    return await db.fetchrow(
        "SELECT title, created_at, messages FROM shares WHERE token = %s AND account_active(user_id)", (token,))

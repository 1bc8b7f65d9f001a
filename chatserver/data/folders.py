"""The `folders` table: named folders of a user's chats (chats.folder_id
points here; deleting a folder sets it back to NULL)."""

from __future__ import annotations

import uuid

import psycopg2.errors

from chatserver.db import Database

COLUMNS = "id, name, created_at, updated_at"


class NameTaken(Exception):
    """The user has a folder of this name already (names compare without case)."""


async def insert(db: Database, user_id: uuid.UUID, name: str) -> dict:
    try:
        row = await db.fetchrow(
            f"INSERT INTO folders (user_id, name) VALUES (%s, %s) RETURNING {COLUMNS}", (user_id, name))
    except psycopg2.errors.UniqueViolation:
        raise NameTaken(name) from None
    assert row is not None
    return row


async def of_user(db: Database, user_id: uuid.UUID) -> list[dict]:
    return await db.fetch(
        f"SELECT {COLUMNS} FROM folders WHERE user_id = %s ORDER BY lower(name), id", (user_id,))


async def get_owned(db: Database, folder_id: uuid.UUID, user_id: uuid.UUID) -> dict | None:
    return await db.fetchrow(f"SELECT {COLUMNS} FROM folders WHERE id = %s AND user_id = %s", (folder_id, user_id))


async def rename(db: Database, folder_id: uuid.UUID, user_id: uuid.UUID, name: str) -> dict | None:
    try:
        return await db.fetchrow(
            f"""
            UPDATE folders SET name = %s, updated_at = clock_timestamp()
            WHERE id = %s AND user_id = %s RETURNING {COLUMNS}
            """,
            (name, folder_id, user_id))
    except psycopg2.errors.UniqueViolation:
        raise NameTaken(name) from None


async def delete(cur, folder_id: uuid.UUID, user_id: uuid.UUID) -> bool:
    """Inside the caller's transaction, after its chats were moved out."""
    await cur.execute("DELETE FROM folders WHERE id = %s AND user_id = %s", (folder_id, user_id))
    return cur.rowcount > 0

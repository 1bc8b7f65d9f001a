"""The `users` table."""

from __future__ import annotations

import uuid

import psycopg2.errors

from chatserver.db import Database

COLUMNS = "id, email, display_name, created_at"


class EmailTaken(Exception):
    pass


async def insert(db: Database, email: str, password_hash: str, display_name: str) -> dict:
    try:
        row = await db.fetchrow(
            f"""
            INSERT INTO users (email, password_hash, display_name)
            VALUES (%(email)s, %(hash)s, %(name)s)
            RETURNING {COLUMNS}
            """,
            {"email": email, "hash": password_hash, "name": display_name},
        )
    except psycopg2.errors.UniqueViolation:
        raise EmailTaken(email) from None
    assert row is not None
    return row


async def get_with_hash(db: Database, email: str) -> dict | None:
    """An enabled user and their password hash, by case-insensitive email."""
    return await db.fetchrow(
        f"SELECT {COLUMNS}, password_hash FROM users WHERE lower(email) = lower(%s) AND disabled_at IS NULL",
        (email,))


async def is_active(db: Database, user_id: uuid.UUID) -> bool:
    """Whether the account exists and is not disabled (a primary-key lookup)."""
    return bool(await db.fetchval("SELECT disabled_at IS NULL FROM users WHERE id = %s", (user_id,)))


async def set_disabled(db: Database, email: str, disabled: bool) -> uuid.UUID | None:
    """Disable (or enable again) the account of `email`; its id, None when there is none."""
    return await db.fetchval(
        "UPDATE users SET disabled_at = CASE WHEN %(disabled)s THEN coalesce(disabled_at, now()) END "
        "WHERE lower(email) = lower(%(email)s) RETURNING id",
        {"disabled": disabled, "email": email})


async def inactive_among(db: Database, user_ids: list[uuid.UUID]) -> list[uuid.UUID]:
    """Those of `user_ids` whose account is disabled or gone."""
    rows = await db.fetch(
        "SELECT given.id FROM unnest(%s::uuid[]) AS given(id) LEFT JOIN users USING (id) "
        "WHERE users.id IS NULL OR users.disabled_at IS NOT NULL", (user_ids,))
    return [row["id"] for row in rows]


async def list_all(db: Database) -> list[dict]:
    return await db.fetch(f"SELECT {COLUMNS}, disabled_at FROM users ORDER BY created_at, id")


async def get(db: Database, user_id: uuid.UUID) -> dict | None:
    return await db.fetchrow(f"SELECT {COLUMNS} FROM users WHERE id = %s", (user_id,))

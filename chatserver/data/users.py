"""The `users` table."""

from __future__ import annotations

import uuid

import psycopg2.errors

from chatserver.db import Database

COLUMNS = "id, email, display_name, created_at, role"
# the account's own daily limits (nulls: the server's defaults)
OWN_QUOTA = "quota_tokens_per_day, quota_messages_per_day"
# what an admin sees of an account besides COLUMNS
ADMIN_COLUMNS = f"{COLUMNS}, disabled_at, {OWN_QUOTA}"


class EmailTaken(Exception):
    pass


async def insert(db: Database, email: str, password_hash: str, display_name: str, role: str = "user") -> dict:
    try:
        row = await db.fetchrow(
            f"""
            INSERT INTO users (email, password_hash, display_name, role)
            VALUES (%(email)s, %(hash)s, %(name)s, %(role)s)
            RETURNING {COLUMNS}
            """,
            {"email": email, "hash": password_hash, "name": display_name, "role": role},
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


async def active_quota(db: Database, user_id: uuid.UUID) -> dict | None:
    """The account's own quotas (nulls: the server's defaults), None when it
    does not exist or is disabled: one primary-key lookup tells both."""
    return await db.fetchrow(
        f"SELECT {OWN_QUOTA} FROM users WHERE id = %s AND disabled_at IS NULL", (user_id,))


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


async def emails_of(db: Database, user_ids: list[uuid.UUID]) -> dict[uuid.UUID, str]:
    """The email of each of these accounts (those that exist), by id."""
    rows = await db.fetch("SELECT id, email FROM users WHERE id = ANY(%s::uuid[])", (user_ids,))
    return {row["id"]: row["email"] for row in rows}


async def by_oidc_subject(db: Database, issuer: str, sub: str) -> dict | None:
    """The account the provider's subject signed in before (disabled ones too: the caller refuses them)."""
    return await db.fetchrow(f"SELECT {COLUMNS}, disabled_at FROM users WHERE oidc_issuer = %s AND oidc_sub = %s",
                             (issuer, sub))


async def link_oidc_by_email(db: Database, email: str, issuer: str, sub: str) -> dict | None:
    """Tie the account of `email` (that no subject of this issuer holds yet) to the subject."""
    return await db.fetchrow(
        f"""
        UPDATE users SET oidc_issuer = %(issuer)s, oidc_sub = %(sub)s
        WHERE lower(email) = lower(%(email)s) AND (oidc_sub IS NULL OR oidc_issuer IS DISTINCT FROM %(issuer)s)
        RETURNING {COLUMNS}, disabled_at
        """, {"issuer": issuer, "sub": sub, "email": email})


async def insert_oidc(db: Database, email: str, display_name: str, issuer: str, sub: str) -> dict:
    """A new account of the provider's subject; it has no password ('!' is no hash: no password matches)."""
    try:
        row = await db.fetchrow(
            f"""
            INSERT INTO users (email, password_hash, display_name, oidc_issuer, oidc_sub)
            VALUES (%s, '!', %s, %s, %s)
            RETURNING {COLUMNS}, disabled_at
            """, (email, display_name, issuer, sub))
    except psycopg2.errors.UniqueViolation:
        raise EmailTaken(email) from None
    assert row is not None
    return row


async def set_role_by_email(db: Database, email: str, role: str) -> uuid.UUID | None:
    return await db.fetchval("UPDATE users SET role = %s WHERE lower(email) = lower(%s) RETURNING id", (role, email))


async def list_all(db: Database) -> list[dict]:
    return await db.fetch(f"SELECT {COLUMNS}, disabled_at FROM users ORDER BY created_at, id")


async def role_of(db: Database, user_id: uuid.UUID) -> str | None:
    """The role of an active account; None when it is gone or disabled."""
    return await db.fetchval("SELECT role FROM users WHERE id = %s AND disabled_at IS NULL", (user_id,))


async def admin_page(db: Database, search: str, after: tuple | None, limit: int) -> list[dict]:
    """Accounts whose email or name holds `search`, oldest first, after the (created_at, id) `after`."""
    return await db.fetch(
        f"""
        SELECT {ADMIN_COLUMNS} FROM users
        WHERE (%(q)s = '' OR strpos(lower(email), lower(%(q)s)) > 0
                          OR strpos(lower(display_name), lower(%(q)s)) > 0)
          AND (%(after)s::timestamptz IS NULL OR (created_at, id) > (%(after)s::timestamptz, %(after_id)s::uuid))
        ORDER BY created_at, id
        LIMIT %(limit)s
        """,
        {"q": search, "after": after[0] if after else None, "after_id": after[1] if after else None,
         "limit": limit})


async def admin_get(db: Database, user_id: uuid.UUID) -> dict | None:
    return await db.fetchrow(f"SELECT {ADMIN_COLUMNS} FROM users WHERE id = %s", (user_id,))


async def admin_update(db: Database, user_id: uuid.UUID, changes: dict) -> dict | None:
    """Set what `changes` names of role, disabled, quota_tokens_per_day and
    quota_messages_per_day; the account as an admin sees it, None when there is none."""
    return await db.fetchrow(
        f"""
        UPDATE users SET
            role = CASE WHEN %(set_role)s THEN %(role)s ELSE role END,
            disabled_at = CASE WHEN NOT %(set_disabled)s THEN disabled_at
                               WHEN %(disabled)s THEN coalesce(disabled_at, now()) END,
            quota_tokens_per_day = CASE WHEN %(set_tokens)s THEN %(tokens)s ELSE quota_tokens_per_day END,
            quota_messages_per_day = CASE WHEN %(set_messages)s THEN %(messages)s ELSE quota_messages_per_day END
        WHERE id = %(id)s
        RETURNING {ADMIN_COLUMNS}
        """,
        {"id": user_id, "set_role": "role" in changes, "role": changes.get("role"),
         "set_disabled": "disabled" in changes, "disabled": bool(changes.get("disabled")),
         "set_tokens": "quota_tokens_per_day" in changes, "tokens": changes.get("quota_tokens_per_day"),
         "set_messages": "quota_messages_per_day" in changes, "messages": changes.get("quota_messages_per_day")})


async def quota_of(db: Database, user_id: uuid.UUID) -> dict | None:
    """The account's own quotas (nulls: the server's defaults)."""
    return await db.fetchrow(f"SELECT {OWN_QUOTA} FROM users WHERE id = %s", (user_id,))


async def get(db: Database, user_id: uuid.UUID) -> dict | None:
    return await db.fetchrow(f"SELECT {COLUMNS} FROM users WHERE id = %s", (user_id,))

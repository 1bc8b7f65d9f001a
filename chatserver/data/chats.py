"""The `chats` table."""

from __future__ import annotations

import datetime as dt
import uuid

from chatserver.db import Database

COLUMNS = "id, title, created_at, updated_at, model, system_prompt, temperature, max_tokens"
# what a chat may set for its answers; None leaves each to the server's default
SETTINGS = ("model", "system_prompt", "temperature", "max_tokens")


async def get_owned(db: Database, chat_id: uuid.UUID, user_id: uuid.UUID) -> dict | None:
    return await db.fetchrow(f"SELECT {COLUMNS} FROM chats WHERE id = %s AND user_id = %s", (chat_id, user_id))


async def insert(db: Database, user_id: uuid.UUID, title: str, settings: dict | None = None) -> dict:
    """A new chat; `settings` maps names in SETTINGS to their values."""
    values = {k: (settings or {}).get(k) for k in SETTINGS}
    row = await db.fetchrow(
        f"""
        INSERT INTO chats (user_id, title, model, system_prompt, temperature, max_tokens)
        VALUES (%(user)s, %(title)s, %(model)s, %(system_prompt)s, %(temperature)s, %(max_tokens)s)
        RETURNING {COLUMNS}
        """,
        {"user": user_id, "title": title, **values})
    assert row is not None
    return row


async def page(db: Database, user_id: uuid.UUID, after: tuple[dt.datetime, uuid.UUID] | None,
               limit: int) -> list[dict]:
    """Most recently active first, after the (updated_at, id) of the previous page's last row."""
    return await db.fetch(
        f"""
        SELECT {COLUMNS} FROM chats
        WHERE user_id = %(user)s
          AND (%(stamp)s::timestamptz IS NULL OR (updated_at, id) < (%(stamp)s, %(id)s))
        ORDER BY updated_at DESC, id DESC
        LIMIT %(limit)s
        """,
        {"user": user_id, "stamp": after and after[0], "id": after and after[1], "limit": limit},
    )


async def update(db: Database, chat_id: uuid.UUID, changes: dict) -> dict | None:
    """Set `title` and any of SETTINGS (a None value resets a setting to the default)."""
    names = [k for k in ("title", *SETTINGS) if k in changes]
    if not names:
        return await db.fetchrow(f"SELECT {COLUMNS} FROM chats WHERE id = %s", (chat_id,))
    assignments = ", ".join(f"{name} = %({name})s" for name in names)
    return await db.fetchrow(f"UPDATE chats SET {assignments} WHERE id = %(id)s RETURNING {COLUMNS}",
                             {**{k: changes[k] for k in names}, "id": chat_id})


async def answer_settings(db: Database, chat_id: uuid.UUID) -> dict:
    """The chat's SETTINGS (all None when the chat is gone)."""
    row = await db.fetchrow("SELECT model, system_prompt, temperature, max_tokens FROM chats WHERE id = %s",
                            (chat_id,))
    return dict(row) if row else dict.fromkeys(SETTINGS)


async def delete(db: Database, chat_id: uuid.UUID) -> None:
    await db.execute("DELETE FROM chats WHERE id = %s", (chat_id,))


async def touch(cur, chat_id: uuid.UUID) -> None:
    """Mark the chat active now, inside the caller's transaction."""
    await cur.execute("UPDATE chats SET updated_at = clock_timestamp() WHERE id = %s", (chat_id,))


async def titles(db: Database, chat_ids: list[uuid.UUID]) -> dict[uuid.UUID, str]:
    rows = await db.fetch("SELECT id, title FROM chats WHERE id = ANY(%s)", (chat_ids,))
    return {r["id"]: r["title"] for r in rows}

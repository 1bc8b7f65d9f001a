"""The `chats` table."""

from __future__ import annotations

import datetime as dt
import uuid

from chatserver.db import Database

COLUMNS = "id, title, created_at, updated_at, shown_leaf, model, system_prompt, temperature, max_tokens, tools"
# what a chat may set for its answers; None leaves each to the server's default
SETTINGS = ("model", "system_prompt", "temperature", "max_tokens", "tools")


async def get_owned(db: Database, chat_id: uuid.UUID, user_id: uuid.UUID) -> dict | None:
    """The user's chat, while their account is active."""
    return await db.fetchrow(f"SELECT {COLUMNS} FROM chats WHERE id = %s AND user_id = %s AND account_active(user_id)",
                             (chat_id, user_id))


async def insert(db: Database, user_id: uuid.UUID, title: str, settings: dict | None = None,
                 auto_title: bool = False) -> dict:
    """A new chat; `settings` maps names in SETTINGS to their values; with
    `auto_title` the first message's words replace `title`."""
    values = {k: (settings or {}).get(k) for k in SETTINGS}
    row = await db.fetchrow(
        f"""
        INSERT INTO chats (user_id, title, auto_title, model, system_prompt, temperature, max_tokens, tools)
        VALUES (%(user)s, %(title)s, %(auto)s, %(model)s, %(system_prompt)s, %(temperature)s, %(max_tokens)s,
                coalesce(%(tools)s::text[], ARRAY[]::text[]))
        RETURNING {COLUMNS}
        """,
        {"user": user_id, "title": title, "auto": auto_title, **values})
    assert row is not None
    return row


async def page(db: Database, user_id: uuid.UUID, after: tuple[dt.datetime, uuid.UUID] | None,
               limit: int) -> list[dict]:
    """Most recently active first, after the (updated_at, id) of the previous page's last row;
    none while the account is not active."""
    return await db.fetch(PAGE, {"user": user_id, "stamp": after and after[0], "id": after and after[1],
                                 "limit": limit})


PAGE = f"""
        SELECT {COLUMNS} FROM chats
        WHERE user_id = %(user)s AND account_active(%(user)s)
          AND (%(stamp)s::timestamptz IS NULL OR (updated_at, id) < (%(stamp)s, %(id)s))
        ORDER BY updated_at DESC, id DESC
        LIMIT %(limit)s
"""


async def update(db: Database, chat_id: uuid.UUID, changes: dict) -> dict | None:
    """Set `title` and any of SETTINGS (a None value resets a setting to the default)."""
    names = [k for k in ("title", *SETTINGS) if k in changes]
    changes = {**changes, "tools": changes.get("tools") or []}
    if not names:
        return await db.fetchrow(f"SELECT {COLUMNS} FROM chats WHERE id = %s", (chat_id,))
    # names come from the fixed list above, never from the request
    assignments = ", ".join(f"{name} = %({name})s" for name in names)
    if "title" in names:
        assignments += ", auto_title = false"
    return await db.fetchrow(f"UPDATE chats SET {assignments} WHERE id = %(id)s RETURNING {COLUMNS}",
                             {**{k: changes[k] for k in names}, "id": chat_id})


async def answer_settings(db: Database, chat_id: uuid.UUID) -> dict:
    """The chat's SETTINGS (all None when the chat is gone)."""
    row = await db.fetchrow("SELECT model, system_prompt, temperature, max_tokens, tools FROM chats WHERE id = %s",
                            (chat_id,))
    return dict(row) if row else dict.fromkeys(SETTINGS)


async def take_auto_title(cur, chat_id: uuid.UUID, title: str) -> dict | None:
    """Title a chat created without one; the chat, or None when it has its title already."""
    await cur.execute(
        f"UPDATE chats SET title = %s, auto_title = false WHERE id = %s AND auto_title RETURNING {COLUMNS}",
        (title, chat_id))
    row = await cur.fetchone()
    return dict(row) if row else None


async def delete(db: Database, chat_id: uuid.UUID) -> None:
    await db.execute("DELETE FROM chats WHERE id = %s", (chat_id,))


async def titles(db: Database, chat_ids: list[uuid.UUID]) -> dict[uuid.UUID, str]:
    rows = await db.fetch("SELECT id, title FROM chats WHERE id = ANY(%s)", (chat_ids,))
    return {r["id"]: r["title"] for r in rows}


async def lock_leaf(cur, chat_id: uuid.UUID) -> uuid.UUID | None:
    """The chat's shown leaf, the row locked so that concurrent posts queue up
    behind each other instead of branching off the same leaf."""
    await cur.execute("SELECT shown_leaf FROM chats WHERE id = %s FOR UPDATE", (chat_id,))
    row = await cur.fetchone()
    return row["shown_leaf"] if row else None


async def show(cur, chat_id: uuid.UUID, leaf: uuid.UUID) -> dict | None:
    """Show the branch ending at `leaf`, and mark the chat active; inside the caller's transaction."""
    await cur.execute(
        f"UPDATE chats SET shown_leaf = %s, updated_at = clock_timestamp() WHERE id = %s RETURNING {COLUMNS}",
        (leaf, chat_id))
    row = await cur.fetchone()
    return dict(row) if row else None


async def insert_imported(cur, user_id: uuid.UUID, title: str, created_at: dt.datetime, updated_at: dt.datetime,
                          shown_leaf: uuid.UUID | None, source: str) -> uuid.UUID | None:
    """An imported chat, inside the caller's transaction; None when this source was imported before."""
    await cur.execute(
        """
        INSERT INTO chats (user_id, title, created_at, updated_at, shown_leaf, source)
        VALUES (%s, %s, %s, %s, %s, %s)
        ON CONFLICT (user_id, source) WHERE source IS NOT NULL DO NOTHING
        RETURNING id
        """,
        (user_id, title, created_at, updated_at, shown_leaf, source))
    row = await cur.fetchone()
    return row["id"] if row else None


async def owned_among(db: Database, user_id: uuid.UUID, chat_ids: list[uuid.UUID]) -> set[uuid.UUID]:
    """Which of these chats are the user's (an own export imported back finds its chats here)."""
    rows = await db.fetch("SELECT id FROM chats WHERE user_id = %s AND id = ANY(%s::uuid[])", (user_id, chat_ids))
    return {r["id"] for r in rows}

"""The `chats` table."""

from __future__ import annotations

import datetime as dt
import uuid

import psycopg2.errors

from chatserver.db import Database

COLUMNS = ("id, title, created_at, updated_at, shown_leaf, model, system_prompt, temperature, max_tokens, "
           "folder_id, pinned, archived, knowledge, tools")
# what a chat may set for its answers; None leaves each to the server's default
SETTINGS = ("model", "system_prompt", "temperature", "max_tokens", "tools")
# where a chat is kept in the user's list
PLACEMENT = ("folder_id", "pinned", "archived")


class FolderGone(Exception):
    """The folder a chat was to go into was deleted meanwhile."""


def _folder_gone(exc: psycopg2.errors.ForeignKeyViolation) -> Exception:
    return FolderGone() if exc.diag.constraint_name == "chats_folder_id_fkey" else exc


async def get_owned(db: Database, chat_id: uuid.UUID, user_id: uuid.UUID) -> dict | None:
    """The user's chat, while their account is active."""
    return await db.fetchrow(f"SELECT {COLUMNS} FROM chats WHERE id = %s AND user_id = %s AND account_active(user_id)",
                             (chat_id, user_id))


async def insert(db: Database, user_id: uuid.UUID, title: str, settings: dict | None = None,
                 auto_title: bool = False, knowledge: list[uuid.UUID] | None = None) -> dict:
    """A new chat; `settings` maps names in SETTINGS (and folder_id, pinned)
    to their values; with `auto_title` the first message's words replace `title`;
    `knowledge`: the files searched for its answers."""
    values = {k: (settings or {}).get(k) for k in (*SETTINGS, "folder_id")}
    try:
        row = await db.fetchrow(
            f"""
            INSERT INTO chats (user_id, title, auto_title, model, system_prompt, temperature, max_tokens,
                               folder_id, pinned, knowledge, tools)
            VALUES (%(user)s, %(title)s, %(auto)s, %(model)s, %(system_prompt)s, %(temperature)s, %(max_tokens)s,
                    %(folder_id)s, %(pinned)s, %(knowledge)s::uuid[], coalesce(%(tools)s::text[], ARRAY[]::text[]))
            RETURNING {COLUMNS}
            """,
            {"user": user_id, "title": title, "auto": auto_title, **values,
             "pinned": bool((settings or {}).get("pinned")), "knowledge": knowledge or []})
    except psycopg2.errors.ForeignKeyViolation as exc:
        raise _folder_gone(exc) from None
    assert row is not None
    return row


async def insert_asked(db: Database, user_id: uuid.UUID, title: str, settings: dict,
                       turns: list[tuple[str, str]], question: str) -> dict:
    """A new chat with `settings` (names in SETTINGS) holding `turns` (role,
    text; complete, each following the one before), then `question` and a
    pending answer to it, the branch shown: one statement, as an API call
    starts. The ids: `chat_id`, `question_id`, `answer_id`."""
    chat_id, ids = uuid.uuid4(), [uuid.uuid4() for _ in range(len(turns) + 2)]
    await db.execute(
        """
        WITH chat AS (
            INSERT INTO chats (id, user_id, title, model, system_prompt, temperature, max_tokens, tools, shown_leaf)
            VALUES (%(chat)s, %(user)s, %(title)s, %(model)s, %(system_prompt)s, %(temperature)s, %(max_tokens)s,
                    coalesce(%(tools)s::text[], ARRAY[]::text[]), %(leaf)s)
        )
        INSERT INTO messages (id, chat_id, user_id, parent_id, reply_to, role, content, status, completed_at)
        SELECT t.id, %(chat)s, %(user)s, t.parent_id, CASE WHEN t.role = 'assistant' THEN t.parent_id END,
               t.role, t.content, CASE WHEN t.n < %(last)s THEN 'complete' ELSE 'pending' END,
               CASE WHEN t.n < %(last)s THEN clock_timestamp() END
        FROM unnest(%(ids)s::uuid[], %(parents)s::uuid[], %(roles)s::text[], %(contents)s::text[])
             WITH ORDINALITY AS t (id, parent_id, role, content, n)
        ORDER BY t.n
        """,
        {"chat": chat_id, "user": user_id, "title": title, **{k: settings.get(k) for k in SETTINGS},
         "leaf": ids[-1], "last": len(ids), "ids": ids, "parents": [None, *ids[:-1]],
         "roles": [role for role, _ in turns] + ["user", "assistant"],
         "contents": [text for _, text in turns] + [question, ""]})
    return {"chat_id": chat_id, "question_id": ids[-2], "answer_id": ids[-1]}


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


async def listing(db: Database, user_id: uuid.UUID, *, archived: bool, pinned: bool | None,
                  folder: uuid.UUID | None | bool, after: tuple[bool, dt.datetime, uuid.UUID] | None,
                  limit: int) -> list[dict]:
    """The chat list: archived chats or the others, pinned first, then most
    recently active, after the (pinned, updated_at, id) of the previous page's
    last row. `folder`: a folder's id, None for chats in no folder, True for
    any; `pinned`: None for either. None while the account is not active."""
    # fixed fragments chosen here, never text from the request
    in_folder = "" if folder is True else "AND folder_id IS NULL" if folder is None else "AND folder_id = %(folder)s"
    return await db.fetch(
        f"""
        SELECT {COLUMNS} FROM chats
        WHERE user_id = %(user)s AND account_active(%(user)s) AND archived = %(archived)s {in_folder}
          AND (%(pinned)s::boolean IS NULL OR pinned = %(pinned)s)
          AND (%(stamp)s::timestamptz IS NULL OR (pinned, updated_at, id) < (%(after_pinned)s, %(stamp)s, %(id)s))
        ORDER BY pinned DESC, updated_at DESC, id DESC
        LIMIT %(limit)s
        """,
        {"user": user_id, "archived": archived, "folder": None if folder is True else folder, "pinned": pinned,
         "after_pinned": after and after[0], "stamp": after and after[1], "id": after and after[2],
         "limit": limit})


async def leave_folder(cur, folder_id: uuid.UUID, user_id: uuid.UUID) -> list[dict]:
    """Move a folder's chats out of it, inside the caller's transaction; the chats moved."""
    await cur.execute(
        f"UPDATE chats SET folder_id = NULL WHERE folder_id = %s AND user_id = %s RETURNING {COLUMNS}",
        (folder_id, user_id))
    return [dict(r) for r in await cur.fetchall()]


async def update(db: Database, chat_id: uuid.UUID, changes: dict) -> dict | None:
    """Set `title`, `knowledge` and any of SETTINGS and PLACEMENT (a None value resets a setting to the default)."""
    names = [k for k in ("title", "knowledge", *SETTINGS, *PLACEMENT) if k in changes]
    if "tools" in changes:
        changes = {**changes, "tools": changes["tools"] or []}
    if not names:
        return await db.fetchrow(f"SELECT {COLUMNS} FROM chats WHERE id = %s", (chat_id,))
    # names come from the fixed list above, never from the request
    assignments = ", ".join(f"{name} = %({name})s" + ("::uuid[]" if name == "knowledge" else "") for name in names)
    if "title" in names:
        assignments += ", auto_title = false"
    try:
        return await db.fetchrow(f"UPDATE chats SET {assignments} WHERE id = %(id)s RETURNING {COLUMNS}",
                                 {**{k: changes[k] for k in names}, "id": chat_id})
    except psycopg2.errors.ForeignKeyViolation as exc:
        raise _folder_gone(exc) from None


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

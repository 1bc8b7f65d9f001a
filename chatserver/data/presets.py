"""The `presets` table: a user's named sets of answer settings that a new chat copies."""

from __future__ import annotations

import uuid

import psycopg2.errors

from chatserver.db import Database

COLUMNS = ("id, name, model, system_prompt, temperature, max_tokens, tools, knowledge, "
           "created_at, updated_at")
# what a preset holds besides its name, each a column
FIELDS = ("model", "system_prompt", "temperature", "max_tokens", "tools", "knowledge")


class NameTaken(Exception):
    """The user has a preset of this name already (names compare without case)."""


async def insert(db: Database, user_id: uuid.UUID, name: str, values: dict) -> dict:
    """A new preset; `values` maps every name in FIELDS to its value."""
    try:
        row = await db.fetchrow(
            f"""
            INSERT INTO presets (user_id, name, model, system_prompt, temperature, max_tokens, tools, knowledge)
            VALUES (%(user)s, %(name)s, %(model)s, %(system_prompt)s, %(temperature)s, %(max_tokens)s,
                    %(tools)s::text[], %(knowledge)s::text[])
            RETURNING {COLUMNS}
            """,
            {"user": user_id, "name": name, **{k: values[k] for k in FIELDS}})
    except psycopg2.errors.UniqueViolation:
        raise NameTaken(name) from None
    assert row is not None
    return row


async def of_user(db: Database, user_id: uuid.UUID) -> list[dict]:
    return await db.fetch(
        f"SELECT {COLUMNS} FROM presets WHERE user_id = %s ORDER BY lower(name), id", (user_id,))


async def get_owned(db: Database, preset_id: uuid.UUID, user_id: uuid.UUID) -> dict | None:
    return await db.fetchrow(f"SELECT {COLUMNS} FROM presets WHERE id = %s AND user_id = %s",
                             (preset_id, user_id))


async def update(db: Database, preset_id: uuid.UUID, user_id: uuid.UUID, changes: dict) -> dict | None:
    """Set `name` and any of FIELDS present in `changes`; None when not the user's."""
    names = [k for k in ("name", *FIELDS) if k in changes]
    # names come from the fixed lists above, never from the request
    assignments = ", ".join([f"{name} = %({name})s" for name in names] + ["updated_at = clock_timestamp()"])
    try:
        return await db.fetchrow(
            f"UPDATE presets SET {assignments} WHERE id = %(id)s AND user_id = %(user)s RETURNING {COLUMNS}",
            {**{k: changes[k] for k in names}, "id": preset_id, "user": user_id})
    except psycopg2.errors.UniqueViolation:
        raise NameTaken(changes["name"]) from None


async def delete(db: Database, preset_id: uuid.UUID, user_id: uuid.UUID) -> bool:
    return await db.execute("DELETE FROM presets WHERE id = %s AND user_id = %s", (preset_id, user_id)) > 0

"""The `responses` table: what a /v1/responses call asked (its request and
input items), for the answer it became. The answer itself is a row of
`messages`; a response's id is that message's id.
"""

from __future__ import annotations

import uuid

import psycopg2.extras

from chatserver.db import Database

COLUMNS = "message_id, user_id, chat_id, first_id, previous_id, request, input_items, created_at"


async def insert(cur, message_id: uuid.UUID, user_id: uuid.UUID, chat_id: uuid.UUID, first_id: uuid.UUID,
                 previous_id: uuid.UUID | None, request: dict, input_items: list[dict]) -> dict:
    """Inside the caller's transaction, with the messages it names."""
    await cur.execute(
        f"""
        INSERT INTO responses (message_id, user_id, chat_id, first_id, previous_id, request, input_items)
        VALUES (%s, %s, %s, %s, %s, %s, %s)
        RETURNING {COLUMNS}
        """,
        (message_id, user_id, chat_id, first_id, previous_id, psycopg2.extras.Json(request),
         psycopg2.extras.Json(input_items)))
    return dict(await cur.fetchone())


async def get_owned(db: Database, message_id: uuid.UUID, user_id: uuid.UUID) -> dict | None:
    return await db.fetchrow(f"SELECT {COLUMNS} FROM responses WHERE message_id = %s AND user_id = %s",
                             (message_id, user_id))

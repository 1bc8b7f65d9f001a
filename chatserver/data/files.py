"""The `files` table: uploads, their extraction state and their text."""

from __future__ import annotations

import uuid
from typing import Literal

from chatserver.db import Database

COLUMNS = """id, name, size, content_type, status, chat_id, text_content, preview_text,
             preview_image IS NOT NULL AS has_preview_image, error, created_at, processed_at"""
WORKING = ("pending", "processing")
# the columns a download or a preview needs, besides the full row
DOWNLOAD = "name, storage_name, content_type"
PREVIEW = "status, preview_text, preview_image"
_COLUMN_SETS = {"row": COLUMNS, "download": DOWNLOAD, "preview": PREVIEW, "id": "id"}


async def get_owned(db: Database, file_id: uuid.UUID, user_id: uuid.UUID,
                    columns: Literal["row", "download", "preview", "id"] = "row") -> dict | None:
    return await db.fetchrow(f"SELECT {_COLUMN_SETS[columns]} FROM files WHERE id = %s AND user_id = %s",
                             (file_id, user_id))


async def owned_ids(db: Database, user_id: uuid.UUID, file_ids: list[uuid.UUID]) -> set[uuid.UUID]:
    rows = await db.fetch("SELECT id FROM files WHERE user_id = %s AND id = ANY(%s)", (user_id, file_ids))
    return {r["id"] for r in rows}


async def insert(db: Database, user_id: uuid.UUID, chat_id: uuid.UUID | None, name: str, storage_name: str,
                 size: int, sha256: str, content_type: str) -> dict:
    row = await db.fetchrow(
        f"""
        INSERT INTO files (user_id, chat_id, name, storage_name, size, sha256, content_type)
        VALUES (%s, %s, %s, %s, %s, %s, %s)
        RETURNING {COLUMNS}
        """,
        (user_id, chat_id, name, storage_name, size, sha256, content_type),
    )
    assert row is not None
    return row


async def list_owned(db: Database, user_id: uuid.UUID, chat_id: uuid.UUID | None) -> list[dict]:
    """Newest first; only one chat's when `chat_id` is given."""
    return await db.fetch(
        f"""
        SELECT {COLUMNS} FROM files
        WHERE user_id = %(user)s AND (%(chat)s::uuid IS NULL OR chat_id = %(chat)s)
        ORDER BY created_at DESC, id DESC
        """,
        {"user": user_id, "chat": chat_id},
    )


async def delete(db: Database, file_id: uuid.UUID) -> dict | None:
    """Remove the row; its storage_name and preview_image, whose bytes the caller removes."""
    return await db.fetchrow("DELETE FROM files WHERE id = %s RETURNING storage_name, preview_image", (file_id,))


async def delete_for_chat(db: Database, chat_id: uuid.UUID) -> list[dict]:
    return await db.fetch("DELETE FROM files WHERE chat_id = %s RETURNING storage_name, preview_image", (chat_id,))


async def unreferenced(db: Database, column: Literal["storage_name", "preview_image"], names: list[str]) -> set[str]:
    """Which of these stored names no row refers to."""
    if not names:
        return set()
    sql = {
        "storage_name": "SELECT storage_name AS name FROM files WHERE storage_name = ANY(%s)",
        "preview_image": "SELECT preview_image AS name FROM files WHERE preview_image = ANY(%s)",
    }[column]
    rows = await db.fetch(sql, (names,))
    return set(names) - {r["name"] for r in rows}


async def start_processing(db: Database, file_id: str) -> dict | None:
    """Claim a file for extraction; None if it was deleted or is already done."""
    return await db.fetchrow(
        """
        UPDATE files SET status = 'processing'
        WHERE id = %s AND status IN ('pending', 'processing')
        RETURNING storage_name, name, content_type, preview_image, user_id
        """,
        (file_id,),
    )


async def record_ready(db: Database, file_id: str, text: str, preview_text: str | None,
                       preview_image: str | None) -> bool:
    updated = await db.fetchrow(
        """
        UPDATE files
        SET status = 'ready', text_content = %s, preview_text = %s, preview_image = %s,
            error = NULL, error_temporary = false, processed_at = clock_timestamp()
        WHERE id = %s AND status = 'processing'
        RETURNING id
        """,
        (text, preview_text, preview_image, file_id),
    )
    return updated is not None


async def record_failure(db: Database, file_id: str, reason: str, *, temporary: bool) -> None:
    await db.execute(
        """
        UPDATE files
        SET status = 'failed', error = %s, error_temporary = %s, processed_at = clock_timestamp()
        WHERE id = %s AND status IN ('pending', 'processing')
        """,
        (reason, temporary, file_id),
    )


async def reset_retryable(db: Database, max_rounds: int) -> list[dict]:
    """Temporary failures tried fewer than `max_rounds` times, set pending again: id and old error."""
    return await db.fetch(
        """
        UPDATE files f
        SET status = 'pending', error = NULL, error_temporary = false, preview_retries = f.preview_retries + 1
        FROM (SELECT id, error FROM files
              WHERE status = 'failed' AND error_temporary AND preview_retries < %s FOR UPDATE) old
        WHERE f.id = old.id
        RETURNING f.id, old.error
        """,
        (max_rounds,),
    )


async def restore_failure(db: Database, file_id: uuid.UUID, error: str) -> None:
    """Undo reset_retryable for one file whose job could not be queued."""
    await db.execute(
        """
        UPDATE files SET status = 'failed', error = %s, error_temporary = true
        WHERE id = %s AND status = 'pending'
        """,
        (error, file_id),
    )


async def working_since(db: Database, seconds: float) -> list[uuid.UUID]:
    """Files still waiting for their text after `seconds`."""
    rows = await db.fetch(
        """
        SELECT id FROM files
        WHERE status IN ('pending', 'processing')
          AND created_at < clock_timestamp() - make_interval(secs => %s)
        """,
        (seconds,),
    )
    return [r["id"] for r in rows]


async def texts(db: Database, user_id: uuid.UUID, file_ids: list[uuid.UUID]) -> list[dict]:
    """id, name, status, text_content, content_type and storage_name of these files of the user."""
    return await db.fetch(
        """
        SELECT id, name, status, text_content, content_type, storage_name
        FROM files WHERE id = ANY(%s) AND user_id = %s
        """,
        (list(file_ids), user_id),
    )


async def searchable_texts(db: Database, user_id: uuid.UUID, q: str, attached: list, limit: int) -> list[dict]:
    """The texts the built-in answer reads: the attached files (`attached` true)
    and the user's other files matching any word of `q`, best first; never an
    image, whose text only describes it. id, name, text_content, attached."""
    return await db.fetch(
        """
        WITH q AS (SELECT replace(plainto_tsquery('english', %(q)s)::text, '&', '|')::tsquery AS q)
        SELECT f.id, f.name, f.text_content, f.id = ANY(%(attached)s::uuid[]) AS attached
        FROM files f, q
        WHERE f.user_id = %(user)s AND f.status = 'ready' AND f.text_content <> ''
          AND f.content_type NOT LIKE 'image/%%'
          AND (f.id = ANY(%(attached)s::uuid[]) OR f.search @@ q.q)
        ORDER BY attached DESC, ts_rank_cd(f.search, q.q) DESC
        LIMIT %(limit)s
        """,
        {"q": q, "user": user_id, "attached": attached, "limit": limit},
    )


async def ready_texts_without(db: Database, file_ids: list[uuid.UUID]) -> list[dict]:
    """id, user_id and text_content of the files with text, but for these."""
    return await db.fetch(
        """
        SELECT id, user_id, text_content FROM files
        WHERE status = 'ready' AND text_content <> '' AND NOT id = ANY(%s::uuid[])
        ORDER BY created_at
        """,
        (file_ids,))


async def names(db: Database, user_id: uuid.UUID, file_ids: list[uuid.UUID]) -> dict[uuid.UUID, str]:
    """The names of these files of the user, by id."""
    rows = await db.fetch("SELECT id, name FROM files WHERE user_id = %s AND id = ANY(%s::uuid[])",
                          (user_id, list(file_ids)))
    return {r["id"]: r["name"] for r in rows}


async def text_by_id_or_name(db: Database, user_id: uuid.UUID, file_id: uuid.UUID | None,
                             name: str) -> dict | None:
    """One of the user's files by id, else the newest named `name`: id, name, status, text_content."""
    return await db.fetchrow(
        """
        SELECT id, name, status, text_content FROM files
        WHERE user_id = %(user)s AND (id = %(id)s OR (%(id)s::uuid IS NULL AND name = %(name)s))
        ORDER BY created_at DESC LIMIT 1
        """,
        {"user": user_id, "id": file_id, "name": name},
    )

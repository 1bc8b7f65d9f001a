"""The `messages` table: questions and answers of every chat.

An answer is unfinished while `pending` (queued) or `streaming`; once
`complete`, `failed` or `cancelled` it never changes again, which every
write below checks in its WHERE clause.
"""

from __future__ import annotations

import uuid

import psycopg2.extras

from chatserver.db import Database

COLUMNS = ("id, chat_id, role, content, status, sources, file_ids, error, created_at, completed_at, "
           "model, finish_reason, usage, reasoning")
UNFINISHED = ("pending", "streaming")
FINISHED = ("complete", "failed", "cancelled")
# interpolated into statements (a constant, never input) so the partial index
# messages_unfinished, whose predicate is the same text, can serve them
_IS_UNFINISHED = "status IN ('pending', 'streaming')"


async def get_owned(db: Database, message_id: uuid.UUID, user_id: uuid.UUID) -> dict | None:
    return await db.fetchrow(
        f"SELECT {COLUMNS}, reply_to FROM messages WHERE id = %s AND user_id = %s", (message_id, user_id))


async def get_in_chat(db: Database, message_id: uuid.UUID, chat_id: uuid.UUID) -> dict | None:
    return await db.fetchrow(
        "SELECT id, chat_id, status, content FROM messages WHERE id = %s AND chat_id = %s",
        (message_id, chat_id))


async def insert_question(cur, chat_id: uuid.UUID, user_id: uuid.UUID, content: str,
                          file_ids: list[uuid.UUID]) -> dict:
    """A user message, complete at once, inside the caller's transaction."""
    await cur.execute(
        f"""
        INSERT INTO messages (chat_id, user_id, role, content, status, file_ids, completed_at)
        VALUES (%s, %s, 'user', %s, 'complete', %s::uuid[], clock_timestamp())
        RETURNING {COLUMNS}
        """,
        (chat_id, user_id, content, file_ids),
    )
    return dict(await cur.fetchone())


async def insert_answer(cur, chat_id: uuid.UUID, user_id: uuid.UUID, reply_to: uuid.UUID) -> dict:
    """A new pending assistant message answering `reply_to`, inside the caller's transaction."""
    await cur.execute(
        f"""
        INSERT INTO messages (chat_id, user_id, role, status, reply_to)
        VALUES (%s, %s, 'assistant', 'pending', %s)
        RETURNING {COLUMNS}
        """,
        (chat_id, user_id, reply_to),
    )
    return dict(await cur.fetchone())


async def supersede(cur, message_id: uuid.UUID) -> None:
    """A regenerated answer leaves the AI history."""
    await cur.execute("UPDATE messages SET superseded = true WHERE id = %s", (message_id,))


async def page(db: Database, chat_id: uuid.UUID, user_id: uuid.UUID, before: int | None, limit: int) -> list[dict]:
    """Newest first, before the `position` of the previous page's oldest row."""
    return await db.fetch(
        f"""
        SELECT {COLUMNS}, position FROM messages
        WHERE chat_id = %(chat)s AND user_id = %(user)s
          AND (%(before)s::bigint IS NULL OR position < %(before)s)
        ORDER BY position DESC
        LIMIT %(limit)s
        """,
        {"chat": chat_id, "user": user_id, "before": before, "limit": limit},
    )


async def unfinished_in_chat(db: Database, chat_id: uuid.UUID) -> list[dict]:
    return await db.fetch(
        f"SELECT id, chat_id, status, content FROM messages WHERE chat_id = %s AND {_IS_UNFINISHED}",
        (chat_id,))


async def get_unfinished(db: Database, message_id: uuid.UUID | str) -> dict | None:
    return await db.fetchrow(
        f"SELECT id, chat_id, status, content FROM messages WHERE id = %s AND {_IS_UNFINISHED}",
        (str(message_id),))


async def unfinished_answers(db: Database, older_than: float) -> list[dict]:
    """Every unfinished answer, with `old`: whether it was created over `older_than` seconds ago."""
    return await db.fetch(
        f"""
        SELECT id, status, clock_timestamp() - created_at > make_interval(secs => %s) AS old
        FROM messages WHERE {_IS_UNFINISHED} AND role = 'assistant'
        """,
        (older_than,),
    )


async def chat_of_answer(db: Database, message_id: uuid.UUID) -> uuid.UUID | None:
    return await db.fetchval("SELECT chat_id FROM messages WHERE id = %s AND role = 'assistant'", (message_id,))


async def exists(db: Database, message_id: uuid.UUID) -> bool:
    return bool(await db.fetchval("SELECT true FROM messages WHERE id = %s", (message_id,)))


async def get_state(db: Database, message_id: uuid.UUID) -> dict | None:
    """What a watcher needs of a stored answer: content, reasoning, status, sources, error and the
    answer's model, finish_reason and usage."""
    return await db.fetchrow(
        "SELECT content, reasoning, status, sources, error, model, finish_reason, usage FROM messages WHERE id = %s",
        (message_id,))


async def mark_streaming(db: Database, message_id: uuid.UUID) -> None:
    await db.execute("UPDATE messages SET status = 'streaming' WHERE id = %s AND status = 'pending'", (message_id,))


async def checkpoint(db: Database, message_id: uuid.UUID, content: str, reasoning: str = "") -> None:
    """Store a streaming answer's text (and reasoning) so far."""
    # the length guard keeps a slower writer from putting back an older text
    await db.execute(
        f"""
        UPDATE messages SET content = %(content)s, reasoning = %(reasoning)s, status = 'streaming'
        WHERE id = %(id)s AND {_IS_UNFINISHED}
          AND length(content) <= length(%(content)s) AND length(reasoning) <= length(%(reasoning)s)
        """,
        {"content": content, "reasoning": reasoning, "id": message_id},
    )


async def finish(db: Database, message_id: uuid.UUID, status: str, content: str, sources: list[dict],
                 error: str | None, *, reasoning: str = "", model: str | None = None,
                 finish_reason: str | None = None, usage: dict | None = None) -> dict | None:
    """Store an answer's end; the stored message, or None if it had already ended."""
    return await db.fetchrow(
        f"""
        UPDATE messages
        SET status = %(status)s, content = %(content)s, sources = %(sources)s, error = %(error)s,
            reasoning = %(reasoning)s, model = coalesce(%(model)s, model), finish_reason = %(finish_reason)s,
            usage = %(usage)s, completed_at = clock_timestamp()
        WHERE id = %(id)s AND {_IS_UNFINISHED}
        RETURNING {COLUMNS}
        """,
        {"status": status, "content": content, "sources": psycopg2.extras.Json(sources), "error": error,
         "reasoning": reasoning, "model": model, "finish_reason": finish_reason,
         "usage": None if usage is None else psycopg2.extras.Json(usage), "id": message_id},
    )


async def usage_by_day(db: Database, user_id: uuid.UUID, days: int) -> list[dict]:
    """The user's answers of the last `days` days by day and model: messages and tokens."""
    return await db.fetch(
        """
        SELECT (completed_at AT TIME ZONE 'UTC')::date AS day, coalesce(model, '') AS model,
               count(*) AS messages,
               coalesce(sum((usage->>'prompt_tokens')::bigint), 0) AS prompt_tokens,
               coalesce(sum((usage->>'completion_tokens')::bigint), 0) AS completion_tokens
        FROM messages
        WHERE user_id = %s AND role = 'assistant' AND completed_at IS NOT NULL
          AND completed_at > clock_timestamp() - make_interval(days => %s)
        GROUP BY 1, 2
        ORDER BY 1 DESC, 2
        """,
        (user_id, days),
    )


async def get_question(db: Database, answer_id: str) -> dict | None:
    """An unfinished answer with the question it answers, or None if it is gone or finished."""
    return await db.fetchrow(
        f"""
        SELECT a.id, a.chat_id, a.user_id, q.id AS question_id, q.content AS question, q.file_ids, q.position
        FROM messages a JOIN messages q ON q.id = a.reply_to
        WHERE a.id = %s AND a.role = 'assistant' AND a.{_IS_UNFINISHED}
        """,
        (answer_id,),
    )


async def history(db: Database, chat_id: uuid.UUID, before: int, limit: int) -> list[dict]:
    """Earlier turns, newest first; answers that failed, were cancelled, are
    unfinished or were regenerated are left out."""
    return await db.fetch(
        """
        SELECT role, content FROM messages
        WHERE chat_id = %s AND position < %s
          AND (role = 'user' OR (status = 'complete' AND NOT superseded))
        ORDER BY position DESC
        LIMIT %s
        """,
        (chat_id, before, limit),
    )


async def search(db: Database, user_id: uuid.UUID, q: str, limit: int) -> list[dict]:
    """The user's messages matching a web-search-style query, best first, with a snippet."""
    return await db.fetch(
        """
        SELECT m.chat_id, m.id AS message_id, m.created_at,
               ts_headline('english', m.content, q,
                           'MaxWords=35, MinWords=12, MaxFragments=2, StartSel="", StopSel=""') AS snippet
        FROM messages m, websearch_to_tsquery('english', %(q)s) q
        WHERE m.user_id = %(user)s AND m.search @@ q
        ORDER BY ts_rank(m.search, q) DESC, m.created_at DESC
        LIMIT %(limit)s
        """,
        {"q": q, "user": user_id, "limit": limit},
    )


async def passages(db: Database, user_id: uuid.UUID, q: str, exclude: uuid.UUID, headline: str, short: int,
                   limit: int) -> list[dict]:
    """The user's own earlier questions matching any word of `q`: chat_id, passage, rank."""
    return await db.fetch(
        """
        WITH q AS (SELECT replace(plainto_tsquery('english', %(q)s)::text, '&', '|')::tsquery AS q)
        SELECT m.chat_id,
               CASE WHEN length(m.content) <= %(short)s THEN m.content
                    ELSE ts_headline('english', m.content, q.q, %(headline)s) END AS passage,
               ts_rank_cd(m.search, q.q) AS rank
        FROM messages m, q
        WHERE m.user_id = %(user)s AND m.role = 'user' AND m.id <> %(exclude)s AND m.search @@ q.q
        ORDER BY rank DESC
        LIMIT %(limit)s
        """,
        {"q": q, "user": user_id, "exclude": exclude, "headline": headline, "short": short, "limit": limit},
    )


async def insert_past_answer(cur, chat_id: uuid.UUID, user_id: uuid.UUID, reply_to: uuid.UUID | None,
                             content: str) -> None:
    """An assistant turn a client brought along (the /v1 API's earlier
    messages), complete at once, inside the caller's transaction."""
    await cur.execute(
        """
        INSERT INTO messages (chat_id, user_id, role, content, status, reply_to, completed_at)
        VALUES (%s, %s, 'assistant', %s, 'complete', %s, clock_timestamp())
        """,
        (chat_id, user_id, content, reply_to),
    )

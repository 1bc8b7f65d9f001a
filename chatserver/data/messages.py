"""The `messages` table: questions and answers of every chat.

An answer is unfinished while `pending` (queued) or `streaming`; once
`complete`, `failed` or `cancelled` it never changes again, which every
write below checks in its WHERE clause.
"""

from __future__ import annotations

import datetime as dt
import json
import uuid

import psycopg2.extras

from chatserver.db import Database

COLUMNS = ("id, chat_id, role, content, status, sources, file_ids, error, created_at, completed_at, parent_id, "
           "model, finish_reason, usage, reasoning, feedback, steps")


def _text(column: str, kind: str) -> str:
    """The expression reading a text column of `messages m`: an unfinished
    answer's text so far is the pieces its checkpoints added (data/message_drafts.py),
    its row's column only once it ended."""
    return (f"CASE WHEN m.status IN ('pending', 'streaming') THEN m.{column} || message_draft(m.id, '{kind}') "
            f"ELSE m.{column} END AS {column}")


# COLUMNS as a SELECT from `messages m` reads them
_READ = ", ".join({"content": _text("content", "c"), "reasoning": _text("reasoning", "r")}.get(c, "m." + c)
                  for c in COLUMNS.split(", "))
# every message with the same parent, oldest first; a chat's first messages
# share the chat as their parent (the expression of the messages_siblings index)
_SIBLINGS = """
    (SELECT array_agg(s.id ORDER BY s.position) FROM messages s
     WHERE s.chat_id = m.chat_id AND coalesce(s.parent_id, s.chat_id) = coalesce(m.parent_id, m.chat_id)) AS siblings
"""
UNFINISHED = ("pending", "streaming")
FINISHED = ("complete", "failed", "cancelled")
# interpolated into statements (a constant, never input) so the partial index
# messages_unfinished, whose predicate is the same text, can serve them
_IS_UNFINISHED = "status IN ('pending', 'streaming')"


async def get_owned(db: Database, message_id: uuid.UUID, user_id: uuid.UUID) -> dict | None:
    """The user's message, while their account is active."""
    return await db.fetchrow(
        f"SELECT {_READ}, reply_to FROM messages m WHERE id = %s AND user_id = %s AND account_active(user_id)",
        (message_id, user_id))


async def read_owned(db: Database, message_id: uuid.UUID, user_id: uuid.UUID) -> dict | None:
    """The user's whole message, with its siblings, while their account is active."""
    return await db.fetchrow(
        f"SELECT {_READ}, {_SIBLINGS} FROM messages m WHERE id = %s AND user_id = %s AND account_active(user_id)",
        (message_id, user_id))


async def get_in_chat(db: Database, message_id: uuid.UUID, chat_id: uuid.UUID) -> dict | None:
    return await db.fetchrow(
        f"SELECT id, chat_id, status, {_text('content', 'c')} FROM messages m WHERE id = %s AND chat_id = %s",
        (message_id, chat_id))


async def get_many(db: Database, ids: list[uuid.UUID]) -> list[dict]:
    """Whole messages, with their siblings, in the order of `ids`."""
    rows = await db.fetch(f"SELECT {_READ}, {_SIBLINGS} FROM messages m WHERE id = ANY(%s::uuid[])", (ids,))
    by_id = {r["id"]: r for r in rows}
    return [by_id[i] for i in ids if i in by_id]


async def insert_question(cur, chat_id: uuid.UUID, user_id: uuid.UUID, content: str,
                          file_ids: list[uuid.UUID], parent_id: uuid.UUID | None) -> dict:
    """A user message, complete at once, inside the caller's transaction."""
    await cur.execute(
        f"""
        INSERT INTO messages (chat_id, user_id, role, content, status, file_ids, completed_at, parent_id)
        VALUES (%s, %s, 'user', %s, 'complete', %s::uuid[], clock_timestamp(), %s)
        RETURNING {COLUMNS}
        """,
        (chat_id, user_id, content, file_ids, parent_id),
    )
    return dict(await cur.fetchone())


async def insert_answer(cur, chat_id: uuid.UUID, user_id: uuid.UUID, reply_to: uuid.UUID) -> dict:
    """A new pending assistant message answering `reply_to` (its parent), inside the caller's transaction."""
    await cur.execute(
        f"""
        INSERT INTO messages (chat_id, user_id, role, status, reply_to, parent_id)
        VALUES (%s, %s, 'assistant', 'pending', %s, %s)
        RETURNING {COLUMNS}
        """,
        (chat_id, user_id, reply_to, reply_to),
    )
    return dict(await cur.fetchone())


async def set_files(db: Database, message_id: uuid.UUID, file_ids: list[uuid.UUID]) -> None:
    """The files a question carries, once they are stored (the /v1 API's images)."""
    await db.execute("UPDATE messages SET file_ids = %s::uuid[] WHERE id = %s", (file_ids, message_id))


def _branch_page(start: str) -> str:
    """The statement reading `start` and up to `limit - 1` of its ancestors,
    newest first: one walk up the tree by primary key, however many messages
    and branches the chat has."""
    return f"""
    WITH RECURSIVE branch AS (
        SELECT id, parent_id, 1 AS n FROM messages
        WHERE id = {start} AND chat_id = %(chat)s AND user_id = %(user)s AND account_active(user_id)
        UNION ALL
        SELECT p.id, p.parent_id, b.n + 1 FROM branch b JOIN messages p ON p.id = b.parent_id
        WHERE b.n < %(limit)s
    )
    SELECT {_READ}, {_SIBLINGS}
    FROM branch b JOIN messages m ON m.id = b.id
    ORDER BY b.n
"""


BRANCH_PAGE = _branch_page("%(start)s")
# from the leaf the chat shows, found in the same statement (migration 0091)
SHOWN_BRANCH_PAGE = _branch_page("(SELECT shown_leaf(%(chat)s, %(user)s))")


async def branch_page(db: Database, chat_id: uuid.UUID, user_id: uuid.UUID, start: uuid.UUID | None,
                      limit: int) -> list[dict]:
    """`start` (None: the leaf the chat shows) and up to `limit - 1` of its
    ancestors, newest first, with their siblings; none while the account is
    not active."""
    if start is None:
        return await db.fetch(SHOWN_BRANCH_PAGE, {"chat": chat_id, "user": user_id, "limit": limit})
    return await db.fetch(BRANCH_PAGE, {"chat": chat_id, "user": user_id, "start": start, "limit": limit})


async def newest_descendant(db: Database, chat_id: uuid.UUID, message_id: uuid.UUID) -> uuid.UUID | None:
    """The newest message of the subtree under `message_id` (itself when it has none); None if not in the chat."""
    return await db.fetchval(
        """
        WITH RECURSIVE below AS (
            SELECT id, chat_id, position FROM messages WHERE id = %(id)s AND chat_id = %(chat)s
            UNION ALL
            SELECT m.id, m.chat_id, m.position FROM below b
            JOIN messages m ON m.chat_id = b.chat_id AND coalesce(m.parent_id, m.chat_id) = b.id
        )
        SELECT id FROM below ORDER BY position DESC LIMIT 1
        """,
        {"id": message_id, "chat": chat_id},
    )


async def unfinished_in_chat(db: Database, chat_id: uuid.UUID) -> list[dict]:
    return await db.fetch(
        f"SELECT id, chat_id, status, {_text('content', 'c')} FROM messages m WHERE chat_id = %s AND {_IS_UNFINISHED}",
        (chat_id,))


async def get_unfinished(db: Database, message_id: uuid.UUID | str) -> dict | None:
    return await db.fetchrow(
        f"SELECT id, chat_id, status, {_text('content', 'c')} FROM messages m WHERE id = %s AND {_IS_UNFINISHED}",
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
    """What a watcher needs of a stored answer: content, reasoning, status, sources, error, the
    answer's model, finish_reason, usage and tool_calls, and its tool steps."""
    return await db.fetchrow(
        f"SELECT {_text('content', 'c')}, {_text('reasoning', 'r')}, status, sources, error, model, finish_reason, "
        "usage, tool_calls, steps FROM messages m WHERE id = %s",
        (message_id,))


async def mark_streaming(db: Database, message_id: uuid.UUID, model: str | None = None) -> None:
    """The answer's generation started, asking `model` (the model server may name another when it ends)."""
    await db.execute("UPDATE messages SET status = 'streaming', model = coalesce(%s, model) "
                     "WHERE id = %s AND status = 'pending'", (model, message_id))


async def finish(db: Database, message_id: uuid.UUID, status: str, content: str, sources: list[dict],
                 error: str | None, *, reasoning: str = "", model: str | None = None,
                 finish_reason: str | None = None, usage: dict | None = None,
                 tool_calls: list[dict] | None = None, steps: list[dict] | None = None) -> dict | None:
    """Store an answer's end (its whole text, with its tool steps; a trigger
    drops its checkpoints' pieces); the stored message with its siblings (as
    get_many reads it), or None if it had already ended."""
    return await db.fetchrow(
        f"""
        UPDATE messages m
        SET status = %(status)s, content = %(content)s, sources = %(sources)s, error = %(error)s,
            reasoning = %(reasoning)s, model = coalesce(%(model)s, model), finish_reason = %(finish_reason)s,
            usage = %(usage)s, tool_calls = %(tool_calls)s, steps = %(steps)s, completed_at = clock_timestamp()
        WHERE id = %(id)s AND {_IS_UNFINISHED}
        RETURNING {COLUMNS}, {_SIBLINGS}
        """,
        {"status": status, "content": content, "sources": psycopg2.extras.Json(sources), "error": error,
         "reasoning": reasoning, "model": model, "finish_reason": finish_reason,
         "usage": None if usage is None else psycopg2.extras.Json(usage),
         "tool_calls": None if tool_calls is None else psycopg2.extras.Json(tool_calls),
         "steps": psycopg2.extras.Json(steps or []), "id": message_id},
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


async def last_posted(db: Database, user_ids: list[uuid.UUID]) -> dict[uuid.UUID, dt.datetime]:
    """When each of `user_ids` last wrote a message (users without one are left out)."""
    rows = await db.fetch(
        "SELECT given.id, (SELECT max(created_at) FROM messages WHERE user_id = given.id) AS at "
        "FROM unnest(%s::uuid[]) AS given(id)", (user_ids,))
    return {row["id"]: row["at"] for row in rows if row["at"] is not None}


# the grouping of the admin usage report, by its `by`
_USAGE_KEYS = {"user": "user_id::text", "model": "coalesce(model, '')",
               "day": "to_char((completed_at AT TIME ZONE 'UTC')::date, 'YYYY-MM-DD')"}


async def usage_of_everyone(db: Database, days: int, by: str) -> list[dict]:
    """Everyone's answers of the last `days` days grouped `by` user, model or
    day: messages, tokens, and the thumbs up and down they were given."""
    return await db.fetch(
        f"""
        SELECT {_USAGE_KEYS[by]} AS key,
               count(*) AS messages,
               coalesce(sum((usage->>'prompt_tokens')::bigint), 0) AS prompt_tokens,
               coalesce(sum((usage->>'completion_tokens')::bigint), 0) AS completion_tokens,
               count(*) FILTER (WHERE feedback->>'rating' = '1') AS thumbs_up,
               count(*) FILTER (WHERE feedback->>'rating' = '-1') AS thumbs_down
        FROM messages
        WHERE role = 'assistant' AND completed_at IS NOT NULL
          AND completed_at > clock_timestamp() - make_interval(days => %s)
        GROUP BY 1
        ORDER BY 1
        """,
        (days,),
    )


async def get_question(db: Database, answer_id: str) -> dict | None:
    """An unfinished answer with the question it answers (`question_parent`:
    the turn before it, None for a chat's first), and its chat's answer
    settings (chats.SETTINGS) and knowledge; None if it is gone or finished."""
    return await db.fetchrow(
        f"""
        SELECT a.id, a.chat_id, a.user_id, q.id AS question_id, q.content AS question, q.file_ids,
               q.parent_id AS question_parent,
               c.model, c.system_prompt, c.temperature, c.max_tokens, c.tools, c.knowledge
        FROM messages a JOIN messages q ON q.id = a.reply_to, chat_answer_settings(a.chat_id) c
        WHERE a.id = %s AND a.role = 'assistant' AND a.{_IS_UNFINISHED}
        """,
        (answer_id,),
    )


async def history(db: Database, question_id: uuid.UUID, limit: int, chars: int | None = None) -> list[dict]:
    """The turns of the question's branch before it, newest first; answers
    that failed, were cancelled or are unfinished are left out. With `chars`,
    the walk stops at the first turn that brings the total past it (that turn
    included), so a long chat costs no more than its budget."""
    return await db.fetch(
        """
        WITH RECURSIVE up AS (
            SELECT parent_id, 1 AS n, 0::bigint AS used FROM messages WHERE id = %(question)s
            UNION ALL
            SELECT m.parent_id, up.n + 1,
                   up.used + CASE WHEN m.role = 'user' OR m.status = 'complete' THEN length(m.content) ELSE 0 END
            FROM up JOIN messages m ON m.id = up.parent_id
            WHERE up.n < %(limit)s AND (%(chars)s::bigint IS NULL OR up.used <= %(chars)s)
        )
        SELECT m.role, m.content FROM up JOIN messages m ON m.id = up.parent_id
        WHERE m.role = 'user' OR m.status = 'complete'
        ORDER BY up.n
        """,
        {"question": question_id, "limit": limit, "chars": chars},
    )


async def search(db: Database, user_id: uuid.UUID, q: str, limit: int) -> list[dict]:
    """The user's messages matching a web-search-style query, best first, with a snippet; none
    while the account is not active."""
    return await db.fetch(SEARCH, {"q": q, "user": user_id, "limit": limit})


SEARCH = """
        SELECT m.chat_id, m.id AS message_id, m.created_at,
               ts_headline('english', m.content, q,
                           'MaxWords=35, MinWords=12, MaxFragments=2, StartSel="", StopSel=""') AS snippet
        FROM messages m, websearch_to_tsquery('english', %(q)s) q
        WHERE m.user_id = %(user)s AND m.search @@ q AND account_active(%(user)s)
        ORDER BY ts_rank(m.search, q) DESC, m.created_at DESC
        LIMIT %(limit)s
"""


async def searchable_answers(db: Database, user_id: uuid.UUID, q: str, skip_prefix: str,
                             limit: int) -> list[dict]:
    """The user's earlier answers matching any word of `q`, best first, except
    those starting with `skip_prefix`: chat_id, content. Questions are never
    returned: what the user wrote is no source for their own question."""
    return await db.fetch(
        """
        WITH q AS (SELECT replace(plainto_tsquery('english', %(q)s)::text, '&', '|')::tsquery AS q)
        SELECT m.chat_id, m.content
        FROM messages m, q
        WHERE m.user_id = %(user)s AND m.role = 'assistant' AND m.status = 'complete' AND NOT m.superseded
          AND m.search @@ q.q AND NOT starts_with(m.content, %(skip)s)
        ORDER BY ts_rank_cd(m.search, q.q) DESC
        LIMIT %(limit)s
        """,
        {"q": q, "user": user_id, "skip": skip_prefix, "limit": limit},
    )


async def first_ids(db: Database, chat_id: uuid.UUID) -> list[tuple[uuid.UUID, bool]]:
    """The ids of a chat's first messages (no parent), oldest first, each
    with whether it has tool steps (for export)."""
    rows = await db.fetch(
        """
        SELECT id, jsonb_array_length(steps) > 0 AS with_steps FROM messages
        WHERE chat_id = %(chat)s AND coalesce(parent_id, chat_id) = %(chat)s
        ORDER BY position
        """,
        {"chat": chat_id})
    return [(row["id"], row["with_steps"]) for row in rows]


async def export_batch(db: Database, chat_id: uuid.UUID, after: int, limit: int) -> list[dict]:
    """Up to `limit` messages of a chat after `position`, oldest first, each
    with the ids of its children (oldest first): an export reads a chat of
    any size a batch at a time."""
    return await db.fetch(
        f"""
        SELECT m.id, m.parent_id, m.role, {_text('content', 'c')}, m.created_at, m.position, m.feedback, m.steps,
               ARRAY(SELECT c.id FROM messages c
                     WHERE c.chat_id = m.chat_id AND coalesce(c.parent_id, c.chat_id) = m.id
                     ORDER BY c.position) AS children,
               ARRAY(SELECT jsonb_array_length(c.steps) > 0 FROM messages c
                     WHERE c.chat_id = m.chat_id AND coalesce(c.parent_id, c.chat_id) = m.id
                     ORDER BY c.position) AS children_with_steps
        FROM messages m
        WHERE m.chat_id = %s AND m.position > %s
        ORDER BY m.position
        LIMIT %s
        """,
        (chat_id, after, limit))


async def set_feedback(db: Database, message_id: uuid.UUID, feedback: dict | None) -> None:
    """The owner's feedback on an answer ({"rating", "comment", "updated_at"}), or None to take it back."""
    await db.execute(
        """
        UPDATE messages
        SET feedback = CASE WHEN %(feedback)s::jsonb IS NULL THEN NULL
                            ELSE %(feedback)s::jsonb || jsonb_build_object('updated_at', clock_timestamp()) END
        WHERE id = %(id)s
        """,
        {"feedback": None if feedback is None else psycopg2.extras.Json(feedback), "id": message_id})


async def insert_imported(cur, chat_id: uuid.UUID, user_id: uuid.UUID, rows: list[dict]) -> None:
    """Complete messages (id, parent_id, role, content, created_at, steps), parents
    first, in one statement inside the caller's transaction."""
    columns = ("id", "parent_id", "role", "content", "created_at")
    await cur.execute(
        """
        INSERT INTO messages (id, chat_id, user_id, parent_id, reply_to, role, content, status,
                              created_at, completed_at, steps)
        SELECT r.id, %(chat)s, %(user)s, r.parent_id,
               CASE WHEN r.role = 'assistant' AND p.role = 'user' THEN r.parent_id END,
               r.role, r.content, 'complete', r.created_at, r.created_at, r.steps::jsonb
        FROM unnest(%(id)s::uuid[], %(parent_id)s::uuid[], %(role)s::text[], %(content)s::text[],
                    %(created_at)s::timestamptz[], %(steps)s::text[])
             WITH ORDINALITY AS r (id, parent_id, role, content, created_at, steps, n)
        LEFT JOIN unnest(%(id)s::uuid[], %(role)s::text[]) AS p (id, role) ON p.id = r.parent_id
        ORDER BY r.n
        """,
        {"chat": chat_id, "user": user_id, **{c: [row[c] for row in rows] for c in columns},
         "steps": [json.dumps(row.get("steps") or []) for row in rows]},
    )


async def insert_past_answer(cur, chat_id: uuid.UUID, user_id: uuid.UUID, parent_id: uuid.UUID | None,
                             content: str) -> dict:
    """An assistant turn a client brought along (the /v1 API's earlier
    messages), complete at once, following `parent_id`, inside the caller's transaction."""
    await cur.execute(
        f"""
        INSERT INTO messages (chat_id, user_id, role, content, status, reply_to, parent_id, completed_at)
        VALUES (%s, %s, 'assistant', %s, 'complete', %s, %s, clock_timestamp())
        RETURNING {COLUMNS}
        """,
        (chat_id, user_id, content, parent_id, parent_id),
    )
    return dict(await cur.fetchone())


async def delete_turn(cur, first_id: uuid.UUID) -> None:
    """Delete a message and every message after it on its branches, inside the caller's transaction."""
    await cur.execute("DELETE FROM messages WHERE id = %s", (first_id,))

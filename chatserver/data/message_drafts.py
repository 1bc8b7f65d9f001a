"""The `message_drafts` table: a streaming answer's text so far, as the
pieces its checkpoints added (migration 0310). Each piece is only what the
answer gained since the checkpoint before it, so an answer costs PostgreSQL
bytes in proportion to its length; reads of an unfinished answer join them
(`message_draft()`, data/messages.py), and a trigger drops them with its final
write (migration 0310).
"""

from __future__ import annotations

import uuid

from chatserver.db import Database

CONTENT, REASONING = "c", "r"


async def add(db: Database, message_id: uuid.UUID, content_at: int, content: str, reasoning_at: int,
              reasoning: str) -> tuple[int, int] | None:
    """Add to an unfinished answer's stored text (and reasoning) a piece
    starting `*_at` UTF-8 bytes in. A piece is kept only where the stored text
    ends, so a checkpoint repeated or arriving late changes nothing. Where
    the stored texts end (content, reasoning) after it; None once the answer
    has ended."""
    rows = await db.fetch(
        """
        WITH live AS (
            SELECT lock_unfinished_answer(%(id)s) AS unfinished
        ), given (kind, at, piece) AS (
            VALUES (%(c)s::"char", %(content_at)s::integer, %(content)s::text),
                   (%(r)s::"char", %(reasoning_at)s::integer, %(reasoning)s::text)
        ), saved AS (
            SELECT g.kind, g.at, g.piece,
                   coalesce((SELECT d.at + octet_length(d.piece) FROM message_drafts d
                             WHERE d.message_id = %(id)s AND d.kind = g.kind
                             ORDER BY d.at DESC LIMIT 1), 0) AS upto
            FROM live, given g WHERE live.unfinished
        ), added AS (
            INSERT INTO message_drafts (message_id, kind, at, piece)
            SELECT %(id)s, kind, at, piece FROM saved WHERE piece <> '' AND at = upto
            ON CONFLICT DO NOTHING
            RETURNING kind, at + octet_length(piece) AS upto
        )
        SELECT s.kind, coalesce(a.upto, s.upto) AS upto FROM saved s LEFT JOIN added a USING (kind)
        """,
        {"id": message_id, "c": CONTENT, "content_at": content_at, "content": content, "r": REASONING,
         "reasoning_at": reasoning_at, "reasoning": reasoning},
    )
    if not rows:
        return None
    upto = {row["kind"]: row["upto"] for row in rows}
    return upto[CONTENT], upto[REASONING]


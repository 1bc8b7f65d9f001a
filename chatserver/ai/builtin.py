"""The built-in backend: no model, just PostgreSQL full-text search over the
user's own files and earlier messages. It says what it is, quotes what it
found, and lists the passages as sources. Files attached to the message are
always quoted (around the matching words, else from their start), since a
question like "summarise this" names nothing a search could find."""

from __future__ import annotations

from ..db import Database
from .base import Write
from .context import Context

MAX_PASSAGES = 4
HEADLINE = "MaxWords=60, MinWords=25, ShortWord=2, StartSel=\"\", StopSel=\"\""
SHORT = 400  # texts up to this many characters are quoted whole
NOT_A_MODEL = ("No AI model is configured on this server, so this answer comes from the built-in search: "
               "it looks for your words in your uploaded files and earlier messages. It is not a language "
               "model and does not compose answers of its own.")

# Any of the question's words may match (plainto_tsquery would demand all of them).
SEARCH = f"""
WITH q AS (SELECT replace(plainto_tsquery('english', %(q)s)::text, '&', '|')::tsquery AS q)
SELECT title, passage FROM (
    SELECT f.name AS title,
           CASE WHEN length(f.text_content) <= {SHORT} THEN f.text_content
                ELSE ts_headline('english', f.text_content, q.q, '{HEADLINE}') END AS passage,
           ts_rank_cd(f.search, q.q) AS rank
    FROM files f, q
    WHERE f.user_id = %(user)s AND f.status = 'ready' AND f.search @@ q.q AND NOT f.id = ANY(%(attached)s::uuid[])
    UNION ALL
    SELECT c.title,
           CASE WHEN length(m.content) <= {SHORT} THEN m.content
                ELSE ts_headline('english', m.content, q.q, '{HEADLINE}') END,
           ts_rank_cd(m.search, q.q)
    FROM messages m JOIN chats c ON c.id = m.chat_id, q
    WHERE m.user_id = %(user)s AND m.role = 'user' AND m.id <> %(question)s AND m.search @@ q.q
) found
ORDER BY rank DESC
LIMIT %(limit)s
"""

ATTACHED = f"""
WITH q AS (SELECT replace(plainto_tsquery('english', %(q)s)::text, '&', '|')::tsquery AS q)
SELECT f.name AS title,
       CASE WHEN length(f.text_content) <= {SHORT} THEN f.text_content
            WHEN f.search @@ q.q THEN ts_headline('english', f.text_content, q.q, '{HEADLINE}')
            ELSE left(f.text_content, {SHORT}) || ' ...' END AS passage
FROM files f, q
WHERE f.user_id = %(user)s AND f.id = ANY(%(attached)s::uuid[]) AND f.text_content <> ''
ORDER BY array_position(%(attached)s::uuid[], f.id)
"""


class BuiltinBackend:
    remote = False

    def __init__(self, db: Database):
        self.db = db

    async def generate(self, context: Context, write: Write) -> list[dict]:
        readable = [f["id"] for f in context.files if f.get("content")]
        params = {"q": context.message, "user": context.user_id, "question": context.question_id,
                  "attached": readable}
        passages = await self.db.fetch(ATTACHED, params) if readable else []
        if len(passages) < MAX_PASSAGES:
            passages += await self.db.fetch(SEARCH, params | {"limit": MAX_PASSAGES - len(passages)})
        await write(NOT_A_MODEL + "\n\n")
        for unread in (f for f in context.files if not f.get("content")):
            await write(f"\u201c{unread['name']}\u201d is attached but its text is not available "
                        f"({unread.get('note') or 'no text'}).\n\n")
        if not passages:
            await write("I found nothing in your files or earlier messages that matches your message.")
            return []
        await write(f"I found {len(passages)} passage{'s' if len(passages) > 1 else ''} that may help:\n\n")
        for number, passage in enumerate(passages, 1):
            text = " ".join(passage["passage"].split())
            await write(f"{number}. From \u201c{passage['title']}\u201d: {text}\n\n")
        await write("The sources below hold these passages.")
        return [{"title": p["title"], "url": "", "content": " ".join(p["passage"].split())} for p in passages]

"""The built-in backend: no model, just PostgreSQL full-text search over the
user's own files and earlier messages. It says what it is, quotes what it
found, and lists the passages as sources. Files attached to the message are
always quoted (around the matching words, else from their start), since a
question like "summarise this" names nothing a search could find."""

from __future__ import annotations

from chatserver.data import chats, files, messages
from chatserver.db import Database
from chatserver.ai.base import Write
from chatserver.ai.context import Context

MAX_PASSAGES = 4
HEADLINE = "MaxWords=60, MinWords=25, ShortWord=2, StartSel=\"\", StopSel=\"\""
SHORT = 400  # texts up to this many characters are quoted whole
NOT_A_MODEL = ("No AI model is configured on this server, so this answer comes from the built-in search: "
               "it looks for your words in your uploaded files and earlier messages. It is not a language "
               "model and does not compose answers of its own.")

class BuiltinBackend:
    remote = False

    def __init__(self, db: Database):
        self.db = db

    async def generate(self, context: Context, write: Write) -> list[dict]:
        readable = [f["id"] for f in context.files if f.get("content")]
        passages = await files.attached_passages(self.db, context.user_id, readable, context.message,
                                                 HEADLINE, SHORT) if readable else []
        if len(passages) < MAX_PASSAGES:
            passages += await self._search(context, readable, MAX_PASSAGES - len(passages))
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

    async def _search(self, context: Context, attached: list, limit: int) -> list[dict]:
        """The best passages of the user's other files and earlier questions
        (any of the question's words may match), a question titled by its chat."""
        found = await files.passages(self.db, context.user_id, context.message, attached, HEADLINE, SHORT, limit)
        asked = await messages.passages(self.db, context.user_id, context.message, context.question_id,
                                        HEADLINE, SHORT, limit)
        if asked:
            titles = await chats.titles(self.db, list({m["chat_id"] for m in asked}))
            found += [{"title": titles.get(m["chat_id"], ""), "passage": m["passage"], "rank": m["rank"]}
                      for m in asked]
        return sorted(found, key=lambda p: -p["rank"])[:limit]

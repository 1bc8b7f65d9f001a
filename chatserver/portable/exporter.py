"""Exporting chats as conversations.json a piece at a time: a chat's
messages are read in batches and written as they are read, so neither the
rows nor the text of an export of any size are ever held at once."""

from __future__ import annotations

from collections.abc import AsyncIterator

from chatserver.data import messages
from chatserver.db import Database
from chatserver.portable import chatgpt

# messages read per query: about half a megabyte of text at most
BATCH = 500


async def conversation_pieces(db: Database, chat: dict) -> AsyncIterator[str]:
    """One chat as one conversation of conversations.json, in pieces that
    join into its JSON: every branch, oldest message first."""
    yield chatgpt.conversation_head(chat)
    yield chatgpt.root_entry(await messages.first_ids(db, chat["id"]))
    after = 0
    while True:
        rows = await messages.export_batch(db, chat["id"], after, BATCH)
        if rows:
            yield "".join(", " + chatgpt.message_entry(row) for row in rows)
        if len(rows) < BATCH:
            break
        after = rows[-1]["position"]
    yield "}}"

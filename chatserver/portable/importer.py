"""Importing a file: read it off the event loop, then store every
conversation in one transaction (all or nothing per file). The request
(`POST /api/import`) and the import job (import_job.py) both come here."""

from __future__ import annotations

import asyncio
import dataclasses
import uuid
from collections.abc import Awaitable, Callable
from pathlib import Path

from chatserver.data import chats, messages
from chatserver.db import Database
from chatserver.portable import chatgpt

# conversations stored between two progress reports
PROGRESS_EVERY = 100
# longer than DB_TIMEOUT_SECONDS: one conversation's insert may be large, or wait
# for a concurrent import of the same conversations to commit (then it is skipped)
STATEMENT_SECONDS = 600



@dataclasses.dataclass
class Counts:
    imported: int
    skipped: int


Progress = Callable[[int, int], Awaitable[None]]
# (the transaction's cursor, the counts)
Finish = Callable[[object, Counts], Awaitable[None]]


def _read(path: Path, limit: int) -> list[chatgpt.Conversation]:
    return chatgpt.read_file(path.read_bytes(), limit)


async def read(path: Path, limit: int) -> list[chatgpt.Conversation]:
    """The file's conversations, read and parsed in a worker thread; chatgpt.Unreadable if it cannot be."""
    return await asyncio.to_thread(_read, path, limit)


async def store(db: Database, user_id: uuid.UUID, conversations: list[chatgpt.Conversation], *,
                progress: Progress | None = None, finish: Finish | None = None,
                every: int = PROGRESS_EVERY) -> Counts:
    """Store what is new in one transaction; a conversation imported before
    (its recorded source, or one of the user's own chats) is skipped.
    `progress(total, done)` is called every `every` conversations, outside
    the transaction's view; `finish(cur, counts)` runs inside it, last."""
    own = await chats.owned_among(db, user_id, [u for u in map(_as_id, conversations) if u])
    counts = Counts(0, 0)
    async with db.transaction(timeout=STATEMENT_SECONDS) as cur:
        for done, conversation in enumerate(conversations, 1):
            if await _store_one(cur, user_id, conversation, own):
                counts.imported += 1
            else:
                counts.skipped += 1
            if progress is not None and done % every == 0 and done < len(conversations):
                await progress(len(conversations), done)
        if finish is not None:
            await finish(cur, counts)
    return counts


async def _store_one(cur, user_id: uuid.UUID, conversation: chatgpt.Conversation, own: set[uuid.UUID]) -> bool:
    if _as_id(conversation) in own:
        return False
    ids = chatgpt.new_ids(conversation.nodes)
    chat_id = await chats.insert_imported(
        cur, user_id, conversation.title, conversation.created, conversation.updated,
        ids.get(conversation.shown) if conversation.shown else _newest(conversation, ids),
        conversation.source)
    if chat_id is None:
        return False
    if conversation.nodes:
        await messages.insert_imported(cur, chat_id, user_id, [
            {"id": ids[n.key], "parent_id": ids[n.parent] if n.parent else None, "role": n.role,
             "content": n.text, "created_at": n.created, "steps": n.steps} for n in conversation.nodes])
    return True


def _as_id(conversation: chatgpt.Conversation) -> uuid.UUID | None:
    try:
        return uuid.UUID(conversation.original_id)
    except ValueError:
        return None


def _newest(conversation: chatgpt.Conversation, ids: dict[str, uuid.UUID]) -> uuid.UUID | None:
    """With no readable current_node, the newest message's branch is shown."""
    if not conversation.nodes:
        return None
    return ids[max(conversation.nodes, key=lambda n: n.created).key]

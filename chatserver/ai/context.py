"""What an AI backend is told: the question, the conversation before it, and
the text of the files attached to it, each within its character budget."""

from __future__ import annotations

import asyncio
import dataclasses
import time
import uuid

from chatserver.data import chats, files, messages
from chatserver.db import Database

TRUNCATED = "\n[... truncated to fit the context budget]"
NOTES = {
    "waiting": "the file is still being processed; its text is not included",
    "failed": "the file's text could not be extracted",
    "budget": "the file's text did not fit in the context budget",
}


@dataclasses.dataclass
class Context:
    message_id: uuid.UUID
    chat_id: uuid.UUID
    user_id: uuid.UUID
    question_id: uuid.UUID
    message: str
    history: list[dict]  # [{"role", "content"}], oldest first
    files: list[dict]  # [{"id", "name", "content"}, plus "note" when the text is missing or cut]
    # the chat's settings; None leaves each to the server's default
    model: str | None = None
    system_prompt: str | None = None
    temperature: float | None = None
    max_tokens: int | None = None


async def history(db: Database, chat_id: uuid.UUID, before: int, budget: int) -> list[dict]:
    """Earlier turns, newest kept first when the budget runs out; answers that
    failed, were cancelled, are unfinished or were regenerated are left out."""
    rows = await messages.history(db, chat_id, before, 1000)
    kept, used = [], 0
    for row in rows:
        used += len(row["content"])
        if used > budget:
            break
        kept.append({"role": row["role"], "content": row["content"]})
    return kept[::-1]


async def attached_files(db: Database, user_id: uuid.UUID, file_ids: list[uuid.UUID],
                         budget: int, wait_seconds: float) -> list[dict]:
    """The files' text, waiting a while for files whose text is still being extracted."""
    if not file_ids:
        return []
    deadline = time.monotonic() + wait_seconds
    while True:
        rows = await files.texts(db, user_id, file_ids)
        waiting = any(r["status"] in ("pending", "processing") for r in rows)
        left = deadline - time.monotonic()
        if not waiting or left <= 0:
            break
        await asyncio.sleep(min(0.5, left))
    by_id = {r["id"]: r for r in rows}
    found = []
    for file_id in file_ids:
        row = by_id.get(file_id)
        if row is None:
            continue  # deleted since the message was posted
        entry = {"id": str(row["id"]), "name": row["name"], "content": ""}
        text = row["text_content"] or ""
        if row["status"] in ("pending", "processing"):
            entry["note"] = NOTES["waiting"]
        elif row["status"] == "failed":
            entry["note"] = NOTES["failed"]
        elif len(text) <= budget:
            entry["content"] = text
            budget -= len(text)
        elif budget > len(TRUNCATED):
            entry["content"] = text[: budget - len(TRUNCATED)] + TRUNCATED
            budget = 0
        else:
            entry["note"] = NOTES["budget"]
        found.append(entry)
    return found


async def build_context(db: Database, settings, message_id: str) -> Context | None:
    answer = await messages.get_question(db, message_id)
    if answer is None:
        return None
    chat_settings = await chats.answer_settings(db, answer["chat_id"])
    return Context(
        **chat_settings,
        message_id=answer["id"],
        chat_id=answer["chat_id"],
        user_id=answer["user_id"],
        question_id=answer["question_id"],
        message=answer["question"],
        history=await history(db, answer["chat_id"], answer["position"], settings.HISTORY_CHAR_BUDGET),
        files=await attached_files(db, answer["user_id"], answer["file_ids"],
                                   settings.FILE_CONTEXT_CHAR_BUDGET, settings.FILE_WAIT_SECONDS),
    )

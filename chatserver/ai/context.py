"""What an AI backend is told: the question, the conversation before it, the
text of the files attached to it, the passages of files most relevant to the
question, and the chat's model settings.

A backend without a token budget gets history and files within their
character budgets. One with a budget (a model server: AI_CONTEXT_TOKENS) gets
all of it within that many tokens: the system prompt and the new message
always, its files whole when they fit in the room left, then the passages,
then the history, newest first, the oldest turns dropped (the first that
does not fit whole is cut to the room left, so one long message cannot push
out every other turn).

Passages (numbered from 1, for the model to cite) come from the chat's
knowledge files and from attached files too long to send whole (the largest
first), found by the question and the user's turn before it
(docs/knowledge.md).
"""

from __future__ import annotations

import asyncio
import dataclasses
import time
import uuid

from chatserver.ai import tokens
from chatserver.data import chats, files, messages
from chatserver.db import Database
from chatserver.knowledge.retrieval import find_passages
from chatserver.knowledge.vectors import Vectors

TRUNCATED = "\n[... truncated to fit the context budget]"
NOTES = {
    "waiting": "the file is still being processed; its text is not included",
    "failed": "the file's text could not be extracted",
    "budget": "the file's text did not fit in the context budget",
    "passages": "the file is too long to include whole; its passages most relevant to the message are given",
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
    # [{"number", "file_id", "file_name", "page", "passage_id", "text"}], in their numbers' order
    passages: list[dict] = dataclasses.field(default_factory=list)
    # the stored names of the attached images (ready ones); data URLs of them for a vision model
    images: list[str] = dataclasses.field(default_factory=list)
    image_urls: list[str] = dataclasses.field(default_factory=list)
    # the chat's settings; None leaves each to the server's default
    model: str | None = None
    system_prompt: str | None = None
    temperature: float | None = None
    max_tokens: int | None = None
    # the tool ids the chat's answers may call; the job fills tool_specs (OpenAI
    # function tools) and, round after round, tool_turns (the calls and their results)
    tools: list[str] = dataclasses.field(default_factory=list)
    tool_specs: list[dict] = dataclasses.field(default_factory=list)
    tool_turns: list[dict] = dataclasses.field(default_factory=list)
    # a /v1 client's own tools: its tools, tool_choice and messages, sent as they are (never run here)
    client_tools: dict = dataclasses.field(default_factory=dict)
    # what one request asked beyond the chat's settings (the /v1 API's stop and user)
    options: dict = dataclasses.field(default_factory=dict)


# the shortest cut message worth sending; below it the turn is dropped
MIN_CUT_TOKENS = 32
HISTORY_ROWS = 1000


async def history(db: Database, question_id: uuid.UUID, budget: int) -> list[dict]:
    """The shown branch before the question within `budget` characters, newest
    kept first; answers that failed, were cancelled or are unfinished are left out."""
    rows = await messages.history(db, question_id, HISTORY_ROWS, budget)
    kept, used = [], 0
    for row in rows:
        used += len(row["content"])
        if used > budget:
            break
        kept.append({"role": row["role"], "content": row["content"]})
    return kept[::-1]


def fit_history(rows: list[dict], budget: int) -> list[dict]:
    """Turns (newest first) within `budget` tokens, oldest first."""
    kept = []
    for row in rows:
        need = tokens.count(row["content"]) + tokens.PER_MESSAGE
        if need > budget:
            room = budget - tokens.PER_MESSAGE - tokens.count(TRUNCATED)
            if room >= MIN_CUT_TOKENS:
                kept.append({"role": row["role"], "content": tokens.head(row["content"], room) + TRUNCATED})
            break
        budget -= need
        kept.append({"role": row["role"], "content": row["content"]})
    return kept[::-1]


def file_tokens(entry: dict) -> int:
    return tokens.count(entry["content"]) + tokens.count(entry["name"]) + tokens.PER_MESSAGE


def fit_files(found: list[dict], budget: int) -> list[uuid.UUID]:
    """Leave whole the files that fit `budget` tokens in all; empty the others,
    the largest first, and return their ids: their passages are searched instead."""
    searched = []
    sizes = {entry["id"]: file_tokens(entry) for entry in found if entry["content"]}
    for file_id in sorted(sizes, key=lambda i: -sizes[i]):
        if sum(sizes.values()) <= budget:
            break
        del sizes[file_id]
        entry = next(e for e in found if e["id"] == file_id)
        entry["content"], entry["note"] = "", NOTES["passages"]
        searched.append(uuid.UUID(file_id))
    return searched


def cut_files(found: list[dict]) -> list[uuid.UUID]:
    """The files cut to the character budget, or left out by it: their passages are searched too."""
    return [uuid.UUID(entry["id"]) for entry in found
            if entry["content"].endswith(TRUNCATED) or entry.get("note") == NOTES["budget"]]


def fit_passages(found: list[dict], budget: int) -> list[dict]:
    """The passages, best first, that fit `budget` tokens, numbered from 1."""
    kept = []
    for passage in found:
        need = tokens.count(passage["text"]) + tokens.count(passage["file_name"]) + 8
        if need <= budget:
            budget -= need
            kept.append(passage)
    return number_passages(kept)


def number_passages(found: list[dict]) -> list[dict]:
    return [{"number": n, "file_id": str(p["file_id"]), "file_name": p["file_name"], "page": p["page"],
             "passage_id": str(p["passage_id"]), "text": p["text"]} for n, p in enumerate(found, 1)]


def passage_sources(context: Context) -> list[dict]:
    """The answer's sources: the passages it was given, in their numbers' order."""
    return [{"title": p["file_name"], "url": "", "content": p["text"], "file_id": p["file_id"],
             "page": p["page"], "passage_id": p["passage_id"]} for p in context.passages]


def passages_tokens(found: list[dict]) -> int:
    return sum(tokens.count(p["text"]) + tokens.count(p["file_name"]) + 8 for p in found)


def system_prompt(settings, chat_prompt: str | None) -> str:
    """The chat's system prompt, else the server's default; empty means none."""
    return settings.DEFAULT_SYSTEM_PROMPT if chat_prompt is None else chat_prompt


async def attached_files(db: Database, user_id: uuid.UUID, file_ids: list[uuid.UUID],
                         budget: int, wait_seconds: float, images: list[str] | None = None) -> list[dict]:
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
        if images is not None and row["status"] == "ready" and row["content_type"].startswith("image/"):
            images.append(row["storage_name"])
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


async def build_context(db: Database, settings, message_id: str, vectors: Vectors,
                        token_budget: int | None = None) -> Context | None:
    """What the backend is told about the answer, within `token_budget` tokens
    when there is one (see the module's docstring); None when there is no answer to write."""
    answer = await messages.get_question(db, message_id)
    if answer is None:
        return None
    chat_settings = {name: answer[name] for name in chats.SETTINGS}
    knowledge = answer["knowledge"]
    # a chat's first question has no turns before it to read
    first = answer["question_parent"] is None
    images: list[str] = []
    found = await attached_files(db, answer["user_id"], answer["file_ids"],
                                 settings.FILE_CONTEXT_CHAR_BUDGET, settings.FILE_WAIT_SECONDS, images)

    async def relevant(file_ids: list[uuid.UUID], rows: list[dict]) -> list[dict]:
        if not file_ids:
            return []
        # the user's turn before the question often names what "it" refers to
        earlier = next((r["content"] for r in rows if r["role"] == "user"), "")
        return await find_passages(db, vectors, answer["user_id"], f"{answer['question']}\n{earlier}",
                                   list(dict.fromkeys(file_ids)), settings.KNOWLEDGE_PASSAGES)

    if token_budget is not None:
        await tokens.load()
        budget = (token_budget - tokens.count(answer["question"]) - tokens.PER_MESSAGE
                  - tokens.count(system_prompt(settings, chat_settings["system_prompt"])) - tokens.PER_MESSAGE)
        searched = fit_files(found, budget)
        budget -= sum(file_tokens(f) for f in found if f["content"])
        rows = [] if first else await messages.history(db, answer["question_id"], HISTORY_ROWS)
        chosen = fit_passages(await relevant([*knowledge, *searched], rows), budget)
        turns = fit_history(rows, budget - passages_tokens(chosen))
    else:
        turns = [] if first else await history(db, answer["question_id"], settings.HISTORY_CHAR_BUDGET)
        chosen = number_passages(await relevant([*knowledge, *cut_files(found)], turns[::-1]))
    return Context(
        **chat_settings,
        message_id=answer["id"],
        chat_id=answer["chat_id"],
        user_id=answer["user_id"],
        question_id=answer["question_id"],
        message=answer["question"],
        history=turns,
        files=found,
        passages=chosen,
        images=images,
    )

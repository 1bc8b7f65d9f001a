"""A message as clients see it: the Message schema, its sources and usage,
and the longest content a message may have (on /v1 too)."""

from __future__ import annotations

import datetime as dt
import uuid
from typing import Literal

import pydantic

from chatserver.api.endpoint import shaped

MAX_CONTENT = 100_000


class Source(pydantic.BaseModel):
    title: str = ""
    url: str = ""
    content: str = ""
    # a passage of one of the user's files (docs/knowledge.md)
    file_id: uuid.UUID | None = None
    page: int | None = None
    passage_id: uuid.UUID | None = None


PASSAGE_KEYS = ("file_id", "page", "passage_id")


class Usage(pydantic.BaseModel):
    prompt_tokens: int | None = None
    completion_tokens: int | None = None


class Feedback(pydantic.BaseModel):
    rating: Literal[1, -1]
    comment: str | None
    updated_at: dt.datetime


class Step(pydantic.BaseModel):
    """One tool call of an answer (docs/tools.md)."""
    id: str
    tool: str
    arguments: dict
    status: Literal["running", "done", "failed"]
    output: str
    error: str | None


class Message(pydantic.BaseModel):
    id: uuid.UUID
    chat_id: uuid.UUID
    role: Literal["user", "assistant"]
    content: str
    status: Literal["pending", "streaming", "complete", "failed", "cancelled"]
    sources: list[Source]
    file_ids: list[uuid.UUID]
    error: str | None
    created_at: dt.datetime
    completed_at: dt.datetime | None
    parent_id: uuid.UUID | None
    siblings: list[uuid.UUID]
    model: str | None = None
    finish_reason: str | None = None
    usage: Usage | None = None
    reasoning: str = ""
    # the owner's thumbs up or down on an answer (docs/rest.md, Feedback)
    feedback: Feedback | None = None
    steps: list[Step] = []


def message_out(row: dict) -> dict:
    """A stored message as the Message schema shows it, not validated: our
    own database holds nothing else (see `shaped`)."""
    out = shaped(Message, row)
    out["sources"] = [{"title": s.get("title", ""), "url": s.get("url", ""), "content": s.get("content", ""),
                       **{k: s[k] for k in PASSAGE_KEYS if s.get(k) is not None}} for s in row["sources"]]
    usage = row["usage"]
    out["usage"] = None if usage is None else {"prompt_tokens": usage.get("prompt_tokens"),
                                               "completion_tokens": usage.get("completion_tokens")}
    return out

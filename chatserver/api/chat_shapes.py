"""A chat as clients see it: the Chat schema of answers and of the
`chat_updated` event, and the title a chat takes from its first question."""

from __future__ import annotations

import datetime as dt
import uuid

import pydantic
from aiohttp import web

from chatserver.live.chat_events import CHAT_EVENTS

DEFAULT_TITLE = "New chat"
# an automatic title is at most this long (plus an ellipsis)
TITLE_WORDS_CHARS = 60


class Chat(pydantic.BaseModel):
    id: uuid.UUID
    title: str
    created_at: dt.datetime
    updated_at: dt.datetime
    model: str | None
    system_prompt: str | None
    temperature: float | None
    max_tokens: int | None
    # the tool ids its answers may call (docs/tools.md)
    tools: list[str] = []
    # the last message of the branch the chat shows (docs/rest.md, Branches)
    shown_leaf: uuid.UUID | None = None


def title_from(text: str, limit: int = TITLE_WORDS_CHARS) -> str:
    """The first words of a message, cut at a word boundary."""
    words = " ".join(text.split())
    if len(words) <= limit:
        return words or DEFAULT_TITLE
    cut = words[:limit + 1].rsplit(" ", 1)[0] if " " in words[:limit + 1] else words[:limit]
    return cut.rstrip(" ,.;:!?-") + "…"


async def chat_updated(request: web.Request, row: dict) -> dict:
    """Tell the chat's subscribed sockets its new state; `row` passes through."""
    chat = Chat(**row).model_dump(mode="json")
    await request.app[CHAT_EVENTS].publish(row["id"], {"type": "chat_updated", "chat": chat})
    return row

"""A chat as clients see it: the Chat schema of answers and of the
`chat_updated` event (to the chat's sockets and its owner's list sockets),
and the title a chat takes from its first question."""

from __future__ import annotations

import datetime as dt
import uuid
from typing import Annotated

import pydantic
from aiohttp import web

from chatserver.api.endpoint import NOT_BLANK, current_user_id
from chatserver.live.chat_events import CHAT_EVENTS

DEFAULT_TITLE = "New chat"
# an automatic title is at most this long (plus an ellipsis)
TITLE_WORDS_CHARS = 60


ModelId = Annotated[str, pydantic.StringConstraints(min_length=1, max_length=200), NOT_BLANK]
SystemPrompt = Annotated[str, pydantic.StringConstraints(max_length=20_000)]
Temperature = Annotated[float, pydantic.Field(ge=0, le=2, allow_inf_nan=False)]
MaxTokens = Annotated[int, pydantic.Field(ge=1, le=2**31 - 1)]
ToolId = Annotated[str, pydantic.StringConstraints(min_length=1, max_length=200)]


class ChatSettings(pydantic.BaseModel):
    """What a chat may set for its answers; null leaves it to the server's default."""
    model_config = pydantic.ConfigDict(extra="ignore", strict=True)
    model: ModelId | None = None
    system_prompt: SystemPrompt | None = None
    temperature: Temperature | None = None
    max_tokens: MaxTokens | None = None
    tools: Annotated[list[ToolId], pydantic.Field(max_length=100)] | None = None


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
    folder_id: uuid.UUID | None = None
    pinned: bool = False
    archived: bool = False
    knowledge: list[uuid.UUID] = []


class ChatPage(pydantic.BaseModel):
    items: list[Chat]
    next_cursor: str | None


def title_from(text: str, limit: int = TITLE_WORDS_CHARS) -> str:
    """The first words of a message, cut at a word boundary."""
    words = " ".join(text.split())
    if len(words) <= limit:
        return words or DEFAULT_TITLE
    cut = words[:limit + 1].rsplit(" ", 1)[0] if " " in words[:limit + 1] else words[:limit]
    return cut.rstrip(" ,.;:!?-") + "…"


async def chat_updated(request: web.Request, row: dict) -> dict:
    """Tell the chat's subscribed sockets, and its owner's list sockets (every
    tab's chat list), its new state; `row` passes through."""
    event = {"type": "chat_updated", "chat": Chat(**row).model_dump(mode="json")}
    events = request.app[CHAT_EVENTS]
    await events.publish(row["id"], event)
    await events.publish_to_user(current_user_id(request), event)
    return row

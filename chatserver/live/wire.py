"""The codec of an answer's pieces, the one place a piece kind is declared
(docs/frames.md): what a producer hands in (`Event`), the format published
on the chat's channel (encoded by the Lua scripts through PIECE_LUA, read by
`decode`), and what a follower yields (`Text`, `Status`, `End`).

`<message id>|<n>|c|<text>` carries a chunk of the answer, `<message id>|<n>|r|<text>`
a chunk of the model's reasoning, `<message id>|<n>|t|<JSON>` a tool call's step as it starts and again as
it ends (the step of docs/tools.md, kept by its `id`: the snapshot holds each
step's latest), `<message id>|<n>|f|<JSON>` the end, whose
JSON holds `status`, `sources`, `error`, `finish_reason`, `usage`, `model`,
`at` (Unix time), `tool_calls` and the final `content`. Every other kind is a passing
piece, published as its producer gave it and not kept in the snapshot:
`<message id>|<n>|s|<JSON>` is a status the answer is in for now
(`{"status": "retrying", "attempt": N}`). `n` numbers the pieces of one
answer from 1, so a reader that took a snapshot at piece `n` needs exactly
the pieces numbered above it.

`<chat id>|0|e|<JSON>` carries a chat event (docs/websocket.md) on the same channel, so one subscription serves both.
"""

from __future__ import annotations

import dataclasses
import json
import time
from collections.abc import Callable, Iterable
from typing import Literal

CHUNK = "c"
REASONING = "r"
STATUS = "s"
TOOL_STEP = "t"
FINAL = "f"
# a final event whose text replaces the streamed one (producer side only: published as FINAL)
FINAL_REPLACING = "F"
EVENT = "e"

# defines piece(id, n, kind, body) for the scripts in scripts.py
PIECE_LUA = """
local function piece(id, n, kind, body)
  return id .. '|' .. n .. '|' .. kind .. '|' .. body
end
"""


def _compact(value: object) -> str:
    return json.dumps(value, separators=(",", ":"))


@dataclasses.dataclass
class Event:
    """One step of an answer as its producer hands it in."""
    kind: str  # CHUNK, REASONING, TOOL_STEP, a passing kind, FINAL or FINAL_REPLACING
    text: str = ""
    seq: int | None = None
    final: str = ""  # JSON {"status", "sources", "error", "finish_reason", "usage", "model", "at"} of a final event

    @classmethod
    def chunk(cls, text: str, seq: int | None = None) -> Event:
        return cls(CHUNK, text, seq)

    @classmethod
    def reasoning(cls, text: str) -> Event:
        return cls(REASONING, text)

    @classmethod
    def tool_step(cls, step: dict) -> Event:
        """A step: {"id", "tool", "arguments", "status", "output", "error"}."""
        return cls(TOOL_STEP, _compact(step))

    @classmethod
    def status(cls, status: str, attempt: int) -> Event:
        return cls(STATUS, _compact({"status": status, "attempt": attempt}))

    @classmethod
    def end(cls, status: str, *, sources: Iterable[dict] = (), error: str | None = None,
            content: str | None = None, seq: int | None = None, finish_reason: str | None = None,
            usage: dict | None = None, model: str | None = None, tool_calls: list[dict] | None = None) -> Event:
        fields = {"status": status, "sources": list(sources), "error": error, "finish_reason": finish_reason,
                  "usage": usage, "model": model, "at": time.time()}
        if tool_calls:
            fields["tool_calls"] = tool_calls  # calls of a /v1 client's own tools, for it to run
        final = _compact(fields)
        return cls(FINAL_REPLACING if content is not None else FINAL, content or "", seq, final)


@dataclasses.dataclass(frozen=True)
class Text:
    """What a follower gets before the end: first the whole text so far
    ("content", with the reasoning and the tool steps so far), then each
    later piece of the answer ("chunk") or of the model's reasoning ("reasoning")."""
    kind: Literal["content", "chunk", "reasoning"]
    text: str
    reasoning: str = ""
    steps: tuple[dict, ...] = ()


@dataclasses.dataclass(frozen=True)
class Step:
    """A tool call starting or ending (the same `id` twice), after the snapshot."""
    step: dict


@dataclasses.dataclass(frozen=True)
class Status:
    """A passing state of the answer, e.g. "retrying" while the model server asks to wait."""
    status: str
    attempt: int


@dataclasses.dataclass(frozen=True)
class End:
    """The last thing a follower gets. `content` is set only when the final
    text is not the concatenation of what came before (an authoritative
    `complete.content` that differs from the stream)."""
    status: str
    sources: list
    error: str | None
    content: str | None = None
    finish_reason: str | None = None
    usage: dict | None = None
    model: str | None = None
    tool_calls: list | None = None  # [{"id", "name", "arguments"}] a /v1 client's own tools are to run


# everything a follower yields; a new kind of piece adds its item here
Item = Text | Status | Step | End


def _status(body: str) -> Status:
    fields = json.loads(body)
    return Status(fields["status"], fields["attempt"])


# each passing kind and the item its body becomes for followers
PASSING: dict[str, Callable[[str], Item]] = {STATUS: _status}
KINDS = (CHUNK, REASONING, TOOL_STEP, FINAL, EVENT, *PASSING)


@dataclasses.dataclass(frozen=True)
class Piece:
    message_id: str  # the chat's id for an EVENT
    n: int
    kind: str  # one of KINDS
    body: str  # the chunk's text, a passing piece's or the final event's JSON, or a chat event's JSON


def encode_event(chat_id: str, body: str) -> str:
    return f"{chat_id}|0|{EVENT}|{body}"


def decode(data: str) -> Piece:
    """A published piece; ValueError when it is not one."""
    message_id, n, kind, body = data.split("|", 3)
    if kind not in KINDS:
        raise ValueError(f"unknown piece kind {kind!r}")
    return Piece(message_id, int(n), kind, body)


def passing(piece: Piece) -> Item:
    """What a follower yields for a passing piece."""
    return PASSING[piece.kind](piece.body)

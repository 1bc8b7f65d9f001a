"""The format of a piece published on a chat's channel, encoded by the Lua
scripts (PIECE_LUA) and decoded by the listener (decode), both defined here.

`<message id>|<n>|c|<text>` carries a chunk of the answer, `<message id>|<n>|r|<text>`
a chunk of the model's reasoning, `<message id>|<n>|s|<JSON>` a status the
answer is in for now (`{"status": "retrying", "attempt": N}`), and
`<message id>|<n>|f|<JSON>` the end, whose JSON holds `status`, `sources`,
`error`, `finish_reason`, `usage`, `model`, `at` (Unix time) and the final `content`.
`n` numbers the pieces of one answer from 1, so a reader that took a
snapshot at piece `n` needs exactly the pieces numbered above it.

`<chat id>|0|e|<JSON>` carries a chat event (docs/websocket.md) on the same channel, so one subscription serves both.
"""

from __future__ import annotations

import dataclasses

CHUNK = "c"
REASONING = "r"
STATUS = "s"
FINAL = "f"
EVENT = "e"
KINDS = (CHUNK, REASONING, STATUS, FINAL, EVENT)

# defines piece(id, n, kind, body) for the scripts in scripts.py
PIECE_LUA = """
local function piece(id, n, kind, body)
  return id .. '|' .. n .. '|' .. kind .. '|' .. body
end
"""


@dataclasses.dataclass(frozen=True)
class Piece:
    message_id: str  # the chat's id for an EVENT
    n: int
    kind: str  # one of KINDS
    body: str  # the chunk's text, the status's or final event's JSON, or a chat event's JSON


def encode_event(chat_id: str, body: str) -> str:
    return f"{chat_id}|0|{EVENT}|{body}"


def decode(data: str) -> Piece:
    """A published piece; ValueError when it is not one."""
    message_id, n, kind, body = data.split("|", 3)
    if kind not in KINDS:
        raise ValueError(f"unknown piece kind {kind!r}")
    return Piece(message_id, int(n), kind, body)

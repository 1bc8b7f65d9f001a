"""The format of a piece published on a chat's channel, encoded by the Lua
scripts (PIECE_LUA) and decoded by the listener (decode), both defined here.

`<message id>|<n>|c|<text>` carries a chunk; `<message id>|<n>|f|<JSON>` the
end, whose JSON holds `status`, `sources`, `error` and the final `content`.
`n` numbers the pieces of one answer from 1, so a reader that took a
snapshot at piece `n` needs exactly the pieces numbered above it.

`<chat id>|0|e|<JSON>` carries a chat event (API.md "Chat events on the
WebSocket") on the same channel, so one subscription serves both.
"""

from __future__ import annotations

import dataclasses

CHUNK = "c"
FINAL = "f"
EVENT = "e"

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
    kind: str  # CHUNK, FINAL or EVENT
    body: str  # the chunk's text, or the final event's or chat event's JSON


def encode_event(chat_id: str, body: str) -> str:
    return f"{chat_id}|0|{EVENT}|{body}"


def decode(data: str) -> Piece:
    """A published piece; ValueError when it is not one."""
    message_id, n, kind, body = data.split("|", 3)
    if kind not in (CHUNK, FINAL, EVENT):
        raise ValueError(f"unknown piece kind {kind!r}")
    return Piece(message_id, int(n), kind, body)

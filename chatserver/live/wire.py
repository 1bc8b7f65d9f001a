"""The format of a piece published on a chat's channel, encoded by the Lua
scripts (PIECE_LUA) and decoded by the listener (decode), both defined here.

`<message id>|<n>|c|<text>` carries a chunk; `<message id>|<n>|f|<JSON>` the
end, whose JSON holds `status`, `sources`, `error` and the final `content`.
`n` numbers the pieces of one answer from 1, so a reader that took a
snapshot at piece `n` needs exactly the pieces numbered above it.
"""

from __future__ import annotations

import dataclasses

CHUNK = "c"
FINAL = "f"

# defines piece(id, n, kind, body) for the scripts in scripts.py
PIECE_LUA = """
local function piece(id, n, kind, body)
  return id .. '|' .. n .. '|' .. kind .. '|' .. body
end
"""


@dataclasses.dataclass(frozen=True)
class Piece:
    message_id: str
    n: int
    kind: str  # CHUNK or FINAL
    body: str  # the chunk's text, or the final event's JSON


def decode(data: str) -> Piece:
    """A published piece; ValueError when it is not one."""
    message_id, n, kind, body = data.split("|", 3)
    if kind not in (CHUNK, FINAL):
        raise ValueError(f"unknown piece kind {kind!r}")
    return Piece(message_id, int(n), kind, body)

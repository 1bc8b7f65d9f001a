"""Live answers: their state in Redis, and the PostgreSQL writes that outlive it.

While an answer streams, Redis holds its text so far (a string grown with
APPEND) and a small hash: `state`, `next` (the callback `seq` expected next),
`n` (how many pieces were published), `ck` (last checkpoint), `owner` (the
process driving a local backend) and, once finished, `final`. Every change
is one Lua script, so checking `seq`, appending and publishing the piece on
the chat's channel cost one Redis round trip, and a piece's number `n` is
always in step with the text: a reader that takes a snapshot at `n` needs
exactly the pieces numbered above it.

Published pieces are `<message id>|<n>|c|<text>` for a chunk and
`<message id>|<n>|f|<final event JSON>` for the end, whose JSON holds
`status`, `sources`, `error` and the final `content`.

PostgreSQL sees a partial answer at most once per STREAM_CHECKPOINT_SECONDS
and the final one once; the Redis state then lingers for FINAL_GRACE_SECONDS
so late readers and late callbacks still find it.
"""

from __future__ import annotations

import dataclasses
import json
import time
import uuid
from typing import Iterable

import psycopg2.extras
from aiohttp import web

from . import appkeys
from .messages import MESSAGE_COLUMNS

FINAL_GRACE_SECONDS = 60
# how far ahead of the expected `seq` an early callback event may be parked
MAX_SEQ_AHEAD = 1000
FINISHED = ("complete", "failed", "cancelled")

_OPEN = """
local state = redis.call('HGET', KEYS[1], 'state')
if state then
  local s = redis.call('HMGET', KEYS[1], 'n', 'owner', 'sent')
  return {state, s[1] or '0', s[2] or '', s[3] or ''}
end
redis.call('HSET', KEYS[1], 'state', 'streaming', 'next', 0, 'n', 0, 'ck', ARGV[2], 'owner', ARGV[3])
redis.call('ZADD', KEYS[2], ARGV[2], ARGV[1])
return {'new', '0', ARGV[3], ''}
"""

# KEYS: state hash, content, pending hash, chat channel, active set
# ARGV: message id, now, checkpoint interval, max seq ahead, grace, create, initial content, max bytes,
#       then per event: kind (c = chunk, f = final, F = final with authoritative content), seq or '', text, final JSON
_APPLY = """
local id, now = ARGV[1], tonumber(ARGV[2])
local st = redis.call('HMGET', KEYS[1], 'state', 'next', 'n', 'ck')
if not st[1] then
  if ARGV[6] ~= '1' then return {'missing'} end
  redis.call('SET', KEYS[2], ARGV[7])
  st = {'streaming', '0', '0', ARGV[2]}
elseif st[1] ~= 'streaming' then
  return {'finished'}
end
local nxt, n = tonumber(st[2]), tonumber(st[3])
for i = 9, #ARGV, 4 do
  if ARGV[i + 1] ~= '' and tonumber(ARGV[i + 1]) - nxt > tonumber(ARGV[4]) then return {'too_far'} end
end
local buf, final = {}, nil
local function take(kind, text, fin)
  if kind == 'c' then buf[#buf + 1] = text else final = {kind, text, fin} end
end
for i = 9, #ARGV, 4 do
  if final then break end
  local kind, seq, text, fin = ARGV[i], ARGV[i + 1], ARGV[i + 2], ARGV[i + 3]
  if seq == '' then
    take(kind, text, fin)
  else
    seq = tonumber(seq)
    if seq > nxt then
      redis.call('HSETNX', KEYS[3], seq, cjson.encode({kind, text, fin}))
    elseif seq == nxt then
      take(kind, text, fin)
      nxt = nxt + 1
      while not final do
        local early = redis.call('HGET', KEYS[3], nxt)
        if not early then break end
        redis.call('HDEL', KEYS[3], nxt)
        local e = cjson.decode(early)
        take(e[1], e[2], e[3])
        nxt = nxt + 1
      end
    end
  end
end
local piece = table.concat(buf)
local limit = tonumber(ARGV[8])
if redis.call('STRLEN', KEYS[2]) + #piece > limit or (final and final[1] == 'F' and #final[2] > limit) then
  return {'too_long'}
end
if #piece > 0 then
  redis.call('APPEND', KEYS[2], piece)
  n = n + 1
  redis.call('PUBLISH', KEYS[4], id .. '|' .. n .. '|c|' .. piece)
end
if final then
  if final[1] == 'F' then redis.call('SET', KEYS[2], final[2]) end
  local body = redis.call('GET', KEYS[2]) or ''
  local fin = final[3]
  n = n + 1
  redis.call('HSET', KEYS[1], 'state', cjson.decode(fin)['status'], 'next', nxt, 'n', n, 'final', fin)
  redis.call('PUBLISH', KEYS[4], id .. '|' .. n .. '|f|' .. string.sub(fin, 1, -2) .. ',"content":' .. cjson.encode(body) .. '}')
  redis.call('EXPIRE', KEYS[1], ARGV[5])
  redis.call('EXPIRE', KEYS[2], ARGV[5])
  redis.call('DEL', KEYS[3])
  redis.call('ZREM', KEYS[5], id)
  return {'final', body, fin}
end
redis.call('HSET', KEYS[1], 'state', 'streaming', 'next', nxt, 'n', n)
redis.call('ZADD', KEYS[5], now, id)
if #piece > 0 and now - tonumber(st[4]) >= tonumber(ARGV[3]) then
  redis.call('HSET', KEYS[1], 'ck', now)
  return {'checkpoint', redis.call('GET', KEYS[2])}
end
return {'ok'}
"""

_SNAPSHOT = """
local s = redis.call('HMGET', KEYS[1], 'state', 'n', 'final')
if not s[1] then return false end
return {s[1], s[2], s[3] or '', redis.call('GET', KEYS[2]) or ''}
"""


@dataclasses.dataclass
class Event:
    """One step of an answer: a chunk of text, or its end."""
    kind: str  # "c" chunk, "f" final, "F" final whose text replaces the streamed one
    text: str = ""
    seq: int | None = None
    final: str = ""  # JSON {"status", "sources", "error"} of a final event

    @classmethod
    def chunk(cls, text: str, seq: int | None = None) -> "Event":
        return cls("c", text, seq)

    @classmethod
    def end(cls, status: str, *, sources: Iterable[dict] = (), error: str | None = None,
            content: str | None = None, seq: int | None = None) -> "Event":
        final = json.dumps({"status": status, "sources": list(sources), "error": error},
                           separators=(",", ":"))
        return cls("F" if content is not None else "f", content or "", seq, final)


@dataclasses.dataclass
class Opened:
    state: str  # "new", "streaming" or a finished status
    pieces: int
    owner: str
    sent: bool


@dataclasses.dataclass
class Snapshot:
    content: str
    pieces: int
    final: dict | None  # {"status", "sources", "error"} once finished


class Streams:
    def __init__(self, app: web.Application):
        self.app = app
        self.redis = app[appkeys.REDIS]
        self.keys = app[appkeys.KEYS]
        self.settings = app[appkeys.SETTINGS]
        self._open = self.redis.register_script(_OPEN)
        self._apply = self.redis.register_script(_APPLY)
        self._snapshot = self.redis.register_script(_SNAPSHOT)

    def _stream_keys(self, message_id: object, chat_id: object) -> list[str]:
        k = self.keys
        return [k.stream(message_id), k.stream_content(message_id), k.stream_pending(message_id),
                k.chat_channel(chat_id), k.streams_active]

    async def open(self, message_id: uuid.UUID, owner: str = "") -> Opened:
        """Start the live state of an answer, or tell what state it already has."""
        state, pieces, current_owner, sent = await self._open(
            keys=[self.keys.stream(message_id), self.keys.streams_active],
            args=[str(message_id), time.time(), owner])
        return Opened(state, int(pieces), current_owner, bool(sent))

    async def claim(self, message_id: uuid.UUID, owner: str) -> None:
        await self.redis.hset(self.keys.stream(message_id), "owner", owner)

    async def mark_sent(self, message_id: uuid.UUID) -> None:
        """The AI service accepted the request: a re-run of the job must not send it again."""
        await self.redis.hset(self.keys.stream(message_id), "sent", "1")

    async def apply(self, message_id: uuid.UUID, chat_id: uuid.UUID, events: list[Event],
                    *, create_with: str | None = None) -> tuple[str, dict | None]:
        """Apply events in one script; returns the outcome ("ok", "missing",
        "finished", "too_far" or "final") and, for "final", the stored message.
        `create_with` starts a state holding that text when none exists, so an
        answer that never streamed can still be finished for its watchers."""
        args: list = [str(message_id), time.time(), self.settings.STREAM_CHECKPOINT_SECONDS, MAX_SEQ_AHEAD,
                      FINAL_GRACE_SECONDS, "1" if create_with is not None else "", create_with or "",
                      self.settings.MAX_ANSWER_BYTES]
        for event in events:
            args += [event.kind, "" if event.seq is None else event.seq, event.text, event.final]
        result = await self._apply(keys=self._stream_keys(message_id, chat_id), args=args)
        outcome = result[0]
        if outcome == "too_long":
            # a runaway backend must not fill Redis and PostgreSQL: the answer
            # fails with what it had, and the sender is told to stop
            await self.finish(message_id, chat_id, "failed", create_with=None,
                              error=f"the answer exceeded {self.settings.MAX_ANSWER_BYTES} bytes")
            return "finished", None
        if outcome == "checkpoint":
            await self._checkpoint(message_id, result[1])
            return "ok", None
        if outcome == "final":
            return "final", await self._store_final(message_id, result[1], json.loads(result[2]))
        return outcome, None

    async def append(self, message_id: uuid.UUID, chat_id: uuid.UUID, text: str) -> bool:
        """Add text from a local backend; False once the answer was finished elsewhere."""
        outcome, _ = await self.apply(message_id, chat_id, [Event.chunk(text)])
        return outcome == "ok"

    async def finish(self, message_id: uuid.UUID, chat_id: uuid.UUID, status: str, *,
                     sources: Iterable[dict] = (), error: str | None = None,
                     create_with: str | None = "") -> dict | None:
        """End an answer (also one that never started streaming); the stored
        message, or None when it had already ended."""
        outcome, row = await self.apply(message_id, chat_id, [Event.end(status, sources=sources, error=error)],
                                        create_with=create_with)
        return row if outcome == "final" else None

    async def snapshot(self, message_id: uuid.UUID) -> Snapshot | None:
        found = await self._snapshot(keys=[self.keys.stream(message_id), self.keys.stream_content(message_id)])
        if not found:
            return None
        state, pieces, final, content = found
        return Snapshot(content, int(pieces), json.loads(final) if state in FINISHED else None)

    async def _checkpoint(self, message_id: uuid.UUID, content: str) -> None:
        # the length guard keeps a slower writer from putting back an older text
        await self.app[appkeys.DB].execute(
            """
            UPDATE messages SET content = %s, status = 'streaming'
            WHERE id = %s AND status IN ('pending', 'streaming') AND length(content) <= length(%s)
            """,
            (content, message_id, content),
        )

    async def _store_final(self, message_id: uuid.UUID, content: str, final: dict) -> dict | None:
        return await self.app[appkeys.DB].fetchrow(
            f"""
            UPDATE messages
            SET status = %s, content = %s, sources = %s, error = %s, completed_at = clock_timestamp()
            WHERE id = %s AND status IN ('pending', 'streaming')
            RETURNING {MESSAGE_COLUMNS}
            """,
            (final["status"], content, psycopg2.extras.Json(final["sources"]), final["error"], message_id),
        )

    async def store_final_from_redis(self, message_id: uuid.UUID) -> None:
        """Write an answer that finished in Redis but not yet in PostgreSQL (a crash in between)."""
        snap = await self.snapshot(message_id)
        if snap is not None and snap.final is not None:
            await self._store_final(message_id, snap.content, snap.final)

    async def live_content(self, app: web.Application, rows: list[dict]) -> list[dict]:
        """Rows with the text of answers still streaming brought up to date."""
        unfinished = [r for r in rows if r["status"] in ("pending", "streaming")]
        if not unfinished:
            return rows
        snaps = [await self.snapshot(r["id"]) for r in unfinished]
        for row, snap in zip(unfinished, snaps):
            if snap is not None and snap.final is None:
                row["content"], row["status"] = snap.content, "streaming"
        return rows


STREAMS = web.AppKey("streams", Streams)


async def streams_ctx(app: web.Application):
    app[STREAMS] = Streams(app)
    yield

"""The Lua scripts behind a live answer: each change is one script, so
checking `seq`, appending and publishing cost one Redis round trip. Every key
reaches a script through KEYS (as Redis Cluster requires). They know the text
kinds and the end; any other kind is published as it came (wire.py)."""

from __future__ import annotations

from chatserver.live.wire import PIECE_LUA

# defines steps_json(steps hash, order list): the steps in call order as one JSON array
STEPS_LUA = """
local function steps_json(hash, order)
  local ids = redis.call('LRANGE', order, 0, -1)
  if #ids == 0 then return '[]' end
  return '[' .. table.concat(redis.call('HMGET', hash, unpack(ids)), ',') .. ']'
end
"""

# KEYS: state hash, active set. ARGV: message id, now, owner
OPEN = """
local state = redis.call('HGET', KEYS[1], 'state')
if state then
  local s = redis.call('HMGET', KEYS[1], 'n', 'owner', 'sent')
  return {state, s[1] or '0', s[2] or '', s[3] or ''}
end
redis.call('HSET', KEYS[1], 'state', 'streaming', 'next', 0, 'n', 0, 'ck', ARGV[2], 'owner', ARGV[3])
redis.call('ZADD', KEYS[2], ARGV[2], ARGV[1])
return {'new', '0', ARGV[3], ''}
"""

# defines emit(piece): every piece a change makes goes into `out`, which the script returns first, for
# the calling process to hand to its own followers; it is published on the chat's channel (KEYS[4])
# unless the watchers set (KEYS[9]) holds the caller (ARGV[10]) alone: no other process follows then
WATCH_LUA = """
local out, loud = {}, nil
local function emit(data)
  out[#out + 1] = data
  if loud == nil then
    loud = not (redis.call('SCARD', KEYS[9]) == 1 and redis.call('SISMEMBER', KEYS[9], ARGV[10]) == 1)
  end
  if loud then redis.call('PUBLISH', KEYS[4], data) end
end
"""

# The active set's score of an answer is its last activity, which the sweep compares with
# STREAM_TIMEOUT_SECONDS: written at most once a second (the hash's `za`), not per piece, as
# rewriting a score costs Redis more than the rest of an in-order chunk.
ACTIVITY_SECONDS = 1
ACTIVITY_LUA = f"""
local ACTIVITY_SECONDS = {ACTIVITY_SECONDS}
"""

# KEYS: state hash, content, pending hash, chat channel, active set, reasoning, steps hash, step order,
#       watchers set
# ARGV: message id, now, checkpoint interval, max seq ahead, grace, create, initial content, max bytes,
#       deadline (Unix seconds, or ''), the calling process's instance id,
#       then per event: kind (c = chunk, r = reasoning, t = tool step, f = final, F = final with
#       authoritative content, any other a passing piece such as s = status), seq or '', text (a
#       passing piece's or a step's body), final JSON
# Past its deadline (by Redis's clock) the script changes nothing and says 'late': a call its
# caller gave up on (and answered 503) may still reach a stalled Redis, and must not apply then.
# The reply is the pieces made (emit), then the outcome and what it carries.
APPLY = PIECE_LUA + STEPS_LUA + WATCH_LUA + ACTIVITY_LUA + """
local function apply()
if ARGV[9] ~= '' then
  local t = redis.call('TIME')
  if tonumber(t[1]) + tonumber(t[2]) / 1000000 > tonumber(ARGV[9]) then return {'late'} end
end
local id, now = ARGV[1], tonumber(ARGV[2])
local st = redis.call('HMGET', KEYS[1], 'state', 'next', 'n', 'ck', 'ckc', 'ckr', 'za')
if not st[1] then
  if ARGV[6] ~= '1' then return {'missing'} end
  redis.call('SET', KEYS[2], ARGV[7])
  st = {'streaming', '0', '0', ARGV[2]}
elseif st[1] ~= 'streaming' then
  return {'finished'}
end
local nxt, n = tonumber(st[2]), tonumber(st[3])
for i = 11, #ARGV, 4 do
  if ARGV[i + 1] ~= '' and tonumber(ARGV[i + 1]) - nxt > tonumber(ARGV[4]) then return {'too_far'} end
end
local buf, rbuf, passing, final = {}, {}, {}, nil
local function take(kind, text, fin)
  if kind == 'c' then buf[#buf + 1] = text
  elseif kind == 'r' then rbuf[#rbuf + 1] = text
  elseif kind == 't' then passing[#passing + 1] = {kind, text}
  elseif kind == 'f' or kind == 'F' then final = {kind, text, fin}
  else passing[#passing + 1] = {kind, text} end
end
for i = 11, #ARGV, 4 do
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
local joined, thought = table.concat(buf), table.concat(rbuf)
local limit = tonumber(ARGV[8])
if redis.call('STRLEN', KEYS[2]) + #joined > limit or (final and final[1] == 'F' and #final[2] > limit)
   or redis.call('STRLEN', KEYS[6]) + #thought > limit then
  return {'too_long'}
end
for _, p in ipairs(passing) do
  if p[1] == 't' then
    local step_id = cjson.decode(p[2])['id']
    if redis.call('HSET', KEYS[7], step_id, p[2]) == 1 then redis.call('RPUSH', KEYS[8], step_id) end
  end
  n = n + 1
  emit(piece(id, n, p[1], p[2]))
end
if #thought > 0 then
  redis.call('APPEND', KEYS[6], thought)
  n = n + 1
  emit(piece(id, n, 'r', thought))
end
if #joined > 0 then
  redis.call('APPEND', KEYS[2], joined)
  n = n + 1
  emit(piece(id, n, 'c', joined))
end
if final then
  if final[1] == 'F' then redis.call('SET', KEYS[2], final[2]) end
  local body = redis.call('GET', KEYS[2]) or ''
  local fin = final[3]
  n = n + 1
  redis.call('HSET', KEYS[1], 'state', cjson.decode(fin)['status'], 'next', nxt, 'n', n, 'final', fin)
  local ending = string.sub(fin, 1, -2) .. ',"content":' .. cjson.encode(body) .. '}'
  emit(piece(id, n, 'f', ending))
  redis.call('EXPIRE', KEYS[1], ARGV[5])
  redis.call('EXPIRE', KEYS[2], ARGV[5])
  redis.call('EXPIRE', KEYS[6], ARGV[5])
  redis.call('EXPIRE', KEYS[7], ARGV[5])
  redis.call('EXPIRE', KEYS[8], ARGV[5])
  redis.call('EXPIRE', KEYS[9], ARGV[5])
  redis.call('DEL', KEYS[3])
  redis.call('ZREM', KEYS[5], id)
  return {'final', body, fin, redis.call('GET', KEYS[6]) or '', steps_json(KEYS[7], KEYS[8])}
end
redis.call('HSET', KEYS[1], 'state', 'streaming', 'next', nxt, 'n', n)
if now - tonumber(st[7] or '0') >= ACTIVITY_SECONDS then
  redis.call('HSET', KEYS[1], 'za', now)
  redis.call('ZADD', KEYS[5], now, id)
end
if #joined + #thought > 0 and now - tonumber(st[4]) >= tonumber(ARGV[3]) then
  -- only what is new since the last checkpoint: sending the whole text each time made an
  -- answer's checkpoints cost time and bytes growing with the square of its length
  local c0, r0 = tonumber(st[5] or '0'), tonumber(st[6] or '0')
  local c1, r1 = redis.call('STRLEN', KEYS[2]), redis.call('STRLEN', KEYS[6])
  redis.call('HSET', KEYS[1], 'ck', now, 'ckc', c1, 'ckr', r1)
  return {'checkpoint', c0, redis.call('GETRANGE', KEYS[2], c0, c1 - 1), r0,
          redis.call('GETRANGE', KEYS[6], r0, r1 - 1)}
end
return {'ok'}
end
local reply = apply()
table.insert(reply, 1, out)
return reply
"""

# The one piece a local generation adds most often, in fewer keys and arguments than APPLY
# takes and with its steps alone: text or reasoning, in order, no `seq`, no deadline.
# KEYS: state hash, content, chat channel, active set, reasoning, watchers set
# ARGV: message id, now, checkpoint interval, max bytes, the calling process's instance id,
#       kind (c or r), text (not empty)
# The reply is APPLY's: the piece made, then 'ok', 'missing', 'finished', 'too_long' or a
# checkpoint as APPLY's.
APPEND = ACTIVITY_LUA + """
local st = redis.call('HMGET', KEYS[1], 'state', 'n', 'ck', 'ckc', 'ckr', 'za')
if not st[1] then return {{}, 'missing'} end
if st[1] ~= 'streaming' then return {{}, 'finished'} end
local id, now, kind, text = ARGV[1], tonumber(ARGV[2]), ARGV[6], ARGV[7]
local into = KEYS[2]
if kind == 'r' then into = KEYS[5] end
if redis.call('STRLEN', into) + #text > tonumber(ARGV[4]) then return {{}, 'too_long'} end
redis.call('APPEND', into, text)
local n = tonumber(st[2]) + 1
local data = id .. '|' .. n .. '|' .. kind .. '|' .. text
if not (redis.call('SCARD', KEYS[6]) == 1 and redis.call('SISMEMBER', KEYS[6], ARGV[5]) == 1) then
  redis.call('PUBLISH', KEYS[3], data)
end
if now - tonumber(st[6] or '0') >= ACTIVITY_SECONDS then
  redis.call('HSET', KEYS[1], 'za', now)
  redis.call('ZADD', KEYS[4], now, id)
end
if now - tonumber(st[3]) >= tonumber(ARGV[3]) then
  local c0, r0 = tonumber(st[4] or '0'), tonumber(st[5] or '0')
  local c1, r1 = redis.call('STRLEN', KEYS[2]), redis.call('STRLEN', KEYS[5])
  redis.call('HSET', KEYS[1], 'n', n, 'ck', now, 'ckc', c1, 'ckr', r1)
  return {{data}, 'checkpoint', c0, redis.call('GETRANGE', KEYS[2], c0, c1 - 1), r0,
          redis.call('GETRANGE', KEYS[5], r0, r1 - 1)}
end
redis.call('HSET', KEYS[1], 'n', n)
return {{data}, 'ok'}
"""

# KEYS: state hash, content, reasoning. ARGV: content offset, reasoning offset (UTF-8 bytes)
# The text of a streaming answer from the offsets on; false once it ended (a final
# event may have replaced the text, so an offset into it means nothing).
UNSAVED = """
if redis.call('HGET', KEYS[1], 'state') ~= 'streaming' then return false end
return {redis.call('GETRANGE', KEYS[2], ARGV[1], -1), redis.call('GETRANGE', KEYS[3], ARGV[2], -1)}
"""

# KEYS: state hash, content, reasoning, steps hash, step order, watchers set
# ARGV: the instance id of a process that follows the answer from now on, or ''
# Whatever changes after this script is published to that process (WATCH_LUA), since it joined the
# watchers here, and whatever changed before is in the reply. The set lasts WATCHERS_SECONDS at
# most: once it is gone every change is published again, never none.
WATCHERS_SECONDS = 3600
SNAPSHOT = STEPS_LUA + """
local s = redis.call('HMGET', KEYS[1], 'state', 'n', 'final')
if ARGV[1] ~= '' and (not s[1] or s[1] == 'streaming') then
  redis.call('SADD', KEYS[6], ARGV[1])
  redis.call('EXPIRE', KEYS[6], """ + str(WATCHERS_SECONDS) + """)
end
if not s[1] then return false end
return {s[1], s[2], s[3] or '', redis.call('GET', KEYS[2]) or '', redis.call('GET', KEYS[3]) or '',
        steps_json(KEYS[4], KEYS[5])}
"""

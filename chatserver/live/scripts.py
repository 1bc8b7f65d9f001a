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

# KEYS: state hash, content, pending hash, chat channel, active set, reasoning, steps hash, step order
# ARGV: message id, now, checkpoint interval, max seq ahead, grace, create, initial content, max bytes,
#       deadline (Unix seconds, or ''),
#       then per event: kind (c = chunk, r = reasoning, t = tool step, f = final, F = final with
#       authoritative content, any other a passing piece such as s = status), seq or '', text (a
#       passing piece's or a step's body), final JSON
# Past its deadline (by Redis's clock) the script changes nothing and says 'late': a call its
# caller gave up on (and answered 503) may still reach a stalled Redis, and must not apply then.
APPLY = PIECE_LUA + STEPS_LUA + """
if ARGV[9] ~= '' then
  local t = redis.call('TIME')
  if tonumber(t[1]) + tonumber(t[2]) / 1000000 > tonumber(ARGV[9]) then return {'late'} end
end
local id, now = ARGV[1], tonumber(ARGV[2])
local st = redis.call('HMGET', KEYS[1], 'state', 'next', 'n', 'ck', 'ckc', 'ckr')
if not st[1] then
  if ARGV[6] ~= '1' then return {'missing'} end
  redis.call('SET', KEYS[2], ARGV[7])
  st = {'streaming', '0', '0', ARGV[2]}
elseif st[1] ~= 'streaming' then
  return {'finished'}
end
local nxt, n = tonumber(st[2]), tonumber(st[3])
for i = 10, #ARGV, 4 do
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
for i = 10, #ARGV, 4 do
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
  redis.call('PUBLISH', KEYS[4], piece(id, n, p[1], p[2]))
end
if #thought > 0 then
  redis.call('APPEND', KEYS[6], thought)
  n = n + 1
  redis.call('PUBLISH', KEYS[4], piece(id, n, 'r', thought))
end
if #joined > 0 then
  redis.call('APPEND', KEYS[2], joined)
  n = n + 1
  redis.call('PUBLISH', KEYS[4], piece(id, n, 'c', joined))
end
if final then
  if final[1] == 'F' then redis.call('SET', KEYS[2], final[2]) end
  local body = redis.call('GET', KEYS[2]) or ''
  local fin = final[3]
  n = n + 1
  redis.call('HSET', KEYS[1], 'state', cjson.decode(fin)['status'], 'next', nxt, 'n', n, 'final', fin)
  local ending = string.sub(fin, 1, -2) .. ',"content":' .. cjson.encode(body) .. '}'
  redis.call('PUBLISH', KEYS[4], piece(id, n, 'f', ending))
  redis.call('EXPIRE', KEYS[1], ARGV[5])
  redis.call('EXPIRE', KEYS[2], ARGV[5])
  redis.call('EXPIRE', KEYS[6], ARGV[5])
  redis.call('EXPIRE', KEYS[7], ARGV[5])
  redis.call('EXPIRE', KEYS[8], ARGV[5])
  redis.call('DEL', KEYS[3])
  redis.call('ZREM', KEYS[5], id)
  return {'final', body, fin, redis.call('GET', KEYS[6]) or '', steps_json(KEYS[7], KEYS[8])}
end
redis.call('HSET', KEYS[1], 'state', 'streaming', 'next', nxt, 'n', n)
redis.call('ZADD', KEYS[5], now, id)
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
"""

# KEYS: state hash, content, reasoning. ARGV: content offset, reasoning offset (UTF-8 bytes)
# The text of a streaming answer from the offsets on; false once it ended (a final
# event may have replaced the text, so an offset into it means nothing).
UNSAVED = """
if redis.call('HGET', KEYS[1], 'state') ~= 'streaming' then return false end
return {redis.call('GETRANGE', KEYS[2], ARGV[1], -1), redis.call('GETRANGE', KEYS[3], ARGV[2], -1)}
"""

# KEYS: state hash, content, reasoning, steps hash, step order
SNAPSHOT = STEPS_LUA + """
local s = redis.call('HMGET', KEYS[1], 'state', 'n', 'final')
if not s[1] then return false end
return {s[1], s[2], s[3] or '', redis.call('GET', KEYS[2]) or '', redis.call('GET', KEYS[3]) or '',
        steps_json(KEYS[4], KEYS[5])}
"""

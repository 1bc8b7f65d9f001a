"""The queue's Lua scripts: moves between its lists that must be atomic."""

# Takes up to ARGV[1] jobs waiting now, in one round trip (as BLMOVE takes
# one): KEYS[1] is the queue, KEYS[2] this process's active list.
TAKE_WAITING = """
local taken = {}
for i = 1, tonumber(ARGV[1]) do
  local raw = redis.call('LMOVE', KEYS[1], KEYS[2], 'RIGHT', 'LEFT')
  if not raw then break end
  taken[i] = raw
end
return taken
"""

# Moves due retries back to their queues; atomic so a job is never in both.
# KEYS[1] is the delayed set, KEYS[i] (i >= 2) the queue named ARGV[i].
MOVE_DUE = """
local target = {}
for i = 2, #ARGV do target[ARGV[i]] = KEYS[i] end
local due = redis.call('ZRANGEBYSCORE', KEYS[1], '-inf', ARGV[1], 'LIMIT', 0, 100)
local moved = 0
for _, raw in ipairs(due) do
  local key = target[cjson.decode(raw).queue]
  if key then
    redis.call('LPUSH', key, raw)
    redis.call('ZREM', KEYS[1], raw)
    moved = moved + 1
  end
end
return moved
"""

# A dead process's active jobs go back to their queue, each counted as an
# attempt (its run was interrupted). KEYS[1] is the active list, KEYS[2] the queue.
REQUEUE_INTERRUPTED = """
local moved = 0
while true do
  local raw = redis.call('RPOP', KEYS[1])
  if not raw then break end
  local ok, job = pcall(cjson.decode, raw)
  if ok and type(job) == 'table' then
    job.attempts = (tonumber(job.attempts) or 0) + 1
    job.interrupted = (tonumber(job.interrupted) or 0) + 1
    raw = cjson.encode(job)
  end
  redis.call('RPUSH', KEYS[2], raw)
  moved = moved + 1
end
return moved
"""

# A job leaves this process's active list for where it goes next (the delayed
# set, the dead letters) only if it is still there: a move tried again after
# its reply was lost (Redis unreachable) never puts the job in twice.
# KEYS[1] is the active list, KEYS[2] the delayed set; ARGV[1] the job as
# taken, ARGV[2] as retried, ARGV[3] its due time.
RETRY_LATER = """
if redis.call('LREM', KEYS[1], 1, ARGV[1]) == 0 then return 0 end
redis.call('ZADD', KEYS[2], ARGV[3], ARGV[2])
return 1
"""

# KEYS[1] is the active list, KEYS[2] the dead letters; ARGV[1] the job as
# taken, ARGV[2] its dead-letter entry.
BURY = """
if redis.call('LREM', KEYS[1], 1, ARGV[1]) == 0 then return 0 end
redis.call('LPUSH', KEYS[2], ARGV[2])
return 1
"""

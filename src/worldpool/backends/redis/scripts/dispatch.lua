-- dispatch: the whole of one task's dispatch in one step: compare-and-set the routed
-- record, take a slot on the worker, append the envelope to its stream, take the task out
-- of the pending queue and append the TASK_DISPATCHED event; or change nothing. Called
-- once per task, pipelined for a dispatch pass (one round trip for the batch).
--
-- KEYS[1] t:{task}        hash  data, version, attempt, worker, terminal
-- KEYS[2] deadlines       sorted set  task id -> next timeout deadline
-- KEYS[3] w:{worker}      hash  status, max
-- KEYS[4] slots:{worker}  set   task ids holding a slot
-- KEYS[5] q:{worker}      stream
-- KEYS[6] pending         sorted set
-- KEYS[7] events          stream (capped)
-- ARGV[1] expected version, ARGV[2] task id, ARGV[3] record JSON (without its version),
-- ARGV[4] timeout deadline ("" = none), ARGV[5] attempt, ARGV[6] worker id,
-- ARGV[7] envelope bytes, ARGV[8] event JSON, ARGV[9] event log cap (exact MAXLEN)
-- Returns {1, new version, delivery id, event id}, {0, 'conflict'} when the compare
-- failed, or {-1, reason} when the worker cannot take the task.
local cur = tonumber(redis.call('HGET', KEYS[1], 'version') or '0')
if tonumber(ARGV[1]) ~= cur then
  return {0, 'conflict'}
end
local w = redis.call('HMGET', KEYS[3], 'status', 'max')
if not w[1] then
  return {-1, 'no such worker is registered'}
end
if w[1] ~= 'online' then
  return {-1, 'the worker is ' .. w[1]}
end
if redis.call('SISMEMBER', KEYS[4], ARGV[2]) == 0 then
  local max = tonumber(w[2])
  if redis.call('SCARD', KEYS[4]) >= max then
    return {-1, 'all ' .. max .. ' slots are taken'}
  end
  redis.call('SADD', KEYS[4], ARGV[2])
end
local new = cur + 1
redis.call('HSET', KEYS[1], 'data', ARGV[3], 'version', new, 'attempt', ARGV[5],
  'worker', ARGV[6], 'terminal', '0')
if ARGV[4] == '' then
  redis.call('ZREM', KEYS[2], ARGV[2])
else
  redis.call('ZADD', KEYS[2], ARGV[4], ARGV[2])
end
local id = redis.call('XADD', KEYS[5], '*', 'd', ARGV[7], 't', ARGV[2])
redis.call('ZREM', KEYS[6], ARGV[2])
local ev = redis.call('XADD', KEYS[7], 'MAXLEN', ARGV[9], '*', 'e', ARGV[8])
return {1, new, id, ev}

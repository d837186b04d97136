-- add_pending: queue a task for routing, ordered by priority then first-queued. Idempotent:
-- a task already queued keeps its place.
--
-- KEYS[1] pending      zset  task id -> (100 - priority) * 1e12 + seq (lowest first)
-- KEYS[2] pending:seq  string counter
-- ARGV[1] task id, ARGV[2] priority (-100..100)
-- Returns 1 if added, 0 if it was already queued.
if redis.call('ZSCORE', KEYS[1], ARGV[1]) then
  return 0
end
local seq = redis.call('INCR', KEYS[2])
local score = (100 - tonumber(ARGV[2])) * 1000000000000 + seq
redis.call('ZADD', KEYS[1], string.format('%d', score), ARGV[1])
return 1

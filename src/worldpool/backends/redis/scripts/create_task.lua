-- create_task: a submit in one step: store a new task record (only if the id is unused),
-- index it, queue it for routing and append its TASK_SUBMITTED event.
--
-- KEYS[1] t:{task}       hash  data, version, attempt, worker, terminal
-- KEYS[2] order          string counter giving first-put order
-- KEYS[3] active         set   non-terminal task ids
-- KEYS[4] deadlines      sorted set  task id -> next timeout deadline
-- KEYS[5] pending        sorted set  (see add_pending.lua)
-- KEYS[6] pending:seq    string counter
-- KEYS[7] events         stream (capped)
-- KEYS[8..] index sorted sets (tasks, and wft:{workflow} for workflow steps)
-- ARGV[1] task id, ARGV[2] record JSON (without its version), ARGV[3] timeout deadline
-- ("" = none), ARGV[4] priority, ARGV[5] event JSON, ARGV[6] event log cap (exact MAXLEN),
-- ARGV[7..] the fencing field/value pairs (attempt, worker, terminal)
-- Returns 1 if created, 0 if a record with this id already exists (nothing changed).
if redis.call('EXISTS', KEYS[1]) == 1 then
  return 0
end
redis.call('HSET', KEYS[1], 'data', ARGV[2], 'version', 1)
for i = 7, #ARGV, 2 do
  redis.call('HSET', KEYS[1], ARGV[i], ARGV[i + 1])
end
redis.call('SADD', KEYS[3], ARGV[1])
if ARGV[3] ~= '' then
  redis.call('ZADD', KEYS[4], ARGV[3], ARGV[1])
end
local order = redis.call('INCR', KEYS[2])
for i = 8, #KEYS do
  redis.call('ZADD', KEYS[i], 'NX', order, ARGV[1])
end
if not redis.call('ZSCORE', KEYS[5], ARGV[1]) then
  local seq = redis.call('INCR', KEYS[6])
  local score = (100 - tonumber(ARGV[4])) * 1000000000000 + seq
  redis.call('ZADD', KEYS[5], string.format('%d', score), ARGV[1])
end
redis.call('XADD', KEYS[7], 'MAXLEN', ARGV[6], '*', 'e', ARGV[5])
return 1

-- put_record: store a task or workflow record with an optional compare-and-set on its
-- version, index it on first put, keep the set of active tasks and the timeout index
-- current, and append the events of the transition if the write happens (one round trip
-- for the whole write).
--
-- KEYS[1]   t:{task} or wf:{workflow}  hash  data, version
-- KEYS[2]   order                      string counter giving first-put order
-- KEYS[3]   active                     set   non-terminal task ids
-- KEYS[4]   deadlines                  sorted set  task id -> next timeout deadline
-- KEYS[5]   events                     stream (capped)
-- KEYS[6]   reply:{client}             stream: the record is pushed there (fields t id,
--                                      d record, v version) by the write
--                                      that ends the task (KEYS[5] again: no push)
-- KEYS[7]   f:{task}                   hash  the fencing copy (attempt, worker, terminal):
--                                      the extra pairs go there (a workflow: KEYS[1]
--                                      again, and no pairs)
-- KEYS[8..] index sorted sets (tasks / workflows, and wft:{workflow} for workflow steps)
-- ARGV[1] expected version ("" = no compare; a missing record has version 0)
-- ARGV[2] record id (the index member), ARGV[3] record JSON (without its version),
-- ARGV[4] "add" / "rem": put the id in / take it out of KEYS[3] ("" for workflows),
-- ARGV[5] the task's timeout deadline ("" = none: take it out of KEYS[4]; "-" = workflow),
-- ARGV[6] event log cap (exact MAXLEN), ARGV[7] n = number of events,
-- ARGV[8 .. 7+n] event JSONs, ARGV[8+n ..] the fencing field/value pairs (tasks)
-- Returns the new version, or -1 if the compare failed (then nothing is written).
--@include versions
--@include tasks
local cur = stored_version(KEYS[1])
if not version_matches(cur, ARGV[1]) then
  return -1
end
local new = cur + 1
local n = tonumber(ARGV[7])
local had_ended = redis.call('HGET', KEYS[7], 'terminal') == '1'
redis.call('HSET', KEYS[1], 'data', ARGV[3], 'version', new)
if #ARGV >= 8 + n then
  redis.call('HSET', KEYS[7], unpack(ARGV, 8 + n, #ARGV))
end
if ARGV[4] == 'add' then
  redis.call('SADD', KEYS[3], ARGV[2])
elseif ARGV[4] == 'rem' then
  redis.call('SREM', KEYS[3], ARGV[2])
end
if ARGV[5] ~= '-' then
  index_deadline(KEYS[4], ARGV[2], ARGV[5])
end
if cur == 0 then
  local order = redis.call('INCR', KEYS[2])
  for i = 8, #KEYS do
    redis.call('ZADD', KEYS[i], 'NX', order, ARGV[2])
  end
end
for i = 8, 7 + n do
  append_event(KEYS[5], ARGV[6], ARGV[i])
end
if KEYS[6] ~= KEYS[5] and not had_ended then  -- the waiting client gets its final record
  redis.call('XADD', KEYS[6], 'MAXLEN', '~', 10000, '*', 't', ARGV[2], 'd', ARGV[3], 'v', new)
  redis.call('EXPIRE', KEYS[6], 3600)
end
return new

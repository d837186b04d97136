-- create_task: a submit in one step: store a new task record (only if the id is unused),
-- index it and append its TASK_SUBMITTED event; then either queue it for routing or, when
-- the orchestrator routed it already (ARGV[7] names a worker) and that worker can take it,
-- dispatch it in the same step (as dispatch.lua does): a submit and its dispatch cost one
-- round trip.
--
-- KEYS[1] t:{task}        hash  data, version
-- KEYS[2] order           string counter giving first-put order
-- KEYS[3] active          set   non-terminal task ids
-- KEYS[4] deadlines       sorted set  task id -> next timeout deadline
-- KEYS[5] pending         sorted set  (see _tasks.lua, queue_pending; the age is `order`)
-- KEYS[6] events          stream (capped)
-- KEYS[7] w:{worker}      hash  status, max         } the routed worker's keys; unused
-- KEYS[8] slots:{worker}  set   task ids with a slot } (any name) without a dispatch
-- KEYS[9] q:{worker}      stream                      }
-- KEYS[10] queued          stream  ids of the tasks queued here (wakes the dispatchers)
-- KEYS[11] f:{task}       hash  attempt, worker, terminal (the fencing copy)
-- KEYS[12..] index sorted sets (tasks, and wft:{workflow} for workflow steps)
-- ARGV[1] task id, ARGV[2] record JSON (without its version), ARGV[3] timeout deadline
-- ("" = none), ARGV[4] priority, ARGV[5] event JSON, ARGV[6] event log cap (exact MAXLEN),
-- ARGV[7] routed worker id ("" = queue it), ARGV[8] routed record JSON, ARGV[9] its
-- timeout deadline, ARGV[10] its attempt, ARGV[11] envelope, ARGV[12] TASK_DISPATCHED
-- event JSON, ARGV[13] "1": dispatch only if the pending queue is empty (else queue it),
-- ARGV[14..] the fencing field/value pairs (attempt, worker, terminal) of the queued record
-- Returns {0} if a record with this id exists (nothing changed), {1, reason} if created
-- and queued (reason "" without a dispatch, else why the worker could not take it), or
-- {2, delivery id} if created and dispatched (the stored version is then 2).
--@include versions
--@include dispatch
if not version_matches(stored_version(KEYS[1]), '0') then
  return {0}
end
redis.call('SADD', KEYS[3], ARGV[1])
local order = redis.call('INCR', KEYS[2])
for i = 12, #KEYS do
  redis.call('ZADD', KEYS[i], 'NX', order, ARGV[1])
end
append_event(KEYS[6], ARGV[6], ARGV[5])

local refused = ''
if ARGV[7] ~= '' and (ARGV[13] ~= '1' or redis.call('ZCARD', KEYS[5]) == 0) then
  refused = slot_refusal(KEYS[7], KEYS[8], ARGV[1])
  if refused == '' then
    local id = dispatch_task(KEYS[1], KEYS[11], KEYS[4], KEYS[8], KEYS[9], KEYS[5], KEYS[6],
      ARGV[1], ARGV[8], 2, ARGV[9], ARGV[10], ARGV[7], ARGV[11], ARGV[12], ARGV[6], true)
    return {2, id}
  end
end

redis.call('HSET', KEYS[1], 'data', ARGV[2], 'version', 1)
redis.call('HSET', KEYS[11], unpack(ARGV, 14, #ARGV))
if ARGV[3] ~= '' then  -- a new task: no deadline to take out
  index_deadline(KEYS[4], ARGV[1], ARGV[3])
end
queue_pending(KEYS[5], ARGV[1], ARGV[4], order)
redis.call('XADD', KEYS[10], 'MAXLEN', '~', 1000, '*', 't', ARGV[1])
return {1, refused}

-- dispatch: the whole of one task's dispatch in one step: compare-and-set the routed
-- record, take a slot on the worker, append the envelope to its stream, take the task out
-- of the pending queue and append the TASK_DISPATCHED event; or change nothing. Called
-- once per task, pipelined for a dispatch pass (one round trip for the batch).
--
-- KEYS[1] t:{task}        hash  data, version
-- KEYS[2] deadlines       sorted set  task id -> next timeout deadline
-- KEYS[3] w:{worker}      hash  status, max
-- KEYS[4] slots:{worker}  set   task ids holding a slot
-- KEYS[5] q:{worker}      stream
-- KEYS[6] pending         sorted set
-- KEYS[7] events          stream (capped)
-- KEYS[8] f:{task}        hash  attempt, worker, terminal (the fencing copy)
-- ARGV[1] expected version, ARGV[2] task id, ARGV[3] record JSON (without its version),
-- ARGV[4] timeout deadline ("" = none), ARGV[5] attempt, ARGV[6] worker id,
-- ARGV[7] envelope bytes, ARGV[8] event JSON, ARGV[9] event log cap (exact MAXLEN)
-- Returns {1, new version, delivery id}, {0, 'conflict'} when no record is stored or the
-- compare failed, or {-1, reason} when the worker cannot take the task.
--@include versions
--@include dispatch
local cur = stored_version(KEYS[1])
if cur == 0 or not version_matches(cur, ARGV[1]) then
  return {0, 'conflict'}
end
local refused = slot_refusal(KEYS[3], KEYS[4], ARGV[2])
if refused ~= '' then
  return {-1, refused}
end
local id = dispatch_task(KEYS[1], KEYS[8], KEYS[2], KEYS[4], KEYS[5], KEYS[6], KEYS[7],
  ARGV[2], ARGV[3], cur + 1, ARGV[4], ARGV[5], ARGV[6], ARGV[7], ARGV[8], ARGV[9], false)
return {1, cur + 1, id}

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
-- Returns {1, new version, delivery id}, {0, 'conflict'} when no record is stored or the
-- compare failed, or {-1, reason} when the worker cannot take the task.
--@include versions
--@include tasks
local cur = stored_version(KEYS[1])
if cur == 0 or not version_matches(cur, ARGV[1]) then
  return {0, 'conflict'}
end
local refused = slot_refusal(KEYS[3], KEYS[4], ARGV[2])
if refused ~= '' then
  return {-1, refused}
end
local id = dispatch_task(
  {task = KEYS[1], deadlines = KEYS[2], slots = KEYS[4], queue = KEYS[5], pending = KEYS[6],
   events = KEYS[7]},
  {task_id = ARGV[2], record = ARGV[3], version = cur + 1, deadline = ARGV[4],
   attempt = ARGV[5], worker_id = ARGV[6], envelope = ARGV[7], event = ARGV[8], cap = ARGV[9]})
return {1, cur + 1, id}

-- complete: accept a worker's report only if it is fenced to the task's current attempt,
-- queue it for the orchestrators and, for a terminal report, give the slot back; and
-- acknowledge the worker's delivery in the same step when asked (its last report).
--
-- KEYS[1] f:{task}         hash  attempt, worker, terminal (the fencing copy)
-- KEYS[2] results          stream
-- KEYS[3] slots:{worker}   set   of the reporting worker
-- KEYS[4] q:{worker}       stream of the reporting worker (only with ARGV[6])
-- ARGV[1] attempt, ARGV[2] worker id, ARGV[3] task id, ARGV[4] "1" if the report is
-- terminal, ARGV[5] result JSON, ARGV[6] delivery id to acknowledge and delete (optional),
-- ARGV[7] the worker group
-- Returns 1 if accepted, 0 if fenced off (stale attempt, other worker, terminal record).
--@include fencing
if ARGV[6] and ARGV[6] ~= '' then
  redis.call('XACK', KEYS[4], ARGV[7], ARGV[6])
  redis.call('XDEL', KEYS[4], ARGV[6])
end
if not owns(KEYS[1], ARGV[2], ARGV[1]) then
  return 0
end
redis.call('XADD', KEYS[2], '*', 'r', ARGV[5])
if ARGV[4] == '1' then
  redis.call('SREM', KEYS[3], ARGV[3])
end
return 1

-- finish_effect: record effect `key` as applied, and say whether the attempt still owned
-- its task. Recorded even for a fenced attempt: the effect happened, so no later attempt
-- may apply it again.
--
-- KEYS[1] f:{task}  hash  attempt, worker, terminal (the fencing copy)
-- KEYS[2] fx:{key}  hash  state, attempt, worker, value
-- ARGV[1] worker id, ARGV[2] attempt, ARGV[3] value (JSON)
-- Returns 1 if the attempt still owned the task, else 0.
--@include fencing
redis.call('HSET', KEYS[2], 'state', 'done', 'attempt', ARGV[2], 'worker', ARGV[1],
  'value', ARGV[3])
if owns(KEYS[1], ARGV[1], ARGV[2]) then
  return 1
end
return 0

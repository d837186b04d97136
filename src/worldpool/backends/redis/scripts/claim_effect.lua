-- claim_effect: may this attempt apply effect `key` now? Checks the fencing token (the
-- task's record names this worker and attempt, not terminal) and the ledger in one step.
--
-- KEYS[1] f:{task}  hash  attempt, worker, terminal (the fencing copy)
-- KEYS[2] fx:{key}  hash  state (claimed | done), attempt, worker, value
-- ARGV[1] worker id, ARGV[2] attempt, ARGV[3] time to live (ms)
-- Returns {'fenced'}, {'done', value} or {'run'} (claimed for this attempt; a claim an
-- older attempt left unfinished passes to this one).
--@include fencing
if not owns(KEYS[1], ARGV[1], ARGV[2]) then
  return {'fenced'}
end
local f = redis.call('HMGET', KEYS[2], 'state', 'value')
if f[1] == 'done' then
  return {'done', f[2]}
end
redis.call('HSET', KEYS[2], 'state', 'claimed', 'attempt', ARGV[2], 'worker', ARGV[1])
redis.call('PEXPIRE', KEYS[2], ARGV[3])
return {'run'}

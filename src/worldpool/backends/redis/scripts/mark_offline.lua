-- mark_offline: set a worker OFFLINE (read-compare-write in one step).
--
-- KEYS[1] w:{worker}  hash  status
-- Returns 1 if the worker was known and not offline before, else 0.
local s = redis.call('HGET', KEYS[1], 'status')
if (not s) or s == 'offline' then
  return 0
end
redis.call('HSET', KEYS[1], 'status', 'offline')
return 1

-- mark_offline: set a worker OFFLINE (read-compare-write in one step).
--
-- KEYS[1] w:{worker}  hash  status
-- KEYS[2] pool:changed zset the pool-changes index (see _pool.lua)
-- ARGV[1] worker id
-- Returns 1 if the worker was known and not offline before, else 0.
--@include pool
local s = redis.call('HGET', KEYS[1], 'status')
if (not s) or s == 'offline' then
  return 0
end
redis.call('HSET', KEYS[1], 'status', 'offline')
pool_changed(KEYS[2], ARGV[1])
return 1

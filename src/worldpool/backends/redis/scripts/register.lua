-- register: store a worker's profile and bring it ONLINE with a fresh heartbeat.
--
-- KEYS[1] w:{worker}     hash  profile, state, status, hb, max
-- KEYS[2] workers        set   every registered worker id
-- KEYS[3] heartbeats     zset  worker id -> last heartbeat (server time)
-- KEYS[4] q:{worker}     stream; its consumer group is created here (idempotent)
-- KEYS[5] slots:{worker} set   task ids holding a slot (read only: counted for the reply)
-- KEYS[6] pool:changed   zset  the pool-changes index (see _pool.lua)
-- KEYS[7] handlers:offered set every handler name ever offered (optional)
-- ARGV[1] worker id, ARGV[2] profile JSON, ARGV[3] state JSON, ARGV[4] max slots,
-- ARGV[5] consumer group name, ARGV[6] the state's routing part (see heartbeat.lua),
-- ARGV[7..] the handler names the worker offers (added to KEYS[7])
-- Returns {server time as "seconds.micros", slots held}. Existing slots are kept: they are
-- given back by complete, release or reclaim.
--@include clock
--@include pool
local now = server_now()
-- rs: a first heartbeat that changes nothing routing reads is no change of the pool.
redis.call('HSET', KEYS[1], 'profile', ARGV[2], 'state', ARGV[3], 'status', 'online',
  'hb', now, 'max', ARGV[4], 'rs', ARGV[6] or '')
redis.call('SADD', KEYS[2], ARGV[1])
pool_changed(KEYS[6], ARGV[1])
redis.call('ZADD', KEYS[3], now, ARGV[1])
-- BUSYGROUP (the group exists already) is the normal case on re-registration.
redis.pcall('XGROUP', 'CREATE', KEYS[4], ARGV[5], '0', 'MKSTREAM')
if KEYS[7] then
  for i = 7, #ARGV do redis.call('SADD', KEYS[7], ARGV[i]) end
end
return {now, redis.call('SCARD', KEYS[5])}

-- lease_acquire: take a free lease or extend one this holder already has.
--
-- KEYS[1] lease:{name}  string holder id, expires after the TTL (server clock)
-- ARGV[1] holder, ARGV[2] TTL in milliseconds
-- Returns 1 if the holder holds the lease now, else 0.
local v = redis.call('GET', KEYS[1])
if v == ARGV[1] then
  redis.call('PEXPIRE', KEYS[1], ARGV[2])
  return 1
end
if not v then
  redis.call('SET', KEYS[1], ARGV[1], 'PX', ARGV[2])
  return 1
end
return 0

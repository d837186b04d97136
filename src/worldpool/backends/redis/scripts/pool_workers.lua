-- pool_workers: what a reader of the pool needs of each worker, in one call (a pipeline
-- of an HMGET and an SCARD per worker cost the reader ~30 us of Python per worker: a
-- third of a second to read a pool of 10,000).
--
-- KEYS[2i-1] w:{worker}  hash  profile, state, status, hb
-- KEYS[2i]   s:{worker}  set   the task slots it holds
-- Returns, per worker in KEYS order, {profile, state, status, hb, slots held} (false for
-- a missing field).
local out = {}
for i = 1, #KEYS, 2 do
  local fields = redis.call('HMGET', KEYS[i], 'profile', 'state', 'status', 'hb')
  local n = #out
  out[n + 1] = fields[1]
  out[n + 2] = fields[2]
  out[n + 3] = fields[3]
  out[n + 4] = fields[4]
  out[n + 5] = redis.call('SCARD', KEYS[i + 1])
end
return out

-- pool_heard: the heartbeat time each worker's own hash holds (``hb``, which only that
-- worker's user can write), for the workers a reader of the pool heard from
-- (pool_feed.py): one call for a whole read instead of one HGET per heartbeat.
--
-- KEYS[1..n] w:{worker}  hash
-- Returns {hb, ...} in KEYS order (false where the hash or the field is missing).
local out = {}
for i = 1, #KEYS do
  out[i] = redis.call('HGET', KEYS[i], 'hb')
end
return out

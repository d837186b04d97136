-- reserve_send: take a slot on a worker and append the envelope to its stream, or change
-- nothing. The fast path of dispatch: one round trip.
--
-- KEYS[1] w:{worker}      hash  status, max
-- KEYS[2] slots:{worker}  set   task ids holding a slot
-- KEYS[3] q:{worker}      stream
-- ARGV[1] task id, ARGV[2] envelope bytes
-- Returns {1, delivery id} or {0, reason}. A task that already holds a slot on the worker
-- does not take a second one.
local w = redis.call('HMGET', KEYS[1], 'status', 'max')
if not w[1] then
  return {0, 'no such worker is registered'}
end
if w[1] ~= 'online' then
  return {0, 'the worker is ' .. w[1]}
end
if redis.call('SISMEMBER', KEYS[2], ARGV[1]) == 0 then
  local used = redis.call('SCARD', KEYS[2])
  local max = tonumber(w[2])
  if used >= max then
    return {0, 'all ' .. max .. ' slots are taken'}
  end
  redis.call('SADD', KEYS[2], ARGV[1])
end
local id = redis.call('XADD', KEYS[3], '*', 'd', ARGV[2], 't', ARGV[1])
return {1, id}

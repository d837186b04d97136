-- heartbeat: record a worker's live state at server time and say which of its in-flight
-- tasks are no longer its own (re-routed, cancelled or finished).
--
-- KEYS[1]    w:{worker}   hash  (must exist)
-- KEYS[2]    heartbeats   zset  worker id -> last heartbeat
-- KEYS[3..]  t:{task}     hash  one per in-flight task: attempt, worker, terminal
-- ARGV[1] worker id, ARGV[2] state JSON, ARGV[3] requested status (online | draining),
-- ARGV[4..] the attempt the worker runs for KEYS[3..], in the same order.
-- Returns {status, now, i...}: the stored status, server time, and the 1-based positions
-- (within KEYS[3..]) of revoked tasks. Returns {'missing'} for an unknown worker.
-- An OFFLINE worker stays OFFLINE until it registers again; nothing of it is recorded.
--@include clock
--@include fencing
if redis.call('EXISTS', KEYS[1]) == 0 then
  return {'missing'}
end
local now = server_now()
local status = redis.call('HGET', KEYS[1], 'status')
if status ~= 'offline' then
  status = ARGV[3]
  redis.call('HSET', KEYS[1], 'state', ARGV[2], 'status', status, 'hb', now)
  redis.call('ZADD', KEYS[2], now, ARGV[1])
end
local reply = {status, now}
for i = 3, #KEYS do
  if not owns(KEYS[i], ARGV[1], ARGV[i + 1]) then
    reply[#reply + 1] = i - 2
  end
end
return reply

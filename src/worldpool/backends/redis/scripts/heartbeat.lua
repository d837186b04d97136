-- heartbeat: record a worker's live state at server time and say which of its in-flight
-- tasks are no longer its own (re-routed, cancelled or finished).
--
-- KEYS[1]    w:{worker}   hash  (must exist)
-- KEYS[2]    heartbeats   zset  worker id -> last heartbeat
-- KEYS[3..n-1] f:{task}   hash  one per in-flight task: attempt, worker, terminal
-- KEYS[n]    pool:changed zset  the pool-changes index (see _pool.lua), always last
-- ARGV[1] worker id, ARGV[2] state JSON, ARGV[3] requested status (online | draining),
-- ARGV[4..] the attempt the worker runs for KEYS[3..n-1], in the same order, then (last)
-- the state's routing part (its JSON without the heartbeat counter).
-- Returns {status, now, i...}: the stored status, server time, and the 1-based positions
-- (within KEYS[3..]) of revoked tasks. Returns {'missing'} for an unknown worker.
-- An OFFLINE worker stays OFFLINE until it registers again; nothing of it is recorded.
-- Only a change of status or routing part goes into the pool-changes index: a plain
-- heartbeat costs the same whatever the size of the pool.
--@include clock
--@include fencing
--@include pool
if redis.call('EXISTS', KEYS[1]) == 0 then
  return {'missing'}
end
local now = server_now()
local stored = redis.call('HMGET', KEYS[1], 'status', 'rs')
local status = stored[1]
local routing = ARGV[#ARGV]
if status ~= 'offline' then
  status = ARGV[3]
  redis.call('HSET', KEYS[1], 'state', ARGV[2], 'status', status, 'hb', now, 'rs', routing)
  redis.call('ZADD', KEYS[2], now, ARGV[1])
  if stored[1] ~= status or stored[2] ~= routing then
    pool_changed(KEYS[#KEYS], ARGV[1])
  end
end
local reply = {status, now}
for i = 3, #KEYS - 1 do
  if not owns(KEYS[i], ARGV[1], ARGV[i + 1]) then
    reply[#reply + 1] = i - 2
  end
end
return reply

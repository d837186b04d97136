-- _pool.lua: the pool-changes index, so a reader of the pool (the router's snapshot) reads
-- what changed since it last looked instead of the whole pool.
--
-- The index is a zset: worker id -> sequence number of its latest change (one entry per
-- worker, moved up on each change); a reader asks for the scores above the last it read.

-- Record that ``worker_id`` changed (registered, offline, status or routing state).
local function pool_changed(key, worker_id)
  local top = redis.call('ZREVRANGE', key, 0, 0, 'WITHSCORES')
  local seq = 1
  if top[2] then
    seq = tonumber(top[2]) + 1
  end
  redis.call('ZADD', key, seq, worker_id)
end

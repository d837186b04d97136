-- reclaim: take back everything sent to a (dead) worker and not acknowledged, and free
-- all its slots.
--
-- KEYS[1] q:{worker}      stream; acked entries are deleted on ack, so every entry left
--                         is either pending (taken, unacked) or never taken
-- KEYS[2] slots:{worker}  set
-- ARGV[1] consumer group name
-- Returns a flat list {id1, data1, task1, id2, data2, task2, ...} in stream order (the
-- fields d and t that _slots.lua's send wrote; a missing t is returned as '').
local out = {}
local entries = redis.call('XRANGE', KEYS[1], '-', '+')
for _, e in ipairs(entries) do
  local fields = {}
  for i = 1, #e[2], 2 do
    fields[e[2][i]] = e[2][i + 1]
  end
  out[#out + 1] = e[1]
  out[#out + 1] = fields['d']
  out[#out + 1] = fields['t'] or ''
  redis.call('XACK', KEYS[1], ARGV[1], e[1])
  redis.call('XDEL', KEYS[1], e[1])
end
-- Clear any pending entry whose message is gone, so the group's PEL does not grow.
local ok, pel = pcall(redis.call, 'XPENDING', KEYS[1], ARGV[1], '-', '+', 10000)
if ok then
  for _, p in ipairs(pel) do
    redis.call('XACK', KEYS[1], ARGV[1], p[1])
  end
end
redis.call('DEL', KEYS[2])
return out

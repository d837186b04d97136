-- _clock.lua: the server's clock, the only one heartbeats, leases and dead letters use (so
-- skewed worker clocks cannot cause false failovers).

-- The server time as "seconds.micros".
local function server_now()
  local t = redis.call('TIME')
  return t[1] .. '.' .. string.format('%06d', tonumber(t[2]))
end

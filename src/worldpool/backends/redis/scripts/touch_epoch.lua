-- touch_epoch: the deployment epoch, one more on its mark; made if there is none (the
-- first start, or a Redis that came back empty: ARGV[2] names the epoch the caller knew,
-- recorded as lost with the time).
--
-- KEYS[1] epoch  hash  id, mark, created_at, lost_from, lost_at
-- ARGV[1] candidate id, ARGV[2] previous id ('' = none known)
-- Returns {id, mark, created (1 | 0), lost_from or '', lost_at or ''}.
--@include clock
if redis.call('EXISTS', KEYS[1]) == 0 then
  local now = server_now()
  redis.call('HSET', KEYS[1], 'id', ARGV[1], 'mark', 1, 'created_at', now)
  local lost_at = ''
  if ARGV[2] ~= '' then
    lost_at = now
    redis.call('HSET', KEYS[1], 'lost_from', ARGV[2], 'lost_at', now)
  end
  return {ARGV[1], 1, 1, ARGV[2], lost_at}
end
local mark = redis.call('HINCRBY', KEYS[1], 'mark', 1)
local f = redis.call('HMGET', KEYS[1], 'id', 'lost_from', 'lost_at')
return {f[1], mark, 0, f[2] or '', f[3] or ''}
